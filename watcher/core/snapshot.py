"""What the store can tell about itself at one moment: the values behind `watcher status`,
`watcher health` and the metrics. Pure frozen values; the SQL that reads them is
`watcher.edges.store.snapshot`.

Times are UTC datetimes on the watcher's wall clock (`at`, `first_seen_at`, `progress_at`,
`deadline`, the outbox and cycle times) except a job's own timestamps (`created_at` ...
`finished_at`), which are DigitalOcean's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from watcher.core.facts import DataSource
from watcher.core.incident import Incident
from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryState
from watcher.core.state import JobCondition, StallReason


@dataclass(frozen=True, slots=True)
class KbSnapshot:
    """One knowledge base and its latest job; `phase`/`status` are the API's text."""

    uuid: str
    name: str | None
    first_seen_at: datetime
    job_uuid: str | None = None
    phase: str | None = None
    status: str | None = None
    outcome: EventKind | None = None
    completed_datasources: int | None = None
    total_datasources: int | None = None
    tokens: int | None = None
    total_tokens: int | None = None
    items_failed: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    progress_at: datetime | None = None
    deadline: datetime | None = None
    stalled: StallReason | None = None
    done: bool = False
    condition: JobCondition | None = None  # None: no job yet
    sources: tuple[DataSource, ...] = ()  # its data sources by name (the extra reads')
    database: str | None = None  # its database status as the API wrote it, when known
    account: str | None = None  # its [[accounts]] name, with several accounts

    @property
    def label(self) -> str:
        """Its name (else uuid) for a line of text, with `[account]` after it when there are
        several accounts, as alert titles write it (two accounts may name KBs alike)."""
        name = self.name or self.uuid
        return f"{name} [{self.account}]" if self.account else name


@dataclass(frozen=True, slots=True)
class RouteBacklog:
    """Undelivered and dead rows of one route."""

    route: str
    pending: int
    sending: int
    dead: int
    held: int = 0  # of the pending: held by quiet hours (`held_by`) until `held_until`
    held_by: str | None = None
    held_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An outbox row that gave up; `kind` is the stored event kind text."""

    id: int
    route: str
    event_id: str
    kind: str
    kb_uuid: str | None
    job_uuid: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    settled_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """Everything the store can tell about itself at one moment (`at`).

    `outbox_by_state` has a key for every `DeliveryState`, `jobs_by_state` one for every
    `JobCondition`; `dead_letters` holds the newest dead rows only (see the limit), while
    `dead` counts them all.
    """

    at: datetime
    kbs: tuple[KbSnapshot, ...]
    outbox_by_state: Mapping[DeliveryState, int]
    routes: tuple[RouteBacklog, ...]
    oldest_undelivered_at: datetime | None
    dead_letters: tuple[DeadLetter, ...]
    jobs_by_state: Mapping[JobCondition, int]
    events_by_kind: Mapping[str, int]
    last_cycle_at: datetime | None
    created_at: datetime | None
    schema_version: int
    incidents: tuple[Incident, ...] = ()  # the open ones, oldest first

    @property
    def undelivered(self) -> int:
        """Rows still to be sent (pending or being sent)."""
        by_state = self.outbox_by_state
        return by_state[DeliveryState.PENDING] + by_state[DeliveryState.SENDING]

    @property
    def dead(self) -> int:
        """Rows that gave up, all of them."""
        return self.outbox_by_state[DeliveryState.DEAD]

    def oldest_undelivered_age(self, now: datetime | None = None) -> float | None:
        """Seconds the oldest undelivered row has waited at `now` (default: the snapshot time)."""
        if self.oldest_undelivered_at is None:
            return None
        return ((now or self.at) - self.oldest_undelivered_at).total_seconds()

"""What the watcher remembers and what it produces: frozen values shared by core and store.

`WatchState` is what `detect` reads, `Transition` is what it produces, `Delivery` is one
outbox row (an event for one route), `OutboxItem` is a row claimed for sending and
`Settlement` is what happened when it was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from watcher.model import EventKind, Job, KnowledgeBase, Severity


class StallReason(StrEnum):
    """Which stall rule fired."""

    PENDING_TOO_LONG = "pending_too_long"
    NO_PROGRESS = "no_progress"
    MAX_RUNTIME = "max_runtime"


@dataclass(frozen=True, slots=True)
class Policy:
    """The stall thresholds (`[stall]` in the config)."""

    pending_after: timedelta = timedelta(minutes=20)
    no_progress_after: timedelta = timedelta(minutes=30)
    max_runtime: timedelta = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class KbState:
    """A knowledge base the watcher has seen, and when it first saw it."""

    uuid: str
    name: str | None
    first_seen_at: datetime
    last_job_uuid: str | None = None


@dataclass(frozen=True, slots=True)
class JobState:
    """What the watcher knows of one job: its last observation and its stall bookkeeping.

    `progress_at` is the watcher's time when a progress signal last moved; `deadline` is the
    next moment a stall rule would fire (None once the job is done or stalled); `done` is true
    once the job's terminal event was emitted or the job was recorded silently as finished.
    """

    job: Job
    kb_uuid: str
    first_seen_at: datetime
    progress_at: datetime
    deadline: datetime | None = None
    stalled: StallReason | None = None
    stall_count: int = 0
    started_alerted: bool = False
    done: bool = False

    @property
    def uuid(self) -> str:
        return self.job.uuid


@dataclass(frozen=True, slots=True)
class WatchState:
    """The part of the store `detect` needs: known KBs and the jobs in play."""

    kbs: Mapping[str, KbState] = field(default_factory=dict)
    jobs: Mapping[str, JobState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one cycle read from the API: the watched KBs and every job seen for them."""

    at: datetime
    kbs: tuple[KnowledgeBase, ...]
    jobs: tuple[Job, ...]


@dataclass(frozen=True, slots=True)
class Transition:
    """One event of the contract, about one job (or about the API itself).

    `event_id` is deterministic (`job/kind/n`), so recording the same transition twice is a
    no-op and a replayed cycle never produces a second alert.
    """

    event_id: str
    kind: EventKind
    at: datetime
    kb_uuid: str | None = None
    kb_name: str | None = None
    job: Job | None = None
    stall_reason: StallReason | None = None
    detail: str | None = None

    @property
    def job_uuid(self) -> str | None:
        return self.job.uuid if self.job else None

    @property
    def severity(self) -> Severity:
        return self.kind.severity


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row to create: an event for one route."""

    event_id: str
    route: str


@dataclass(frozen=True, slots=True)
class Change:
    """Everything one cycle writes, in one transaction."""

    cycle_id: str
    at: datetime
    kbs: tuple[KbState, ...] = ()
    jobs: tuple[JobState, ...] = ()
    transitions: tuple[Transition, ...] = ()
    deliveries: tuple[Delivery, ...] = ()


class DeliveryState(StrEnum):
    """Where an outbox row is in its life."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An outbox row claimed for sending, with the transition it carries."""

    id: int
    route: str
    transition: Transition
    cycle_id: str
    created_at: datetime
    attempts: int = 0
    last_error: str | None = None
    delivered: frozenset[int] = frozenset()  # the route's URLs (by index) that already have it


@dataclass(frozen=True, slots=True)
class TargetResult:
    """What one apprise target answered (URL privacy-masked by apprise)."""

    name: str
    url: str
    ok: bool
    detail: str = ""
    index: int | None = None  # which URL of the route (its position in `urls`)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a notifier reported for one message to one route."""

    ok: bool
    permanent: bool = False
    error: str | None = None
    targets: tuple[TargetResult, ...] = ()


@dataclass(frozen=True, slots=True)
class Settlement:
    """What to write back for one outbox row after an attempt."""

    outbox_id: int
    state: DeliveryState
    at: datetime
    attempts: int
    next_attempt_at: datetime | None = None
    error: str | None = None
    targets: tuple[TargetResult, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered alert: what a notifier sends."""

    title: str
    body: str
    severity: Severity

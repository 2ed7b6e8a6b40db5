"""What the store can show of the past: knowledge bases, their jobs, events and deliveries. Pure.

These frozen values are what the page and its JSON API read (`watcher.edges.web`), whatever
store holds them. Times are the watcher's wall clock (`first_seen_at`, `created_at` of an
outbox row...) or the API's clock (a job's own `created_at`, `started_at`, `finished_at`),
as each field says; durations are computed on one clock only.

Later data slots in beside what is here: an incident, a silence or an acknowledgement of a
knowledge base (the alert lifecycle), a data source's name and a kept report (the API's
reads) become fields of these records, and the page shows them where they belong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from watcher.core.incident import Incident
from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryState, TargetResult
from watcher.core.state import JobCondition, JobState, StallReason, job_condition

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a longer list: its items, and the cursor of the next page (None: the last).

    A cursor names the last item shown, never an offset, so a list that grows while someone
    pages through it neither repeats nor skips an item.
    """

    items: tuple[T, ...]
    next: str | None = None


@dataclass(frozen=True, slots=True)
class JobPoint:
    """One job of a knowledge base's history, as much as a chart or a sparkline needs.

    `created_at`, `started_at` and `finished_at` are the API's (its clock); `tokens` is the
    job's `total_tokens` (its deprecated `tokens` where that is all there is).
    """

    uuid: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    outcome: EventKind | None
    condition: JobCondition
    tokens: int | None = None
    stalled: StallReason | None = None

    @property
    def duration(self) -> timedelta | None:
        """How long the job ran (started to finished, the API's clock); None while unknown."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(self.finished_at - self.started_at, timedelta(0))

    @classmethod
    def of(cls, state: JobState) -> JobPoint:
        """The point of a job state."""
        job = state.job
        return cls(
            uuid=job.uuid,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            outcome=job.outcome,
            condition=job_condition(state),
            tokens=job.total_tokens if job.total_tokens is not None else job.tokens,
            stalled=state.stalled,
        )


@dataclass(frozen=True, slots=True)
class JobMark:
    """A job as a sparkline shows it: its uuid and its state word (`watcher.core.browse`)."""

    uuid: str
    state: str


@dataclass(frozen=True, slots=True)
class KbRecord:
    """A knowledge base the watcher has seen: its latest job and its last jobs, newest first.

    `first_seen_at` is the watcher's wall clock. `recent` holds at most the number of jobs
    asked for (the latest one included), for a sparkline of outcomes. `incident`: its open
    incident (`watcher.core.incidents`), with who acknowledged it.
    """

    uuid: str
    name: str | None
    first_seen_at: datetime
    latest: JobState | None = None
    recent: tuple[JobMark, ...] = ()
    incident: Incident | None = None  # its open incident, if any

    @property
    def label(self) -> str:
        """The name, or the uuid when the API reports none."""
        return self.name or self.uuid


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One outbox row: an event for one route, where it is in its life, and why.

    `created_at`, `next_attempt_at`, `sent_at` and `settled_at` are the watcher's wall clock.
    `targets` is what each of the route's URLs answered the last attempt (masked URLs only).
    `kind` is the stored event word (a newer watcher's word is shown as it is).
    """

    id: int
    route: str
    state: DeliveryState
    event_id: str
    kind: str
    kb_uuid: str | None
    kb_name: str | None
    job_uuid: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None = None
    settled_at: datetime | None = None
    targets: tuple[TargetResult, ...] = ()


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event the watcher recorded (`at`: its wall clock) and its delivery to each route."""

    event_id: str
    kind: str
    at: datetime
    kb_uuid: str | None
    job_uuid: str | None
    detail: str | None = None
    stall_reason: StallReason | None = None
    deliveries: tuple[DeliveryRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as the watcher last saw it, with the events it raised and their deliveries."""

    state: JobState
    kb_name: str | None
    events: tuple[EventRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """How many outbox rows are in each state, per route, and the oldest still undelivered."""

    by_state: Mapping[DeliveryState, int]
    by_route: Mapping[str, Mapping[DeliveryState, int]]
    oldest_undelivered_at: datetime | None

    @property
    def undelivered(self) -> int:
        """Rows still to be sent (pending, or being sent)."""
        return self.by_state.get(DeliveryState.PENDING, 0) + self.by_state.get(
            DeliveryState.SENDING, 0
        )

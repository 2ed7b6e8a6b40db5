"""What the watcher remembers and what it detects: frozen values shared by core and store.

`WatchState` is what `detect` reads (the KBs and jobs in play, as `KbState` / `JobState`),
`Observation` what one cycle read from the API, `Transition` one event `detect` produces, and
`Change` everything one cycle writes. What goes out (outbox rows, messages, attempts and their
results) lives in `watcher.core.outbox`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from watcher.core.clocks import Elapsed
from watcher.core.cost import JobCost
from watcher.core.incident import Incident, IncidentNote
from watcher.core.model import EventKind, Job, KnowledgeBase, Severity


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
    """A knowledge base the watcher has seen, when it first saw it, and where its news begins.

    `first_seen_at` is the watcher's wall clock (for people). `news_since` is on the API's
    clock: a job of this KB created at or after it is news, an older one is history the
    latest-15 list returns. For a KB that existed before the watcher's first run it is the
    API's time when the watcher first read the KB; for a KB created since, its `created_at`
    (all of its jobs are news). None on rows of an older store: `first_seen_at` stands in.
    """

    uuid: str
    name: str | None
    first_seen_at: datetime
    last_job_uuid: str | None = None
    news_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Sighting:
    """When the watcher first saw a job, and when it last saw a progress signal move.

    Both are readings of the elapsed clock (one boot): how long a job has not moved is
    measured on the watcher's own observations, never on `updated_at` against a local clock.
    """

    first: Elapsed
    moved: Elapsed


@dataclass(frozen=True, slots=True)
class JobState:
    """What the watcher knows of one job: its last observation and its stall bookkeeping.

    `sighting` holds the elapsed-clock readings the no-progress rule is measured on (None on
    rows of an older store, or of another boot: re-seeded from the API's `updated_at`).
    `first_seen_at`, `progress_at` and `deadline` are wall-clock times for people: when the
    watcher first saw the job, when it last saw it move, and when the next stall rule would
    fire (None once the job is done or stalled). `done` is true once the job's terminal
    event was emitted or the job was recorded silently as finished. `corrections` counts the
    outcomes of this job that were alerted and later corrected (see `watcher.core.corrections`).
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
    sighting: Sighting | None = None
    corrections: int = 0

    @property
    def uuid(self) -> str:
        return self.job.uuid


class JobCondition(StrEnum):
    """Where a job stands for people: the one closed set that the store's snapshot, `watcher
    status` and the `gradient_watcher_jobs{state=...}` metric all use."""

    PENDING = "pending"
    RUNNING = "running"
    STALLED = "stalled"
    UNKNOWN = "unknown"  # not over, in states this version does not know (never alerted)
    DONE = "done"


def job_condition(state: JobState) -> JobCondition:
    """The condition of a followed job, judged by the same predicates as detection."""
    if state.done or state.job.is_terminal:
        return JobCondition.DONE
    if state.stalled is not None:
        return JobCondition.STALLED
    if state.job.is_pending:
        return JobCondition.PENDING
    if state.job.is_running:
        return JobCondition.RUNNING
    return JobCondition.UNKNOWN


@dataclass(frozen=True, slots=True)
class WatchState:
    """The part of the store `detect` needs: known KBs, the jobs in play, and the baseline.

    `baseline` is the API's time when the watcher's first run began reading (None before it):
    a knowledge base created at or after it is new, and all of its jobs are news. `incidents`
    are the open incidents (`watcher.core.incidents`), by KB uuid.
    """

    kbs: Mapping[str, KbState] = field(default_factory=dict)
    jobs: Mapping[str, JobState] = field(default_factory=dict)
    baseline: datetime | None = None
    incidents: Mapping[str, Incident] = field(default_factory=dict)  # open ones, by KB uuid


@dataclass(frozen=True, slots=True)
class Observation:
    """What one cycle read from the API: the watched KBs and every job seen for them.

    `at` is the watcher's wall clock when the reads ended; `api_began` the API's clock when
    they began (what existed before it, the reads could see).
    """

    at: datetime
    kbs: tuple[KnowledgeBase, ...]
    jobs: tuple[Job, ...]
    api_began: datetime | None = None


@dataclass(frozen=True, slots=True)
class OpenProblem:
    """A knowledge base with an open incident (`silence_ended` lists them): `problem` is its
    latest (`failed`, `partial` or `stalled`, of job `job_uuid`), `failures` in a row since
    `since` (the API's clock when known, else the wall's), and who acknowledged it, when
    (wall clock). Payloads written before incidents carry only the first four."""

    kb_uuid: str
    problem: EventKind
    kb_name: str | None = None
    job_uuid: str | None = None
    failures: int | None = None
    since: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None

    @classmethod
    def of(cls, incident: Incident) -> OpenProblem:
        """What an open incident tells of its KB."""
        ack = incident.ack
        return cls(
            kb_uuid=incident.kb_uuid,
            problem=incident.last_kind,
            kb_name=incident.kb_name,
            job_uuid=incident.last_job_uuid,
            failures=incident.failures,
            since=incident.since,
            acked_by=ack.by if ack is not None else None,
            acked_at=ack.at if ack is not None else None,
        )


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
    route: str | None = None  # delivery_failing / delivery_recovered: the route they are about
    stalled_since: datetime | None = None  # a stalled job's outcome: when it last moved
    corrects: EventKind | None = None  # `corrected`: the outcome alerted before
    # The API's clock when the transition was seen (DigitalOcean's timestamps are compared with
    # it alone: a running job's duration in an alert is `api_at - started_at`, never the wall).
    api_at: datetime | None = None
    # What the extra reads know of the KB (`watcher.core.facts.with_facts`): each data source of
    # the job as (uuid, what a person recognises), the KB's database status when it is not
    # ONLINE (and on the database events), the names of the agents the KB feeds.
    source_names: tuple[tuple[str, str], ...] = ()
    database_status: str | None = None
    agents: tuple[str, ...] = ()
    silence_id: str | None = None  # `silence_ended`: the silence that ended
    open_problems: tuple[OpenProblem, ...] = ()  # `silence_ended`: what it hid, still open
    # A finished job's per-file report: whether it was kept, and its most frequent errors
    # (lines of plain text, `watcher.core.report.report_note`); None when it has none.
    report: str | None = None
    incident: IncidentNote | None = None  # the KB's incident, as this alert tells it
    cost: JobCost | None = None  # a finished job's cost (`watcher.core.cost`), when priced
    spike_ratio: float | None = None  # `cost_spike`: the cost over its KB's recent median
    # The `[[accounts]]` name of the account whose cycle saw it; None with a single account
    # (its alerts keep the text they always had) and for the deployment's own events.
    account: str | None = None

    @property
    def job_uuid(self) -> str | None:
        return self.job.uuid if self.job else None

    @property
    def severity(self) -> Severity:
        return self.kind.severity


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row to create: an event for one route.

    With `incident` (a reminder, an escalation) the row is written only while that incident
    is not acknowledged, checked in the recording transaction (an ack may come in between).
    """

    event_id: str
    route: str
    incident: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """Everything one cycle writes, in one transaction."""

    cycle_id: str
    at: datetime
    kbs: tuple[KbState, ...] = ()
    jobs: tuple[JobState, ...] = ()
    transitions: tuple[Transition, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    incidents: tuple[Incident, ...] = ()  # opened, joined, closed or nudged this cycle


def changed(
    previous: WatchState, state: WatchState
) -> tuple[tuple[KbState, ...], tuple[JobState, ...]]:
    """The KBs and the jobs whose state differs from `previous` in `state`: what a cycle
    writes of them (new ones included; none is ever removed this way)."""
    # most states are the very objects loaded (`detect` leaves them): identity first
    before_kbs, before_jobs = previous.kbs, previous.jobs
    kbs = tuple(
        kb for uuid, kb in state.kbs.items() if (b := before_kbs.get(uuid)) is not kb and b != kb
    )
    jobs = tuple(
        job
        for uuid, job in state.jobs.items()
        if (j := before_jobs.get(uuid)) is not job and j != job and not _same_but_deadline(j, job)
    )
    return kbs, jobs


def _same_but_deadline(before: JobState | None, job: JobState) -> bool:
    """Whether only the deadline for people moved, by under a second: it is the wall clock
    plus what is left on the API's, whose estimate (whole-second `Date` headers) moves a
    little with every answer. Not news: the stall rules never read it."""
    if before is None or before.deadline is None or job.deadline is None:
        return False
    if abs(job.deadline - before.deadline) >= timedelta(seconds=1):
        return False
    return replace(before, deadline=job.deadline) == job

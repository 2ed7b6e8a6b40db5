"""What the watcher remembers and what it produces: frozen values shared by core and store.

`WatchState` is what `detect` reads, `Transition` is what it produces, `Delivery` is one
outbox row (an event for one route), `OutboxItem` is a row claimed for sending and
`Settlement` is what happened when it was sent. `FailureCause` says why a target did not
take an alert, `Budget` how much text a target takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import assert_never

from watcher.core.clocks import Elapsed
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
    a knowledge base created at or after it is new, and all of its jobs are news.
    """

    kbs: Mapping[str, KbState] = field(default_factory=dict)
    jobs: Mapping[str, JobState] = field(default_factory=dict)
    baseline: datetime | None = None


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
    last_targets: tuple[TargetResult, ...] = ()  # what each URL answered the last attempt


class FailureCause(StrEnum):
    """Why a target did not take an alert, as the notifier read it from the service's answer.

    `permanent` causes will not pass on a later try of the same message; `TOO_LARGE` passes
    once the message is rendered shorter; the others may pass on a later try.
    """

    TIMEOUT = "timeout"  # no complete answer within `delivery.timeout`
    CONNECTION = "connection"  # refused, reset or dropped connection, DNS or TLS failure
    SERVER_ERROR = "server_error"  # HTTP 5xx
    RATE_LIMITED = "rate_limited"  # HTTP 429 or 408
    TOO_LARGE = "too_large"  # HTTP 413, or a refusal that says the message is too long
    REJECTED = "rejected"  # any other HTTP 4xx
    CREDENTIALS = "credentials"  # HTTP 401/403, SMTP 530/534/535: credentials refused
    MAIL_DEFERRED = "mail_deferred"  # SMTP 4xx: the mail server says try later
    MAIL_REFUSED = "mail_refused"  # SMTP 5xx other than authentication (a refused recipient)
    BAD_URL = "bad_url"  # apprise cannot load the URL, or the route has none
    BUSY = "busy"  # the previous send to this URL is still running: nothing was sent
    CRASHED = "crashed"  # the notifier itself raised
    UNKNOWN = "unknown"  # the target failed without saying why

    @property
    def permanent(self) -> bool:
        """Whether the same message will be refused again, whatever the wait."""
        return self in _PERMANENT_CAUSES

    @property
    def explanation(self) -> str:
        """A few words for people (status, logs, `test-notify`, delivery_failing alerts)."""
        return _EXPLANATIONS[self]


_PERMANENT_CAUSES = frozenset(
    {
        FailureCause.REJECTED,
        FailureCause.CREDENTIALS,
        FailureCause.MAIL_REFUSED,
        FailureCause.BAD_URL,
    }
)
_EXPLANATIONS = {
    FailureCause.TIMEOUT: "timed out",
    FailureCause.CONNECTION: "connection failed",
    FailureCause.SERVER_ERROR: "server error",
    FailureCause.RATE_LIMITED: "rate limited",
    FailureCause.TOO_LARGE: "message too large",
    FailureCause.REJECTED: "request refused",
    FailureCause.CREDENTIALS: "credentials refused: check the user, password or token in the URL",
    FailureCause.MAIL_DEFERRED: "mail server says try later",
    FailureCause.MAIL_REFUSED: "mail refused",
    FailureCause.BAD_URL: "apprise cannot use this URL",
    FailureCause.BUSY: "the previous send to this URL is still running",
    FailureCause.CRASHED: "notifier error",
    FailureCause.UNKNOWN: "failed",
}


@dataclass(frozen=True, slots=True)
class TargetResult:
    """What one apprise target answered (URL privacy-masked by apprise).

    `status` is the HTTP status or SMTP reply code the cause was read from, when there was
    one; `sent_chars` the length of the body sent to this target (for re-rendering shorter).
    """

    name: str
    url: str
    ok: bool
    detail: str = ""
    index: int | None = None  # which URL of the route (its position in `urls`)
    cause: FailureCause | None = None
    status: int | None = None
    sent_chars: int | None = None


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


class BodyFormat(StrEnum):
    """The formats a service takes a body in: apprise's `NotifyFormat` values."""

    MARKDOWN = "markdown"
    TEXT = "text"
    HTML = "html"


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered alert: what a notifier sends.

    `title` is plain text on one line (a subject, a heading field). The body is written out in
    each format a service may take, every piece of outside text escaped for that format:
    `body` is markdown, `text` plain text and `html` an HTML fragment.
    """

    title: str
    body: str
    severity: Severity
    text: str
    html: str

    def body_in(self, fmt: BodyFormat) -> str:
        """The body written for `fmt`."""
        match fmt:
            case BodyFormat.MARKDOWN:
                return self.body
            case BodyFormat.TEXT:
                return self.text
            case BodyFormat.HTML:
                return self.html
            case _:
                assert_never(fmt)


@dataclass(frozen=True, slots=True)
class Budget:
    """How much text one target takes, in characters (None: no limit of its own).

    From apprise's plugin class: `body` is `body_maxlen` (less its overflow buffer), `title`
    is `title_maxlen` (None when the service has no title: it is then sent in the body), and
    `title_in_body` says the title counts against `body` (Discord: 2,000 for both).
    `lines` caps the body's lines for the few services that count them.
    """

    body: int | None = None
    title: int | None = None
    title_in_body: bool = False
    lines: int | None = None

    def body_room(self, title: str) -> int | None:
        """Characters left for the body once `title` is accounted for."""
        if self.body is None:
            return None
        if self.title_in_body or self.title is None:
            return max(self.body - len(title) - 2, 0)  # the service joins them with CR LF
        return self.body

"""What goes out: outbox rows, the messages they become, and what each attempt came to.

The shapes, in the order of a row's life:

    Delivery        an event for one route, to record (`decide.route` makes them)
    OutboxItem      a recorded row claimed for sending, with its transition and its past
    Send            one message to one route, carrying the rows it settles (`delivery.plan`)
    Message         the rendered alert; `Budget` is how much text one URL's service takes
    SendResult      what the notifier reported: per URL a `TargetResult` with its `FailureCause`
    Settlement      what to write back for one row, with a `SettleReason` for the new state

`DeliveryState` is where a row is in its life (pending, sending, sent, dead, or silenced).
Pure values: no I/O, times are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import assert_never

from watcher.core.clocks import Elapsed
from watcher.core.markup import BodyFormat as BodyFormat
from watcher.core.model import Severity
from watcher.core.state import Transition

# `BodyFormat` is defined beside the escaping for each format (`watcher.core.markup`), which
# the log and terminal boundaries load without the outbox; named here too, for the messages.


class DeliveryState(StrEnum):
    """Where an outbox row is in its life."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    SILENCED = "silenced"  # held by a silence (`watcher.core.silences`): recorded, never sent


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
    held_by: str | None = None  # the quiet-hours window that held it (`watcher.core.quiet`)
    held_until: datetime | None = None  # when that hold ended (the hold restarts `dead_after`)
    # the elapsed-clock reading of its first failed attempt (None: none yet, or not measurable
    # here: taken in another boot, or lost with a claim whose sender stopped); `dead_after`
    # is measured from it
    failing_for: Elapsed | None = None


class SettleReason(StrEnum):
    """Why an outbox row ended up in its new state."""

    DELIVERED = "delivered"
    RETRY = "retry"
    RESIZED = "resized"  # a target refused it for its size: due again at once, shorter
    PERMANENT_FAILURE = "permanent_failure"
    EXPIRED = "expired"
    HELD = "held"  # reached every URL it tried; the route's down URLs wait for their retry
    POSTPONED = "postponed"  # not tried: the route failed earlier this cycle; no attempt spent

    @property
    def outcome(self) -> DeliveryOutcome | None:
        """What the attempt behind this settlement counts as (None: there was no attempt)."""
        match self:
            case SettleReason.DELIVERED:
                return DeliveryOutcome.SENT
            case SettleReason.RETRY | SettleReason.HELD | SettleReason.RESIZED:
                return DeliveryOutcome.FAILED
            case SettleReason.PERMANENT_FAILURE | SettleReason.EXPIRED:
                return DeliveryOutcome.DEAD
            case SettleReason.POSTPONED:
                return None  # not tried: nothing to count
            case _:
                assert_never(self)


class DeliveryOutcome(StrEnum):
    """What one delivery attempt came to: the `outcome` label of
    `gradient_watcher_deliveries` (these strings are part of the metrics contract)."""

    SENT = "sent"
    FAILED = "failed"  # will be retried (held and resized rows too: not everyone has it yet)
    DEAD = "dead"  # given up on (permanent failure, or past delivery.dead_after)


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
    silence_id: str | None = None  # state SILENCED: the silence that held the row
    failing_for: Elapsed | None = None  # kept while pending: the first failure's reading
    held_by: str | None = None  # set: held by this quiet-hours window until `next_attempt_at`


class FailureKind(StrEnum):
    """Whether a later try of the same message may pass: the notifier's verdict on a failure.

    The value is the first word of a failed target's `detail` ("permanent: request refused
    (HTTP 404)") and the `status` of its `alert_failed` log line.
    """

    RETRYABLE = "retryable"  # a later try may pass (a timeout, a 5xx, a full mailbox)
    PERMANENT = "permanent"  # the same message will be refused again, whatever the wait


class FailureCause(StrEnum):
    """Why a target did not take an alert, as the notifier read it from the service's answer.

    Each cause is of one `kind`: permanent causes will not pass on a later try of the same
    message; `TOO_LARGE` passes once the message is rendered shorter; the others may pass on
    a later try.
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
    def kind(self) -> FailureKind:
        """Whether the same message may pass on a later try."""
        match self:
            case (
                FailureCause.REJECTED
                | FailureCause.CREDENTIALS
                | FailureCause.MAIL_REFUSED
                | FailureCause.BAD_URL
            ):
                return FailureKind.PERMANENT
            case (
                FailureCause.TIMEOUT
                | FailureCause.CONNECTION
                | FailureCause.SERVER_ERROR
                | FailureCause.RATE_LIMITED
                | FailureCause.TOO_LARGE
                | FailureCause.MAIL_DEFERRED
                | FailureCause.BUSY
                | FailureCause.CRASHED
                | FailureCause.UNKNOWN
            ):
                return FailureKind.RETRYABLE
            case _:
                assert_never(self)

    @property
    def explanation(self) -> str:
        """A few words for people (status, logs, `test-notify`, delivery_failing alerts)."""
        return _EXPLANATIONS[self]


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

    @property
    def kind(self) -> FailureKind | None:
        """The kind of this target's failure (None when it took the message, or when the
        notifier did not say why it failed)."""
        return None if self.ok or self.cause is None else self.cause.kind


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a notifier reported for one message to one route.

    `failure` is the notifier's summary of a failure: permanent when every failed target's
    cause is, or when the route itself cannot be sent to (no URLs); None on success and from
    a notifier that does not classify (then the failure counts as retryable).
    """

    ok: bool
    failure: FailureKind | None = None
    error: str | None = None
    targets: tuple[TargetResult, ...] = ()


@dataclass(frozen=True, slots=True)
class EventBody:
    """An event as a machine reads it (routes with `format = "event"`): the JSON `text` sent
    and signed (`watcher.core.event_document`), and the Standard Webhooks message id that
    stays the same for every retry."""

    webhook_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Part:
    """Which message of a list split in several this is: `number` of `of`, from 1 (a storm's
    grouped alert, or what quiet hours held, too long for one message to name every event);
    `events` how many all the parts tell together (a held job is told once, by its outcome)."""

    number: int
    of: int
    events: int = 0

    def label(self) -> str:
        """`part 2 of 3`."""
        return f"part {self.number} of {self.of}"

    def lead(self) -> str:
        """`part 2 of 3; 41 events in all`, for a message's first line."""
        total = f"; {self.events} events in all" if self.events else ""
        return f"{self.label()}{total}"


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered alert: what a notifier sends.

    `title` is plain text on one line (a subject, a heading field). The body is written out in
    each format a service may take, every piece of outside text escaped for that format:
    `body` is markdown, `text` plain text and `html` an HTML fragment. `document` is the event
    for a route that posts events (None for the others). `left_out` counts the entries of
    the body's list (a job's data sources, a grouped alert's events) that fitting it into a
    target's limits left out in at least one format, told only by a count in its last line.
    """

    title: str
    body: str
    severity: Severity
    text: str
    html: str
    document: EventBody | None = None
    left_out: int = 0  # list entries (data sources, events) the fit left out in some format

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
    `lines` caps the body's lines for the few services that count them. `format` is the
    body format the service gets (`watcher.core.markup.BodyFormat`; None: not known): every
    format is fitted, but only what the service gets says what a message left out (a
    grouped alert is split by it; HTML's longer lines never split a markdown service's).
    """

    body: int | None = None
    title: int | None = None
    title_in_body: bool = False
    lines: int | None = None
    format: BodyFormat | None = None

    def body_room(self, title: str) -> int | None:
        """Characters left for the body once `title` is accounted for."""
        if self.body is None:
            return None
        if self.title_in_body or self.title is None:
            return max(self.body - len(title) - 2, 0)  # the service joins them with CR LF
        return self.body

    def body_lines(self, title: str) -> int | None:
        """Lines left for the body: a service without a title field (`title` None) gets it
        as the body's first line, before its line limit is applied (apprise)."""
        if self.lines is None:
            return None
        return max(self.lines - 1, 0) if self.title is None and title else self.lines


@dataclass(frozen=True, slots=True)
class Send:
    """One message to one route, settling the outbox rows it carries.

    `skip` names the route's URLs (by index) that already have these rows from an earlier,
    partly failed attempt: a retry goes only to the others, so no target hears it twice.
    `fitted` holds, per URL index, the message rendered within that URL's limits; a URL not
    in it gets `message`. `template_failures` says why the route's own template could not
    render it (the built-in text went instead).
    """

    route: str
    items: tuple[OutboxItem, ...]
    message: Message
    skip: frozenset[int] = frozenset()
    fitted: tuple[tuple[int, Message], ...] = ()
    template_failures: tuple[str, ...] = ()  # why the route's template could not be used

    def message_for(self, index: int) -> Message:
        """What URL `index` of the route gets."""
        return dict(self.fitted).get(index, self.message)

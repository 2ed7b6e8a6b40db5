"""Deciding who gets what, and what to write back for a row after a delivery attempt. Pure.

- `route` turns transitions into outbox rows: one per (event, route) that asked for it. A
  stalled job that ends tells a route that asked for its outcome the whole story in the
  outcome's alert, so that route gets no separate `recovered`. An event about a route's own
  delivery (`delivery_failing`, `delivery_recovered`) never goes to that route.
- `verdict` judges a send's result by its worst target (`FailureCause.kind`, size refusals).
- `settle` turns a send's result into settlements, each carrying the reason for its new state:
  delivered; retried with backoff; re-rendered shorter at once when a target refused the
  message for its size (never final while the message can still shrink); dead-lettered after
  repeated permanent refusals or once it has been failing for `dead_after` (a row held by
  quiet hours starts that count again after the hold: `watcher.core.quiet.hold`). `hold`,
  `postpone` and `release` settle rows without an attempt of their own (no attempt spent).
  `settlement` is the one maker of a `Settlement`: what a URL reached stays reached,
  whatever becomes of the row.
- `budget_caps` says how short the next message to a URL must be after such a refusal.

The order in which a route's round applies these is `watcher.core.delivery`'s fold.

`dead_after` is measured on the elapsed clock (`Elapsed`: seconds since boot, with the boot
id) from the row's first failed attempt (`OutboxItem.failing_for`), never on the wall clock:
a step of the wall clock (a day forward while a receiver is down) gives up no row early. A
row whose first failure cannot be measured here (read in another boot, kept by an older
version, or lost with the claim of a sender that stopped mid-send) is measured again from
its next failure: after a reboot a row is given up later than `dead_after`, never earlier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import assert_never

from watcher.core.clocks import Elapsed
from watcher.core.model import EventKind
from watcher.core.outbox import (
    DeliveryState,
    FailureCause,
    FailureKind,
    OutboxItem,
    Send,
    SendResult,
    Settlement,
    SettleReason,
    TargetResult,
)
from watcher.core.state import Delivery, Transition

# The shortest body worth re-rendering for: a refusal of a message this short is not about
# its size (the headline and the facts of an alert take about this much).
SHORTEST_BODY = 250


@dataclass(frozen=True, slots=True)
class RouteRule:
    """The routing part of a route: which events, for which knowledge bases."""

    name: str
    events: frozenset[EventKind]
    knowledge_bases: frozenset[str] = frozenset({"*"})

    def wants(self, transition: Transition) -> bool:
        """Whether this route asked for this transition (API and delivery events ignore the
        KB filter; a route never hears about its own delivery; `corrected` also goes to a
        route that asked for the outcome it corrects, which that route was told)."""
        asked = transition.kind in self.events or transition.corrects in self.events
        if not asked or transition.route == self.name:
            return False
        if transition.kb_uuid is None or "*" in self.knowledge_bases:
            return True
        return bool({transition.kb_uuid, transition.kb_name} & self.knowledge_bases)


def route(transitions: Iterable[Transition], rules: Sequence[RouteRule]) -> tuple[Delivery, ...]:
    """One outbox row for every (transition, route) pair where the route wants the event,
    except a `recovered` whose job ended in the same batch with an outcome the route wants
    (that outcome's alert says the job had stalled)."""
    transitions = tuple(transitions)
    outcomes = {t.job_uuid: t.kind for t in transitions if t.kind.is_terminal and t.job_uuid}
    return tuple(
        Delivery(event_id=t.event_id, route=rule.name)
        for t in transitions
        for rule in rules
        if rule.wants(t) and not _told_by_outcome(t, rule, outcomes)
    )


def _told_by_outcome(t: Transition, rule: RouteRule, outcomes: Mapping[str, EventKind]) -> bool:
    if t.kind is not EventKind.RECOVERED or t.job_uuid is None:
        return False
    outcome = outcomes.get(t.job_uuid)
    return outcome is not None and outcome in rule.events


class Verdict(StrEnum):
    """What a send's result means for the rows it carried."""

    DELIVERED = "delivered"
    RETRY = "retry"  # a later try of the same message may pass
    RESIZE = "resize"  # only size refusals: a shorter rendering may pass now
    PERMANENT = "permanent"  # the same message will be refused again


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff between attempts and the bounds after which a row is dead-lettered: failing
    for `dead_after` (elapsed clock, from its first failure) or `permanent_attempts`
    permanent refusals."""

    base: timedelta = timedelta(seconds=30)
    maximum: timedelta = timedelta(minutes=30)
    dead_after: timedelta = timedelta(hours=24)
    permanent_attempts: int = 3


def backoff(attempts: int, policy: RetryPolicy, spread: float) -> timedelta:
    """Exponential backoff after `attempts` failures, scaled by `spread` in [0.5, 1] (jitter)."""
    exponent = min(max(attempts - 1, 0), 30)
    delay: timedelta = min(policy.base * (2**exponent), policy.maximum)
    return delay * min(max(spread, 0.5), 1.0)


def verdict(result: SendResult) -> Verdict:
    """Judge a result by its worst target: any retryable failure means retry; size refusals
    alone mean resize; permanent refusals alone mean permanent."""
    if result.ok:
        return Verdict.DELIVERED
    failed = [t for t in result.targets if not t.ok]
    if not failed:  # a failure of the whole call, not of a target
        return _by_kind(result.failure)
    judged = {_judge(t, result.failure) for t in failed}
    for outcome in (Verdict.RETRY, Verdict.RESIZE):
        if outcome in judged:
            return outcome
    return Verdict.PERMANENT


def _judge(target: TargetResult, summary: FailureKind | None) -> Verdict:
    if target.cause is None:  # a notifier that does not classify: trust its summary
        return _by_kind(summary)
    if resizable(target):
        return Verdict.RESIZE
    return _by_kind(target.cause.kind)


def _by_kind(kind: FailureKind | None) -> Verdict:
    match kind:
        case FailureKind.PERMANENT:
            return Verdict.PERMANENT
        case FailureKind.RETRYABLE | None:  # a failure that does not say: a later try may pass
            return Verdict.RETRY
        case _:
            assert_never(kind)


def resizable(target: TargetResult) -> bool:
    """A refusal that a shorter message may pass: "too large", or a bare HTTP 400 of a
    message longer than `SHORTEST_BODY` (services answer 400 for size as often as 413)."""
    sent = target.sent_chars or 0
    if target.ok or sent <= SHORTEST_BODY:
        return False
    bare_400 = target.cause is FailureCause.REJECTED and target.status == 400
    return target.cause is FailureCause.TOO_LARGE or bare_400


def budget_caps(items: Iterable[OutboxItem]) -> dict[int, int]:
    """The most characters the next body to each URL may have, from the rows' last attempt:
    half of what a URL refused for its size (never below `SHORTEST_BODY`), and no more than
    last time when a URL refused even the shortest (so that it never grows back)."""
    caps: dict[int, int] = {}
    for item in items:
        for target in item.last_targets:
            if target.index is None or target.sent_chars is None or not _size_like(target):
                continue
            cap = target.sent_chars
            if resizable(target):
                cap = max(target.sent_chars // 2, SHORTEST_BODY)
            caps[target.index] = min(cap, caps.get(target.index, cap))
    return caps


def _size_like(target: TargetResult) -> bool:
    too_large = target.cause is FailureCause.TOO_LARGE
    return not target.ok and (too_large or (target.cause, target.status) == (_REJECTED, 400))


_REJECTED = FailureCause.REJECTED


def settle(
    send: Send, result: SendResult, now: datetime, policy: RetryPolicy, *, elapsed: Elapsed
) -> list[tuple[Settlement, SettleReason]]:
    """What to write back for every row of a send, and why: the rows share the result's
    `verdict`; a retry is due after `backoff` (wall clock `now`), a row is dead after
    `policy`'s bounds (`dead_after` from its first failure to `elapsed`, the same moment on
    the elapsed clock; see the module)."""
    judged = verdict(result)
    return [_settle_one(item, result, judged, now, elapsed, policy) for item in send.items]


def hold(
    send: Send, result: SendResult, setback: Settlement
) -> list[tuple[Settlement, SettleReason]]:
    """A send that left out URLs found down earlier in the round (`setback`: the settlement
    of that failure): what it reached counts, the rows stay pending until the setback's
    retry, with its error, and no attempt is spent."""
    return [
        (
            settlement(
                item,
                DeliveryState.PENDING,
                setback.at,
                attempts=item.attempts,
                due=setback.next_attempt_at,
                error=setback.error,
                reached=result.targets,
            ),
            SettleReason.HELD,
        )
        for item in send.items
    ]


def postpone(
    sends: Sequence[Send], at: datetime, due: datetime | None
) -> list[tuple[Settlement, SettleReason]]:
    """Rows not tried in this round (the route failed as a whole, or the pace would hold the
    round too long): pending until `due`, unspent, with their last error."""
    return [
        (
            settlement(
                item,
                DeliveryState.PENDING,
                at,
                attempts=item.attempts,
                due=due,
                error=item.last_error,
            ),
            SettleReason.POSTPONED,
        )
        for send in sends
        for item in send.items
    ]


def release(items: Sequence[OutboxItem], now: datetime) -> list[Settlement]:
    """Rows claimed for a route that is still sending an earlier round: back to the queue,
    due now, unspent, with everything they remember."""
    return [
        settlement(
            item,
            DeliveryState.PENDING,
            now,
            attempts=item.attempts,
            due=now,
            error=item.last_error,
            reached=item.last_targets,
        )
        for item in items
    ]


def failed_targets(result: SendResult) -> frozenset[int]:
    """The URLs (by index) a send failed on; empty when the failure is not per URL, which
    then counts as the whole route failing."""
    failed = [t.index for t in result.targets if not t.ok]
    if not failed or None in failed:
        return frozenset()
    return frozenset(index for index in failed if index is not None)


def _settle_one(
    item: OutboxItem,
    result: SendResult,
    judged: Verdict,
    now: datetime,
    elapsed: Elapsed,
    policy: RetryPolicy,
) -> tuple[Settlement, SettleReason]:
    attempts = item.attempts + 1
    error = None if result.ok else (result.error or "delivery failed")
    first, failing = failing_since(item.failing_for, elapsed)
    after = partial(settlement, item, at=now, error=error, reached=result.targets, failing=first)
    match judged:
        case Verdict.DELIVERED:
            return after(DeliveryState.SENT, attempts=attempts), SettleReason.DELIVERED
        case Verdict.RESIZE:  # not the receiver's fault nor a try spent: again, shorter, now
            again = after(DeliveryState.PENDING, attempts=item.attempts, due=now)
            return again, SettleReason.RESIZED
        case Verdict.PERMANENT if attempts >= policy.permanent_attempts:
            return after(DeliveryState.DEAD, attempts=attempts), SettleReason.PERMANENT_FAILURE
    if failing >= policy.dead_after:
        return after(DeliveryState.DEAD, attempts=attempts), SettleReason.EXPIRED
    # A stable per-row spread keeps retries of many rows from moving in lockstep.
    spread = 0.5 + (item.id * 2654435761 % 1000) / 2000
    retry_at = now + backoff(attempts, policy, spread)
    return after(DeliveryState.PENDING, attempts=attempts, due=retry_at), SettleReason.RETRY


def failing_since(first: Elapsed | None, elapsed: Elapsed) -> tuple[Elapsed, timedelta]:
    """A failure at `elapsed` (elapsed clock) of a row first failing at `first`: the reading
    the row's failing is measured from, and how long it has lasted. A first failure that
    cannot be measured from here (none, another boot) makes this one the first."""
    lasted = elapsed.since(first) if first is not None else None
    if first is None or lasted is None:
        return elapsed, timedelta(0)
    return first, lasted


def settlement(
    item: OutboxItem,
    state: DeliveryState,
    at: datetime,
    *,
    attempts: int,
    due: datetime | None = None,
    error: str | None = None,
    reached: tuple[TargetResult, ...] = (),
    failing: Elapsed | None = None,
) -> Settlement:
    """The one maker of a `Settlement`: `item`'s new `state` at `at` (wall clock), with the
    `attempts` spent so far, when it is `due` again (None once sent or dead), the last
    `error`, and what each URL answered: `reached` (this attempt's targets) plus the URLs an
    earlier attempt reached that this one did not try (they stay delivered). A pending row
    keeps the elapsed-clock reading of its first failure (`failing`, else the item's own);
    a sent or dead one has none."""
    pending = state is DeliveryState.PENDING
    return Settlement(
        outbox_id=item.id,
        state=state,
        at=at,
        attempts=attempts,
        next_attempt_at=due,
        error=error,
        targets=reached + earlier_targets(item, reached),
        failing_for=(failing or item.failing_for) if pending else None,
    )


def earlier_targets(
    item: OutboxItem, now: tuple[TargetResult, ...] = ()
) -> tuple[TargetResult, ...]:
    """The URLs an earlier attempt reached that this one did not try: they stay delivered."""
    tried = {t.index for t in now}
    return tuple(
        TargetResult(name="earlier attempt", url="", ok=True, index=index)
        for index in sorted(item.delivered - tried)
    )

"""Deciding who gets what, and what to do after a delivery attempt. Pure.

- `route` turns transitions into outbox rows: one per (event, route) that asked for it.
- `plan` turns claimed outbox rows into sends; storm control groups a route's rows of one
  cycle into one message when there are more than the threshold.
- `settle` turns a send's result into settlements, each carrying the reason for its new state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from watcher.model import EventKind
from watcher.render import render, render_group
from watcher.state import (
    Delivery,
    DeliveryState,
    Message,
    OutboxItem,
    SendResult,
    Settlement,
    TargetResult,
    Transition,
)


@dataclass(frozen=True, slots=True)
class RouteRule:
    """The routing part of a route: which events, for which knowledge bases."""

    name: str
    events: frozenset[EventKind]
    knowledge_bases: frozenset[str] = frozenset({"*"})

    def wants(self, transition: Transition) -> bool:
        """Whether this route asked for this transition (API events ignore the KB filter)."""
        if transition.kind not in self.events:
            return False
        if transition.kb_uuid is None or "*" in self.knowledge_bases:
            return True
        return bool({transition.kb_uuid, transition.kb_name} & self.knowledge_bases)


def route(transitions: Iterable[Transition], rules: Sequence[RouteRule]) -> tuple[Delivery, ...]:
    """One outbox row for every (transition, route) pair where the route wants the event."""
    return tuple(
        Delivery(event_id=t.event_id, route=rule.name)
        for t in transitions
        for rule in rules
        if rule.wants(t)
    )


@dataclass(frozen=True, slots=True)
class Send:
    """One message to one route, settling the outbox rows it carries.

    `skip` names the route's URLs (by index) that already have these rows from an earlier,
    partly failed attempt: a retry goes only to the others, so no target hears it twice.
    """

    route: str
    items: tuple[OutboxItem, ...]
    message: Message
    skip: frozenset[int] = frozenset()


def plan(items: Sequence[OutboxItem], storm_threshold: int, dashboard: str) -> list[Send]:
    """Group claimed rows into sends: one each, or one per route and cycle beyond the threshold.

    Only rows that reached the same URLs so far are grouped, so each send can skip exactly
    the URLs that already have all of its rows.
    """
    groups: dict[tuple[str, str, frozenset[int]], list[OutboxItem]] = {}
    for item in items:
        groups.setdefault((item.route, item.cycle_id, item.delivered), []).append(item)
    sends: list[Send] = []
    for (route_name, _, skip), group in groups.items():
        if len(group) > storm_threshold:
            message = render_group([item.transition for item in group], dashboard)
            sends.append(Send(route_name, tuple(group), message, skip))
        else:
            sends.extend(
                Send(route_name, (item,), render(item.transition, dashboard), skip)
                for item in group
            )
    return sends


class SettleReason(StrEnum):
    """Why an outbox row ended up in its new state."""

    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT_FAILURE = "permanent_failure"
    EXPIRED = "expired"
    HELD = "held"  # reached every URL it tried; the route's down URLs wait for their retry


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff between attempts and the bound after which a row is dead-lettered."""

    base: timedelta = timedelta(seconds=30)
    maximum: timedelta = timedelta(minutes=30)
    dead_after: timedelta = timedelta(hours=24)
    permanent_attempts: int = 3


def backoff(attempts: int, policy: RetryPolicy, spread: float) -> timedelta:
    """Exponential backoff after `attempts` failures, scaled by `spread` in [0.5, 1] (jitter)."""
    exponent = min(max(attempts - 1, 0), 30)
    delay: timedelta = min(policy.base * (2**exponent), policy.maximum)
    return delay * min(max(spread, 0.5), 1.0)


def settle(
    send: Send, result: SendResult, now: datetime, policy: RetryPolicy
) -> list[tuple[Settlement, SettleReason]]:
    """What to write back for every row of a send, and why."""
    return [_settle_one(item, result, now, policy) for item in send.items]


def hold(
    send: Send, result: SendResult, until: Settlement
) -> list[tuple[Settlement, SettleReason]]:
    """A send that left out URLs found down earlier in this cycle: what it reached counts,
    the rows stay pending until that failure's retry, and no attempt is spent."""
    return [
        (
            Settlement(
                outbox_id=item.id,
                state=DeliveryState.PENDING,
                at=until.at,
                attempts=item.attempts,
                next_attempt_at=until.next_attempt_at,
                error=until.error,
                targets=result.targets + earlier_targets(item, result.targets),
            ),
            SettleReason.HELD,
        )
        for item in send.items
    ]


def failed_targets(result: SendResult) -> frozenset[int]:
    """The URLs (by index) a send failed on; empty when the failure is not per URL, which
    then counts as the whole route failing."""
    failed = [t.index for t in result.targets if not t.ok]
    if not failed or None in failed:
        return frozenset()
    return frozenset(index for index in failed if index is not None)


def _settle_one(
    item: OutboxItem, result: SendResult, now: datetime, policy: RetryPolicy
) -> tuple[Settlement, SettleReason]:
    attempts = item.attempts + 1
    if result.ok:
        return _settlement(item, DeliveryState.SENT, now, attempts, result), SettleReason.DELIVERED
    if result.permanent and attempts >= policy.permanent_attempts:
        dead = _settlement(item, DeliveryState.DEAD, now, attempts, result)
        return dead, SettleReason.PERMANENT_FAILURE
    if now - item.created_at >= policy.dead_after:
        return _settlement(item, DeliveryState.DEAD, now, attempts, result), SettleReason.EXPIRED
    # A stable per-row spread keeps retries of many rows from moving in lockstep.
    spread = 0.5 + (item.id * 2654435761 % 1000) / 2000
    retry_at = now + backoff(attempts, policy, spread)
    retry = _settlement(item, DeliveryState.PENDING, now, attempts, result, retry_at)
    return retry, SettleReason.RETRY


def _settlement(
    item: OutboxItem,
    state: DeliveryState,
    now: datetime,
    attempts: int,
    result: SendResult,
    next_attempt_at: datetime | None = None,
) -> Settlement:
    return Settlement(
        outbox_id=item.id,
        state=state,
        at=now,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        error=None if result.ok else (result.error or "delivery failed"),
        targets=result.targets + earlier_targets(item, result.targets),
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

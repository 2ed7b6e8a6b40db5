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
    """One message to one route, settling the outbox rows it carries."""

    route: str
    items: tuple[OutboxItem, ...]
    message: Message


def plan(items: Sequence[OutboxItem], storm_threshold: int, dashboard: str) -> list[Send]:
    """Group claimed rows into sends: one each, or one per route and cycle beyond the threshold."""
    groups: dict[tuple[str, str], list[OutboxItem]] = {}
    for item in items:
        groups.setdefault((item.route, item.cycle_id), []).append(item)
    sends: list[Send] = []
    for (route_name, _), group in groups.items():
        if len(group) > storm_threshold:
            transitions = [item.transition for item in group]
            sends.append(Send(route_name, tuple(group), render_group(transitions, dashboard)))
        else:
            sends.extend(
                Send(route_name, (item,), render(item.transition, dashboard)) for item in group
            )
    return sends


class SettleReason(StrEnum):
    """Why an outbox row ended up in its new state."""

    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT_FAILURE = "permanent_failure"
    EXPIRED = "expired"


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
        targets=result.targets,
    )

"""Delivering one route's due rows: planning the messages and the per-route state machine. Pure.

- `plan` turns the claimed rows into sends at send time: a route's rows due together are
  one message each, or one grouped message when there are more than `storm_threshold`,
  whatever poll produced them. Each send carries, per URL, the alert rendered within that
  URL's `Budget` (and shorter after a size refusal, see `decide.budget_caps`).
- `RouteRun` is one route's delivery in one round, driven as a fold: `next_step` says what
  to do (send, write settlements, or finish) and `after_send` folds a send's result in. After
  a retryable failure the URLs that failed are left out of the rest of the round (the others
  still get their alerts, once); when the route failed as a whole, its other rows wait for
  that failure's backoff without spending an attempt.
- `pace_wait` spaces the messages to one URL by the route's send interval, so a backlog
  never trips a service's own rate limit (Slack and Mattermost webhooks take about one
  message a second); `defer` leaves for a later cycle what would hold a round longer than
  it may wait (the poll must not wait on the pace).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

from watcher.core.decide import (
    RetryPolicy,
    Verdict,
    budget_caps,
    failed_targets,
    hold,
    postpone,
    settle,
    verdict,
)
from watcher.core.outbox import (
    Budget,
    DeliveryState,
    Message,
    OutboxItem,
    Send,
    SendResult,
    Settlement,
    SettleReason,
    TargetResult,
)
from watcher.core.render import render, render_group

Settled = tuple[tuple[Settlement, SettleReason], ...]


def plan(
    items: Sequence[OutboxItem],
    storm_threshold: int,
    dashboard: str,
    budgets: Mapping[str, Sequence[Budget]] | None = None,
) -> list[Send]:
    """Group claimed rows into sends per route, fitted to each URL's budget.

    Only rows that reached the same URLs so far are grouped, so each send can skip exactly
    the URLs that already have all of its rows.
    """
    groups: dict[tuple[str, frozenset[int]], list[OutboxItem]] = {}
    for item in items:
        groups.setdefault((item.route, item.delivered), []).append(item)
    sends: list[Send] = []
    for (route_name, skip), group in groups.items():
        limits = tuple((budgets or {}).get(route_name, ()))
        if len(group) > storm_threshold:
            transitions = [item.transition for item in group]
            grouped = partial(render_group, transitions, dashboard)
            sends.append(_fitted(route_name, group, skip, limits, grouped))
            continue
        for item in group:
            single = partial(render, item.transition, dashboard)
            sends.append(_fitted(route_name, [item], skip, limits, single))
    return sends


def _fitted(
    route_name: str,
    items: Sequence[OutboxItem],
    skip: frozenset[int],
    limits: Sequence[Budget],
    draw: Callable[[Budget], Message],
) -> Send:
    """A send whose message is drawn once per distinct budget among the URLs it goes to."""
    caps = budget_caps(items)
    drawn: dict[Budget, Message] = {Budget(): draw(Budget())}
    fitted: list[tuple[int, Message]] = []
    for index in sorted(set(range(len(limits))) | set(caps)):
        if index in skip:
            continue
        budget = limits[index] if index < len(limits) else Budget()
        cap = caps.get(index)
        if cap is not None and (budget.body is None or cap < budget.body):
            budget = replace(budget, body=cap)
        if budget not in drawn:
            drawn[budget] = draw(budget)
        if budget != Budget():
            fitted.append((index, drawn[budget]))
    return Send(route_name, tuple(items), drawn[Budget()], skip, tuple(fitted))


@dataclass(frozen=True, slots=True)
class SendNow:
    """Step: send this (after pacing)."""

    send: Send


@dataclass(frozen=True, slots=True)
class Write:
    """Step: write these settlements; nothing is sent."""

    settled: Settled


@dataclass(frozen=True, slots=True)
class Finished:
    """Step: the route's round is over."""


Step = SendNow | Write | Finished


@dataclass(frozen=True, slots=True)
class RouteRun:
    """One route's delivery in one round: what is left, what was learnt on the way.

    `down` are URLs that failed retryably this round (left out of its other sends);
    `failure` the first retryable failure (its backoff is when the postponed rows retry);
    `failures` every failed target of the round, for the route's delivery health.
    """

    route: str
    queue: tuple[Send, ...]
    urls: int = 0
    down: frozenset[int] = frozenset()
    failure: Settlement | None = None
    tried: int = 0
    delivered: int = 0
    dead: int = 0
    failures: tuple[TargetResult, ...] = ()
    resized: bool = False
    reasons: tuple[SettleReason, ...] = ()
    news: bool = False  # the round recorded delivery_failing / delivery_recovered


def start(route_name: str, sends: Sequence[Send], urls: int = 0) -> RouteRun:
    """A route's round over its sends, in order; `urls` is how many URLs the route has."""
    return RouteRun(route=route_name, queue=tuple(sends), urls=urls)


def next_step(run: RouteRun) -> tuple[RouteRun, Step]:
    """What to do next, and the run without that step in its queue."""
    if not run.queue:
        return run, Finished()
    if run.failure is not None and not run.down:  # failed as a whole: the rest waits
        waiting = tuple(postpone(run.queue, run.failure))
        return _noted(replace(run, queue=()), waiting), Write(waiting)
    send, rest = run.queue[0], run.queue[1:]
    send = replace(send, skip=send.skip | run.down)
    everything = frozenset(range(run.urls))
    if run.failure is not None and run.urls and everything <= send.skip:
        settled = tuple(hold(send, SendResult(ok=True), run.failure))
        return _noted(replace(run, queue=rest), settled), Write(settled)
    return replace(run, queue=rest), SendNow(send)


def after_send(
    run: RouteRun, send: Send, result: SendResult, now: datetime, policy: RetryPolicy
) -> tuple[RouteRun, Settled]:
    """Fold a send's result in: the settlements to write and the run's new knowledge."""
    if run.failure is not None and (result.ok or not result.targets):
        settled = tuple(hold(send, result, run.failure))
    else:
        settled = tuple(settle(send, result, now, policy))
    run = _noted(run, settled)
    failed = tuple(t for t in result.targets if not t.ok)
    run = replace(
        run,
        tried=run.tried + 1,
        delivered=run.delivered + (1 if result.ok else 0),
        failures=run.failures + failed,
    )
    if not result.ok and not result.targets:
        run = replace(run, failures=(*run.failures, _whole_route(send, result)))
    held = bool(settled) and settled[0][1] is SettleReason.HELD
    if not held and verdict(result) is Verdict.RETRY:
        run = replace(
            run,
            failure=run.failure or settled[0][0],
            down=run.down | failed_targets(result),
        )
    return run, settled


def defer(run: RouteRun, send: Send, now: datetime, until: datetime) -> tuple[RouteRun, Settled]:
    """Pacing would hold this route too long in one round: this send and the rest of the
    queue wait for their pace slot (`until`), unspent, and go with a later cycle."""
    slot = Settlement(
        outbox_id=0, state=DeliveryState.PENDING, at=now, attempts=0, next_attempt_at=until
    )
    waiting = tuple(postpone((send, *run.queue), slot))
    return _noted(replace(run, queue=()), waiting), waiting


def _noted(run: RouteRun, settled: Sequence[tuple[Settlement, SettleReason]]) -> RouteRun:
    reasons = tuple(reason for _, reason in settled)
    dead = sum(r in (SettleReason.PERMANENT_FAILURE, SettleReason.EXPIRED) for r in reasons)
    resized = run.resized or SettleReason.RESIZED in reasons
    return replace(run, reasons=run.reasons + reasons, dead=run.dead + dead, resized=resized)


def _whole_route(send: Send, result: SendResult) -> TargetResult:
    """A failure that names no target (the notifier crashed, the route has no URLs)."""
    return TargetResult(name="route", url=send.route, ok=False, detail=result.error or "failed")


def pace_wait(
    last_sent: Mapping[int, float], send: Send, urls: int, now: float, interval: float
) -> float:
    """Seconds to wait before `send` so that no URL it goes to gets two messages closer than
    `interval` seconds (all times on the monotonic clock)."""
    if interval <= 0:
        return 0.0
    targets = [i for i in range(urls) if i not in send.skip] if urls else list(last_sent)
    due = max((last_sent[i] + interval for i in targets if i in last_sent), default=now)
    return max(due - now, 0.0)

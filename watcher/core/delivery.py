"""One route's delivery round, as a pure fold: `fold(run, event) -> (run, actions)`.

A round takes the sends planned for one route (`watcher.core.plan`) in order. The shell
(`watcher.service.dispatch`) makes the run with `start`, feeds it `Began()`, carries out the
actions it gets back, in order, and feeds back what came of the send it was asked for:

    Began()                      -> [Write ...] then SendNow(send) or Finished()
    Sent(send, result, at)       -> Write(its rows' settlements), [Write ...], then one of them
    Deferred(send, at, until)    -> Write(postponed rows), Finished()

Every answer ends with exactly one `SendNow` or `Finished`; the `Write`s before it settle rows
(each settlement with its `SettleReason`). The rules:

- A send that goes out is settled by its result (`decide.settle`): delivered; retried with
  backoff; re-rendered shorter at once after a size refusal; dead-lettered.
- The round's first retryable failure is its setback. The URLs that failed are "down": they
  are left out of the round's later sends, which still go to the other URLs and are then
  held (pending until the setback's retry, no attempt spent), so every URL still up gets
  each alert once. A send with no URL left to try is held without being sent.
- A setback that names no URL (the route failed as a whole) stops the round: the rest of the
  queue waits for the setback's retry, postponed, no attempt spent.
- `Deferred`: pacing would hold the round longer than it may wait; that send and the rest
  of the queue wait for their pace slot (`until`), postponed, and go with a later cycle.

Times are the wall clock's (they are written to the store for people and backoffs), except
`Sent.elapsed`, the elapsed-clock reading `dead_after` is measured on; pacing is measured on
the monotonic clock by the shell, which says only `until`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import assert_never

from watcher.core.clocks import Elapsed
from watcher.core.decide import (
    RetryPolicy,
    Verdict,
    failed_targets,
    hold,
    postpone,
    settle,
    verdict,
)
from watcher.core.outbox import Send, SendResult, Settlement, SettleReason, TargetResult

Settled = tuple[tuple[Settlement, SettleReason], ...]
"""Settlements to write, each with the reason for the row's new state."""


# --- events: what the shell tells the fold ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Began:
    """Event: the round starts."""


@dataclass(frozen=True, slots=True)
class Sent:
    """Event: the notifier answered `send` (the one `SendNow` asked for) with `result`;
    `at` is the wall clock when it answered, `elapsed` the same moment on the elapsed clock
    (how long a row has failed is measured on it: `decide`)."""

    send: Send
    result: SendResult
    at: datetime
    elapsed: Elapsed


@dataclass(frozen=True, slots=True)
class Deferred:
    """Event: `send` (the one `SendNow` asked for) may go only at `until` (wall clock), later
    than the round may wait; `at` is the wall clock now. Nothing was sent."""

    send: Send
    at: datetime
    until: datetime


Event = Began | Sent | Deferred


# --- actions: what the fold tells the shell ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendNow:
    """Action: send this (after its pace), then feed back `Sent` or `Deferred`."""

    send: Send


@dataclass(frozen=True, slots=True)
class Write:
    """Action: write these settlements. `answers` is the attempt they settle (None for rows
    settled without a send of their own: postponed, deferred, held unsent)."""

    settled: Settled
    answers: Sent | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    """Action: the round is over."""


Action = SendNow | Write | Finished


# --- the state ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteRun:
    """One route's delivery in one round: what is left to send and what was learnt on the way.

    `queue` the sends not yet tried, in order; `urls` how many URLs the route has (0: unknown,
    no URL is ever left out); `policy` the retry bounds. `down` the URLs (by index) that
    failed retryably this round, left out of its later sends; `setback` the settlement of the
    round's first retryable failure (its retry is when held and postponed rows are due).
    Counts for the route's delivery health: `tried` sends, `delivered` fully, `dead` rows
    given up, `failures` every failed target (or the whole route). `resized` says a row was
    refused for its size (another round follows at once); `reasons` every settlement's
    reason, in order; `news` is set by the shell when the round recorded delivery news.
    """

    route: str
    queue: tuple[Send, ...]
    urls: int = 0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    down: frozenset[int] = frozenset()
    setback: Settlement | None = None
    tried: int = 0
    delivered: int = 0
    dead: int = 0
    failures: tuple[TargetResult, ...] = ()
    resized: bool = False
    reasons: tuple[SettleReason, ...] = ()
    news: bool = False


def start(
    route_name: str, sends: Sequence[Send], urls: int = 0, policy: RetryPolicy | None = None
) -> RouteRun:
    """A route's round over its sends, in order; `urls` is how many URLs the route has."""
    return RouteRun(route_name, tuple(sends), urls, policy or RetryPolicy())


def fold(run: RouteRun, event: Event) -> tuple[RouteRun, tuple[Action, ...]]:
    """The run after `event`, and what the shell is to do now (see the module's rules)."""
    match event:
        case Began():
            return _advance(run, ())
        case Sent(send, result, at, elapsed):
            run, settled = _settle_sent(run, send, result, at, elapsed)
            return _advance(run, (Write(settled, event),))
        case Deferred(send, at, until):
            waiting = tuple(postpone((send, *run.queue), at, until))
            return _advance(_noted(replace(run, queue=()), waiting), (Write(waiting),))
        case _:
            assert_never(event)


def _advance(run: RouteRun, actions: tuple[Action, ...]) -> tuple[RouteRun, tuple[Action, ...]]:
    """Settle what needs no send, up to the next send or the end of the round."""
    while True:
        if not run.queue:
            return run, (*actions, Finished())
        if run.setback is not None and not run.down:  # failed as a whole: the rest waits
            due = run.setback.next_attempt_at
            waiting = tuple(postpone(run.queue, run.setback.at, due))
            run = _noted(replace(run, queue=()), waiting)
            actions += (Write(waiting),)
            continue
        send, rest = replace(run.queue[0], skip=run.queue[0].skip | run.down), run.queue[1:]
        run = replace(run, queue=rest)
        everything = frozenset(range(run.urls))
        if run.setback is not None and run.urls and everything <= send.skip:
            held = tuple(hold(send, SendResult(ok=True), run.setback))  # no URL left to try
            run = _noted(run, held)
            actions += (Write(held),)
            continue
        return run, (*actions, SendNow(send))


def _settle_sent(
    run: RouteRun, send: Send, result: SendResult, at: datetime, elapsed: Elapsed
) -> tuple[RouteRun, Settled]:
    """Fold a send's result in: its rows' settlements and what the round learnt."""
    if run.setback is not None and (result.ok or not result.targets):
        settled = tuple(hold(send, result, run.setback))
    else:
        settled = tuple(settle(send, result, at, run.policy, elapsed=elapsed))
    failed = tuple(t for t in result.targets if not t.ok)
    if not result.ok and not result.targets:
        failed = (_whole_route(send, result),)
    run = replace(
        _noted(run, settled),
        tried=run.tried + 1,
        delivered=run.delivered + (1 if result.ok else 0),
        failures=run.failures + failed,
    )
    held = bool(settled) and settled[0][1] is SettleReason.HELD
    if not held and verdict(result) is Verdict.RETRY:
        setback = run.setback or settled[0][0]
        run = replace(run, setback=setback, down=run.down | failed_targets(result))
    return run, settled


def _noted(run: RouteRun, settled: Settled) -> RouteRun:
    reasons = tuple(reason for _, reason in settled)
    dead = sum(r in (SettleReason.PERMANENT_FAILURE, SettleReason.EXPIRED) for r in reasons)
    resized = run.resized or SettleReason.RESIZED in reasons
    return replace(run, reasons=run.reasons + reasons, dead=run.dead + dead, resized=resized)


def _whole_route(send: Send, result: SendResult) -> TargetResult:
    """A failure that names no target (the notifier crashed, the route has no URLs)."""
    return TargetResult(name="route", url=send.route, ok=False, detail=result.error or "failed")

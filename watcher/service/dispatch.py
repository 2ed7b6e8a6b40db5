"""The deliver stage of a cycle: what is due in the outbox goes out, route by route.

The decisions are pure: `watcher.core.plan` (the messages, fitted and paced),
`watcher.core.delivery` (each route's round, a fold of events into actions),
`watcher.core.decide` (what a result means) and `watcher.core.deliveryhealth`. This module only
carries them out: it claims the due rows, asks the notifier for each URL's size limits, drives
each route's round (routes in parallel, each in order), waits for the pace between messages
to one URL on the monotonic clock, writes every settlement, and records `delivery_failing` /
`delivery_recovered` when a route's health changes.

A round that re-rendered rows after a size refusal, or that recorded delivery news, is
followed by another at once (at most `_ROUNDS` in all).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import assert_never

import structlog

from watcher.core.clocks import Elapsed
from watcher.core.decide import RetryPolicy, RouteRule, release, route
from watcher.core.delivery import (
    Began,
    Deferred,
    Event,
    Finished,
    RouteRun,
    SendNow,
    Sent,
    Write,
    fold,
    start,
)
from watcher.core.deliveryhealth import DeliveryHealth, RouteRound, delivery_health
from watcher.core.errors import StoreHeld
from watcher.core.outbox import Budget, OutboxItem, Send, SendResult, Settlement, SettleReason
from watcher.core.plan import pace_wait, plan
from watcher.core.ports import MetaStore, Notifier, Outbox, SilenceBook, StateStore
from watcher.core.present import Presentation
from watcher.core.quiet import hold, quiet_ends
from watcher.core.render import DASHBOARD
from watcher.core.silences import OPENED_BY, Held, held_opener
from watcher.core.silences import hold as hold_silenced
from watcher.core.state import Change
from watcher.core.windows import TimeWindow
from watcher.edges.hostclock import elapsed_now

log = structlog.get_logger(__name__)

_ROUNDS = 4
_BATCHES = 10  # claims of `DispatchSettings.batch` rows in one round, at most
HEALTH_KEY = "delivery_health"


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """What delivery needs from the configuration."""

    rules: tuple[RouteRule, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    storm_threshold: int = 5
    dashboard: str = DASHBOARD
    batch: int = 200
    send_interval: timedelta = timedelta(seconds=1)
    route_send_intervals: Mapping[str, timedelta] = field(default_factory=dict)
    failing_after: timedelta = timedelta(minutes=10)
    max_pace_wait: timedelta = timedelta(seconds=5)  # per route and round; the rest waits
    wait: timedelta = timedelta(seconds=5)  # a cycle's wait for its rounds; longer: background
    presentations: Mapping[str, Presentation] = field(default_factory=dict)  # per route
    mutes: Mapping[str, tuple[TimeWindow, ...]] = field(default_factory=dict)  # mute_during

    @property
    def longest_wait(self) -> timedelta:
        """The furthest ahead this stage ever sets a row's next attempt: the longest backoff
        or pace slot. A stored time further ahead can only come from a step of the wall
        clock, and the row is due at once."""
        intervals = [self.send_interval, *self.route_send_intervals.values()]
        return max([self.retry.maximum, *intervals])

    def interval(self, route_name: str) -> float:
        """Seconds between two messages to one URL of `route_name`."""
        return self.route_send_intervals.get(route_name, self.send_interval).total_seconds()


class Dispatcher:
    """Sends what is due through one notifier; remembers when each URL last got a message."""

    def __init__(
        self,
        outbox: Outbox,
        store: StateStore,
        meta: MetaStore,
        notifier: Notifier,
        settings: DispatchSettings,
        clock: Callable[[], datetime],
        *,
        elapsed: Callable[[], Elapsed] = elapsed_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        silences: SilenceBook | None = None,
    ) -> None:
        self.outbox, self.store, self.meta, self.notifier = outbox, store, meta, notifier
        self.silences = silences  # read each round: a silence added meanwhile holds at once
        self.settings, self.clock, self.elapsed = settings, clock, elapsed
        self.monotonic, self.sleep = monotonic, sleep
        self._last_sent: dict[str, dict[int, float]] = {}
        self._running: dict[str, asyncio.Task[RouteRun]] = {}
        self._late: list[tuple[str, SettleReason]] = []  # rounds that ended in the background

    async def deliver(self, wait: float | None = None) -> tuple[tuple[str, SettleReason], ...]:
        """Send what is due; return each finished row's route and what became of it.

        Each route's round runs as its own task. This waits for the rounds it started at most
        `wait` seconds (default `settings.wait`; `drain` waits for the rest). A longer one (a
        receiver answering slowly until the deadline) goes on in the background, so one slow
        route never holds the poll nor the other routes; its rows due meanwhile wait for it
        (a URL never gets two sends at once).
        """
        budget = self.settings.wait.total_seconds() if wait is None else wait
        started = self.monotonic()
        outcomes, self._late = self._late, []
        now = self.clock()
        early = await self.outbox.release_held(quiet_ends(self.settings.mutes, now), now)
        if early:  # held for a window the configuration no longer has: due now, not later
            log.info("held_alerts_released", count=early)
        for _ in range(_ROUNDS):
            left = max(budget - (self.monotonic() - started), 0.0)
            runs = await self._round(left)
            outcomes += [(run.route, reason) for run in runs for reason in run.reasons]
            if not any(run.resized or run.news for run in runs):
                break
        return tuple(outcomes)

    @property
    def busy(self) -> bool:
        """Whether a route's round still runs in the background, or one ended untold."""
        return bool(self._running or self._late)

    async def drain(self) -> None:
        """Wait until every round still running in the background has ended."""
        while self._running:
            await asyncio.wait(list(self._running.values()))

    async def cancel(self) -> None:
        """Stop every round still running (a stop): its rows stay claimed and go back to the
        queue when the store is next opened (or after their lease)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _round(self, wait: float) -> list[RouteRun]:
        """Start a round for each route with due rows (not for one still sending: its rows
        go back to the queue, unspent); return the rounds that ended within `wait`."""
        # A retry time further ahead than any wait this stage sets comes from a wall-clock step.
        longest = self.settings.longest_wait
        items = await self._unsilenced(await self._claim(longest))
        busy = [item for item in items if item.route in self._running]
        if busy:
            await self.outbox.settle(release(busy, self.clock()))
        items = [item for item in items if item.route not in self._running]
        items, held = hold(items, self.settings.mutes, self.clock())
        if held:  # a route in its quiet hours: back to the queue until they end, unspent
            await self.outbox.settle(held)
            log.info("alerts_held", count=len(held), until=[s.error for s in held[:1]])
        if not items:
            return []
        budgets = {item.route: self._budgets(item.route) for item in items}
        by_route: dict[str, list[Send]] = {}
        shown = self.settings.presentations
        for send in plan(
            items, self.settings.storm_threshold, self.settings.dashboard, budgets, shown
        ):
            by_route.setdefault(send.route, []).append(send)
            if send.template_failures:  # the built-in text goes instead: the alert is not lost
                events = [item.transition.event_id for item in send.items]
                for failure in send.template_failures:
                    log.warning("template_failed", route=send.route, events=events, error=failure)
        tasks = []
        for name, sends in by_route.items():
            run = start(name, sends, len(budgets[name]), self.settings.retry)
            task = asyncio.ensure_future(self._finish(run))
            self._running[name] = task
            task.add_done_callback(partial(self._ended, name))
            tasks.append(task)
        done, _ = await asyncio.wait(tasks, timeout=wait)
        ended = [task for task in tasks if task in done and not task.cancelled()]
        for task in ended:
            error = task.exception()
            if error is not None and not isinstance(error, Exception):
                raise error  # the process is going down (KeyboardInterrupt, SystemExit)
        for task in tasks:
            if task not in done:
                task.add_done_callback(self._count_late)
        return [task.result() for task in ended if task.exception() is None]

    async def _claim(self, longest: timedelta) -> list[OutboxItem]:
        """The due rows, claimed `batch` at a time while a claim comes back full, up to
        `_BATCHES` of them: a storm of 260 is planned as one (its parts numbered of one
        whole, worst first), not as 200 now and 60 a poll later."""
        batch = self.settings.batch
        items: list[OutboxItem] = []
        for _ in range(_BATCHES):
            claimed = await self.outbox.claim_due(self.clock(), batch, longest)
            items += claimed
            if len(claimed) < batch:
                break
        return items

    async def _unsilenced(self, items: list[OutboxItem]) -> list[OutboxItem]:
        """The claimed rows no silence holds; the held ones are settled `silenced` (never
        sent, never lost: `watcher.core.silences`)."""
        if self.silences is None or not items:
            return items
        now = self.clock()
        send, held = hold_silenced(items, await self.silences.current_silences(now), now)
        send, closed = await self._closers_of_held(send)
        held += closed
        if held:
            await self.outbox.settle([h.settlement(now) for h in held])
            for h in held:
                event = h.item.transition.event_id
                log.info("alert_silenced", route=h.item.route, event_id=event, silence=h.silence_id)
        return send

    async def _closers_of_held(
        self, items: list[OutboxItem]
    ) -> tuple[list[OutboxItem], list[Held]]:
        """Split off the closers (`api_recovered`, ...) whose opener a silence held on the same
        route: held by that silence too, even after it ended (nobody heard the opener)."""
        assert self.silences is not None
        send: list[OutboxItem] = []
        held: list[Held] = []
        for item in items:
            opener = OPENED_BY.get(item.transition.kind)
            earlier = (
                await self.silences.silenced_openers(item.route, opener, item.id)
                if opener is not None
                else []
            )
            silence_id = held_opener(item.transition, earlier)
            if silence_id is None:
                send.append(item)
            else:
                held.append(Held(item, silence_id))
        return send, held

    def _count_late(self, task: asyncio.Task[RouteRun]) -> None:
        if not task.cancelled() and task.exception() is None:
            run = task.result()
            self._late += [(run.route, reason) for reason in run.reasons]

    def _ended(self, name: str, task: asyncio.Task[RouteRun]) -> None:
        if self._running.get(name) is task:
            del self._running[name]
        error = None if task.cancelled() else task.exception()
        if isinstance(error, Exception):  # a bug: logged; its claimed rows return after lease
            log.error("delivery_round_failed", route=name, error=repr(error))

    async def _finish(self, run: RouteRun) -> RouteRun:
        """One route's round to its end, then its delivery health."""
        run = await self._drive(run)
        news = await self._health(run)
        return replace(run, news=news)

    async def _drive(self, run: RouteRun) -> RouteRun:
        """Carry out one route's round (`watcher.core.delivery`): write and send as the fold
        says, pace each send, and feed back what came of it, until the round is finished."""
        waited = 0.0
        run, actions = fold(run, Began())
        while True:
            event: Event | None = None
            for action in actions:
                match action:
                    case Write(settled, answers):
                        await self.outbox.settle([s for s, _ in settled])
                        if answers is not None:
                            _log_delivery(answers.send, answers.result, settled)
                    case SendNow(send):
                        event, waited = await self._paced_send(send, run.urls, waited)
                    case Finished():
                        return run
                    case _:
                        assert_never(action)
            assert event is not None, "every answer of the fold ends in SendNow or Finished"
            run, actions = fold(run, event)

    async def _paced_send(self, send: Send, urls: int, waited: float) -> tuple[Event, float]:
        """Send at the route's pace; `Deferred` when that would make the round wait longer
        than `max_pace_wait` in all. Returns the event and the seconds waited so far."""
        wait = self._wait(send, urls)
        if waited + wait > self.settings.max_pace_wait.total_seconds():
            now = self.clock()
            return Deferred(send, now, now + timedelta(seconds=wait)), waited
        if wait > 0:
            await self.sleep(wait)
            waited += wait
        self._sent_now(send, urls)
        result = await self._send(send)
        return Sent(send, result, self.clock(), self.elapsed()), waited

    def _budgets(self, route_name: str) -> tuple[Budget, ...]:
        try:
            return tuple(self.notifier.budgets(route_name))
        except Exception:  # limits are a refinement: without them the alert goes out whole
            log.exception("delivery_limits_unknown", route=route_name)
            return ()

    def _wait(self, send: Send, urls: int) -> float:
        """Seconds until `send` may go at its route's pace (monotonic clock)."""
        last = self._last_sent.get(send.route, {})
        return pace_wait(last, send, urls, self.monotonic(), self.settings.interval(send.route))

    def _sent_now(self, send: Send, urls: int) -> None:
        last = self._last_sent.setdefault(send.route, {})
        now = self.monotonic()
        for index in range(max(urls, 1)):
            if index not in send.skip:
                last[index] = now

    async def _send(self, send: Send) -> SendResult:
        try:
            return await self.notifier.send(
                send.route, send.message, send.skip, dict(send.fitted) or None
            )
        except Exception as exc:  # a notifier bug must not lose the row: retry it later
            log.exception("delivery_crashed", route=send.route)
            return SendResult(ok=False, error=f"notifier error: {type(exc).__name__}")

    async def _health(self, run: RouteRun) -> bool:
        """Fold the round into the route's delivery health; True when news was recorded."""
        if run.tried == 0:
            return False
        key = f"{HEALTH_KEY}/{run.route}"
        previous = decode_health(await self.meta.get_meta(key))
        seen = RouteRound(run.route, run.tried, run.delivered, run.dead, run.failures)
        now, elapsed = self.clock(), self.elapsed()
        after = self.settings.failing_after
        health, news = delivery_health(previous, seen, now, elapsed, after)
        if health == previous:
            return False
        change = Change(
            cycle_id=uuid.uuid4().hex[:12],
            at=now,
            transitions=news,
            deliveries=route(news, self.settings.rules),
        )
        try:
            await self.store.record(change, meta={key: encode_health(health)})
        except StoreHeld:  # a replica standing by delivers; the one polling keeps the health
            return False
        for t in news:
            log.warning(t.kind.value, route=run.route, event_id=t.event_id, detail=t.detail)
        return bool(news)


def encode_health(health: DeliveryHealth) -> str:
    """A route's delivery health as the JSON kept in the store's meta table."""
    since = health.failing_since.isoformat() if health.failing_since else None
    measured = health.failing_for.encode() if health.failing_for else None
    document = {
        "failing_since": since,
        "alerted": health.alerted,
        "error": health.last_error,
        "failing_for": measured,
    }
    return json.dumps(document)


def decode_health(raw: str | None) -> DeliveryHealth:
    """The delivery health `encode_health` wrote (healthy when absent or unreadable)."""
    try:
        data = json.loads(raw) if raw else {}
        since = data.get("failing_since")
        return DeliveryHealth(
            failing_since=datetime.fromisoformat(since) if since else None,
            alerted=bool(data.get("alerted")),
            last_error=data.get("error"),
            failing_for=Elapsed.decode(data.get("failing_for")),
        )
    except (ValueError, TypeError, AttributeError):
        return DeliveryHealth()


def _log_delivery(
    send: Send, result: SendResult, settled: Sequence[tuple[Settlement, SettleReason]]
) -> None:
    """One log line for a send, named for what became of its rows (they share one fate)."""
    if not settled:
        return
    events = [item.transition.event_id for item in send.items]
    reason = settled[0][1]
    match reason:
        case SettleReason.DELIVERED:
            log.info("alert_delivered", route=send.route, events=events)
        case SettleReason.HELD:
            skipped = sorted(send.skip)
            log.info("alert_partly_delivered", route=send.route, events=events, skipped=skipped)
        case SettleReason.RESIZED:
            log.info("alert_too_large", route=send.route, events=events, error=result.error)
        case SettleReason.EXPIRED | SettleReason.PERMANENT_FAILURE:
            log.error(
                "alert_dead_lettered",
                route=send.route,
                events=events,
                reason=reason,
                error=result.error,
            )
        case SettleReason.RETRY | SettleReason.POSTPONED:
            log.warning("alert_failed", route=send.route, events=events, error=result.error)
        case _:
            assert_never(reason)

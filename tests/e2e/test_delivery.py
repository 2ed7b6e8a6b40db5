"""End to end: alerts survive receivers that are down and watchers that die mid-way.

The outbox promise under test: every transition reaches every route that asked for it, once,
across receiver outages and process restarts; a failing route never holds up a healthy one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import HarnessFactory
from tests.harness import CHAT, HOOK, MAIL, Harness, Receivers, route, simulator
from watcher.core.outbox import Budget, Message, OutboxItem, SendResult, Settlement
from watcher.edges.store.sqlite import DEFAULT_LEASE

EVENTS = ["started", "completed", "partial", "failed"]

# Three KBs whose jobs end at t=15, 35 and 55; the watcher polls every 10 s from t=0.
STAGGERED: dict[str, Any] = {
    "knowledge_bases": [
        {"key": key, "name": f"{key}-kb", "data_sources": [{"key": "s", "items": 30}]}
        for key in ("early", "middle", "late")
    ],
    "timeline": [
        {"at": 5, "start_job": {"kb": "early", "id": "e", "pending": 2, "run": 8}},
        {
            "at": 5,
            "start_job": {"kb": "middle", "id": "m", "pending": 2, "run": 28, "outcome": "failed"},
        },
        {
            "at": 5,
            "start_job": {"kb": "late", "id": "l", "pending": 2, "run": 48, "outcome": "partial"},
        },
    ],
}
ALL_ALERTS = Counter(
    {
        ("started", "early-kb"): 1,
        ("started", "middle-kb"): 1,
        ("started", "late-kb"): 1,
        ("completed", "early-kb"): 1,
        ("failed", "middle-kb"): 1,
        ("partial", "late-kb"): 1,
    }
)


def tally(receivers: Receivers, name: str) -> Counter[tuple[str, str]]:
    """Every event the route's receiver was told, a grouped alert counting each of its lines."""
    return Counter(event for alert in receivers.alerts(name) for event in alert.events())


async def _staggered(make_harness: HarnessFactory, receivers: Receivers) -> Harness:
    urls = receivers.urls()
    routes = [route(name, urls[name], EVENTS) for name in (HOOK, MAIL, CHAT)]
    return await make_harness(simulator(STAGGERED), routes)


async def _undelivered(harness: Harness) -> int:
    assert harness.runtime is not None
    snapshot = await harness.runtime.store.snapshot(harness.sim.now())
    return snapshot.undelivered


async def test_routes_that_were_down_get_every_alert_once_when_back_and_a_healthy_route_on_time(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    harness = await _staggered(make_harness, receivers)
    await harness.cycle()
    receivers.hook.go_down()  # connection refused
    receivers.mail.refuse()  # 451 try again later

    detected = 0
    for _ in range(7):  # t = 10 ... 70: every job starts and ends during the outage
        report = await harness.step(10)
        detected += len(report.events)
        # the healthy route has everything detected so far, at once and only once
        assert sum(tally(receivers, CHAT).values()) == detected
        assert receivers.alerts(HOOK) == [] and receivers.alerts(MAIL) == []
    assert tally(receivers, CHAT) == ALL_ALERTS
    assert receivers.mail.refused > 0
    assert await _undelivered(harness) == 12

    receivers.hook.come_up()
    receivers.mail.accept()
    await harness.step(10)  # retry_max is 8 s: every postponed row is due again

    # The backlog of 12 is one grouped message per route, not a burst of 12 (threshold 5).
    assert receivers.kinds(HOOK) == ["group"] and receivers.kinds(MAIL) == ["group"]
    assert tally(receivers, HOOK) == ALL_ALERTS
    assert tally(receivers, MAIL) == ALL_ALERTS
    await harness.run(60, every=10)
    for name in (HOOK, MAIL, CHAT):
        assert tally(receivers, name) == ALL_ALERTS, name
    assert await _undelivered(harness) == 0


async def test_a_failing_route_is_retried_with_backoff_not_on_every_cycle(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    harness = await _staggered(make_harness, receivers)
    await harness.cycle()
    receivers.hook.answer(503)
    await harness.step(10)  # two `started` alerts: the first fails, the second is postponed
    assert [r.answered for r in receivers.hook.requests] == [503]
    await harness.step(0.5)  # the first retry waits 1 to 2 s (retry_base 2 s, jitter)
    assert len(receivers.hook.requests) == 1
    receivers.hook.answer(200)
    await harness.step(2)
    assert Counter(kind for kind, _ in tally(receivers, HOOK).elements()) == {"started": 3}


async def test_alerts_detected_while_every_receiver_was_unreachable_survive_a_restart(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    harness = await _staggered(make_harness, receivers)
    await harness.cycle()
    receivers.hook.go_down()
    receivers.chat.go_down()
    receivers.mail.refuse()
    await harness.run(60, every=10)
    assert await _undelivered(harness) == 18

    await harness.restart()  # a new process on the same state file
    receivers.hook.come_up()
    receivers.chat.come_up()
    receivers.mail.accept()
    await harness.run(30, every=10)

    for name in (HOOK, MAIL, CHAT):
        assert tally(receivers, name) == ALL_ALERTS, name
    assert await _undelivered(harness) == 0


class Crash(BaseException):
    """The process dies here (nothing in the watcher may catch it, as with kill -9)."""


class DiesBeforeClaiming:
    """An outbox that kills the process between recording a cycle and claiming its rows."""

    async def claim_due(
        self, now: datetime, limit: int, longest_wait: timedelta | None = None
    ) -> list[OutboxItem]:
        raise Crash

    async def release_held(self, ends: Mapping[str, datetime], now: datetime) -> int:
        return 0  # nothing is held: it dies at the claim

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        raise AssertionError("nothing was claimed")


class DiesWhileSending:
    """A notifier that kills the process once rows are claimed ('sending'), before any send."""

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return ()

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        raise Crash


STARTED = Counter({k: n for k, n in ALL_ALERTS.items() if k[0] == "started"})


async def _die_in_the_next_cycle(harness: Harness) -> None:
    """Run one cycle in which the process dies (a `Crash` nothing may catch), then stop."""
    harness.sim.advance(10)
    with pytest.raises(Crash):
        await harness.cycle()
    await harness.stop()


async def test_a_process_killed_between_detection_and_delivery_loses_and_doubles_nothing(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    harness = await _staggered(make_harness, receivers)
    await harness.cycle()
    runtime = await harness.restart()
    runtime.cycle.dispatcher.outbox = DiesBeforeClaiming()
    await _die_in_the_next_cycle(harness)
    assert receivers.alerts(HOOK) == []

    await harness.start()
    await harness.cycle()  # the same moment again: nothing new to detect, the rows are due
    for name in (HOOK, MAIL, CHAT):
        assert tally(receivers, name) == STARTED, name
    await harness.run(60, every=10)
    for name in (HOOK, MAIL, CHAT):
        assert tally(receivers, name) == ALL_ALERTS, name


async def test_rows_claimed_when_the_process_died_are_sent_once_right_after_restart(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    """Nobody else has the store open: the dead process's claims go back at once, not after
    their lease (see `watcher.edges.store_lock`)."""
    harness = await _staggered(make_harness, receivers)
    await harness.cycle()
    runtime = await harness.restart()
    runtime.cycle.dispatcher.notifier = DiesWhileSending()
    await _die_in_the_next_cycle(harness)

    await harness.start()
    await harness.cycle()  # right after the restart the orphaned `started` rows go, once each
    for name in (HOOK, MAIL, CHAT):
        assert tally(receivers, name) == STARTED, name
    assert await _undelivered(harness) == 0

    lease = DEFAULT_LEASE.total_seconds()
    await harness.step(lease + 1)  # every job ended meanwhile; nothing is sent twice
    for name in (HOOK, MAIL, CHAT):
        assert tally(receivers, name) == ALL_ALERTS, name
    await harness.run(30, every=10)
    for name in (HOOK, MAIL, CHAT):
        assert tally(receivers, name) == ALL_ALERTS, name
    assert await _undelivered(harness) == 0


async def test_a_route_with_one_url_down_never_repeats_an_alert_to_its_healthy_urls(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    """Two URLs on one route: while the webhook is down, every retry goes to it alone, so
    the Mattermost hook of the same route hears each alert exactly once."""
    urls = receivers.urls()
    both = {"name": "ops", "urls": [urls[HOOK], urls[CHAT]], "events": list(EVENTS)}
    harness = await make_harness(simulator(STAGGERED), [both])
    await harness.cycle()
    receivers.hook.go_down()
    await harness.run(70, every=10)  # every job starts and ends, many retries

    assert tally(receivers, CHAT) == ALL_ALERTS
    assert receivers.alerts(HOOK) == []
    receivers.hook.come_up()
    await harness.run(30, every=10)

    assert tally(receivers, HOOK) == ALL_ALERTS
    assert tally(receivers, CHAT) == ALL_ALERTS  # still once each
    assert await _undelivered(harness) == 0

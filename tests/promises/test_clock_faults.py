"""Clock faults against the real runtime: the API's clock skewed, the watcher's clock stepped.

The harness (`tests.harness`) runs the real runtime (httpx, SQLite, apprise) on a simulator
whose clock the test moves by hand. `api_clock_offset` puts DigitalOcean's clock ahead or
behind the watcher's; `rig.offset` steps the watcher's wall clock (NTP, a VM restored), while
its elapsed clock keeps the reference time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.harness import TOKEN, Harness, Key, alerts_of, open_harness, route
from tests.receivers import WebhookReceiver
from watcher.core.model import EventKind

SKEWS = [0.0, 1.0, -1.0, 90.0, -90.0, 600.0, -600.0]


def skew_scenario() -> dict[str, Any]:
    """`docs`: a job created 0.2 s after the first poll (same second) that fails before the
    next one; `wiki`: a job moving along when the watcher starts; `late`: a KB created 21 s
    after the start, whose first job fails between two polls."""
    sources = [{"key": "main", "items": 60}]
    history = [{"ago": 86400, "run": 300, "outcome": "completed"}]
    return {
        "name": "skew",
        "knowledge_bases": [
            {"key": "docs", "name": "docs-kb", "data_sources": sources, "history": history},
            {"key": "wiki", "name": "wiki-kb", "data_sources": sources, "history": history},
            {"key": "late", "name": "late-kb", "data_sources": sources, "created": 21},
        ],
        "timeline": [
            {"at": -60, "start_job": {"kb": "wiki", "id": "moving", "pending": 1, "run": 200}},
            {
                "at": 0.9,
                "start_job": {
                    "kb": "docs",
                    "id": "quick",
                    "pending": 0.5,
                    "run": 3,
                    "outcome": "failed",
                },
            },
            {
                "at": 21.4,
                "start_job": {
                    "kb": "late",
                    "id": "first",
                    "pending": 0.5,
                    "run": 3,
                    "outcome": "failed",
                },
            },
        ],
    }


def delivered(rig: Harness) -> Counter[Key]:
    """The alerts the receiver accepted (answered 200)."""
    accepted = [r for r in rig.receiver.requests if r.answered == 200]
    return Counter(alert.key for alert in alerts_of(accepted))


@pytest.mark.parametrize("skew", SKEWS, ids=lambda s: f"api{s:+g}s")
async def test_on_a_skewed_api_every_transition_is_alerted_and_nothing_stalls_falsely(
    tmp_path: Path, webhook_receiver: WebhookReceiver, skew: float
) -> None:
    async with open_harness(
        skew_scenario(), tmp_path, webhook_receiver, api_clock_offset=skew
    ) as rig:
        rig.sim.advance(0.7)  # the first poll lands at .7 of a second, like any real one
        await rig.cycle()
        await rig.run(240)
        sim = rig.sim
        quick, moving, first = (sim.job_uuid(j) for j in ("quick", "moving", "first"))
        assert delivered(rig) == Counter(
            {
                (quick, EventKind.FAILED): 1,  # created in the first poll's second: news
                (moving, EventKind.STARTED): 1,  # running on the first run: followed
                (moving, EventKind.COMPLETED): 1,  # and never called stalled on first sight
                (first, EventKind.FAILED): 1,  # a KB created after the start: news
            }
        )
        assert all(report.ok for report in rig.reports)
        assert TOKEN not in repr(rig.logs)


async def test_a_wall_clock_two_hours_ahead_while_a_receiver_failed_holds_no_alert_once_fixed(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Retries set on the jumped clock are due as soon as it is fixed; order is kept; no stall.

    Retry base 5 s, maximum 30 s: a retry time two hours ahead can only be a clock jump.
    """
    jobs = [
        {"at": 10, "kb": "docs", "id": "a", "pending": 1, "run": 25, "outcome": "failed"},
        {"at": 11, "kb": "wiki", "id": "b", "pending": 1, "run": 400, "outcome": "completed"},
    ]
    scenario = skew_scenario() | {
        "timeline": [{"at": j.pop("at"), "start_job": j} for j in jobs],
        "knowledge_bases": skew_scenario()["knowledge_bases"][:2],
    }
    async with open_harness(scenario, tmp_path, webhook_receiver) as rig:
        await rig.cycle()
        await rig.run(5)
        webhook_receiver.answer(500)  # the receiver fails...
        rig.offset += timedelta(hours=2)  # ...while the watcher's clock is two hours ahead
        await rig.run(15)  # `a` and `b` start: alerted, refused, retries set 2 h ahead
        assert len(webhook_receiver.requests) >= 2
        webhook_receiver.answer(200)
        rig.offset -= timedelta(hours=2)  # NTP fixes the clock
        await rig.run(5)  # due at once: nothing waits two hours
        sim = rig.sim
        a, b = sim.job_uuid("a"), sim.job_uuid("b")
        assert delivered(rig) == Counter({(a, EventKind.STARTED): 1, (b, EventKind.STARTED): 1})
        await rig.run(60)  # `a` fails after the fix: its alert comes after the held ones
        accepted = [r for r in webhook_receiver.requests if r.answered == 200]
        assert [alert.key for alert in alerts_of(accepted)] == [
            (a, EventKind.STARTED),
            (b, EventKind.STARTED),
            (a, EventKind.FAILED),
        ]
        assert not [x for x in alerts_of(accepted) if x.kind is EventKind.STALLED]


@pytest.mark.parametrize("step", [timedelta(seconds=-60), timedelta(hours=-1), timedelta(hours=1)])
async def test_a_step_of_the_watchers_clock_raises_no_false_stall_and_loses_nothing(
    tmp_path: Path, webhook_receiver: WebhookReceiver, step: timedelta
) -> None:
    """`b` keeps moving through a step of the watcher's wall clock (no_progress_after 60 s)."""
    jobs = [
        {"at": 10, "kb": "docs", "id": "a", "pending": 1, "run": 90, "outcome": "partial"},
        {"at": 11, "kb": "wiki", "id": "b", "pending": 1, "run": 150},
    ]
    scenario = skew_scenario() | {
        "timeline": [{"at": j.pop("at"), "start_job": j} for j in jobs],
        "knowledge_bases": skew_scenario()["knowledge_bases"][:2],
    }
    async with open_harness(scenario, tmp_path, webhook_receiver) as rig:
        await rig.cycle()
        await rig.run(30)
        rig.offset += step
        await rig.run(170)
        sim = rig.sim
        a, b = sim.job_uuid("a"), sim.job_uuid("b")
        assert delivered(rig) == Counter(
            {
                (a, EventKind.STARTED): 1,
                (a, EventKind.PARTIAL): 1,
                (b, EventKind.STARTED): 1,
                (b, EventKind.COMPLETED): 1,
            }
        )


async def test_a_step_forward_while_a_send_is_in_flight_never_sends_that_alert_twice(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """A receiver takes 2 s to answer; meanwhile the watcher's wall clock jumps an hour ahead
    (beyond the 5-minute claim lease) and the next cycle claims what is due. The rows in flight
    stay claimed (claims expire on the boot-time clock), so each alert arrives once."""
    jobs = [
        {"at": 10, "kb": "docs", "id": "a", "pending": 1, "run": 400, "outcome": "failed"},
        {"at": 11, "kb": "wiki", "id": "b", "pending": 1, "run": 400, "outcome": "completed"},
    ]
    scenario = skew_scenario() | {
        "timeline": [{"at": j.pop("at"), "start_job": j} for j in jobs],
        "knowledge_bases": skew_scenario()["knowledge_bases"][:2],
    }
    async with open_harness(
        scenario, tmp_path, webhook_receiver, delivery={"timeout": "30s"}
    ) as rig:
        await rig.cycle()
        assert rig.runtime is not None
        dispatcher = rig.runtime.cycle.dispatcher
        dispatcher.settings = replace(dispatcher.settings, wait=timedelta(0))  # no cycle waits
        webhook_receiver.slow(2.0)
        await rig.run(15)  # `a` and `b` start: their alerts go out, answered in 2 s
        assert dispatcher._running, "the alerts' round is still sending"
        rig.offset += timedelta(hours=1)  # NTP steps the clock while the POST is in flight
        await rig.step(5)  # a cycle claims what is due on the stepped clock
        await dispatcher.drain()  # the POST is answered: its round settles its rows
        webhook_receiver.answer(200)
        await rig.run(10)
        await dispatcher.drain()
        sim = rig.sim
        a, b = sim.job_uuid("a"), sim.job_uuid("b")
        assert delivered(rig) == Counter({(a, EventKind.STARTED): 1, (b, EventKind.STARTED): 1})
        status = await rig.status_json()
        assert "claim expired" not in repr(status)


@pytest.mark.parametrize("step", [timedelta(hours=-1), timedelta(days=2)], ids=["-1h", "+2d"])
async def test_a_wall_step_while_a_receiver_fails_gives_no_alert_up_nor_moves_delivery_failing(
    tmp_path: Path, webhook_receiver: WebhookReceiver, step: timedelta
) -> None:
    """`ops`'s receiver refuses every alert (500) from the first one; 10 s into the outage
    the watcher's wall clock is stepped. `delivery.dead_after` (10 min) and
    `alerts.delivery_failing_after` (2 min) are measured from the first failure on the
    elapsed clock: the alert is never given up early (a step two days ahead used to make it a
    dead letter at the next retry), and the `watch` route hears `delivery_failing` once the
    outage has lasted 2 minutes, neither early (+2 days) nor an hour late (−1 h)."""
    jobs = [{"at": 10, "kb": "docs", "id": "a", "pending": 1, "run": 900, "outcome": "failed"}]
    scenario = skew_scenario() | {
        "timeline": [{"at": j.pop("at"), "start_job": j} for j in jobs],
        "knowledge_bases": skew_scenario()["knowledge_bases"][:1],
    }
    watcher = WebhookReceiver().start()
    routes = [
        route("ops", webhook_receiver.url_json("/ops"), events=["started", "failed"]),
        route("watch", watcher.url_json("/watch"), events=["delivery_failing"]),
    ]
    try:
        async with open_harness(
            scenario,
            tmp_path,
            webhook_receiver,
            routes=routes,
            delivery={"dead_after": "10m"},
            alerts={"delivery_failing_after": "2m"},
        ) as rig:
            assert rig.runtime is not None
            store = rig.runtime.store
            webhook_receiver.answer(500)
            await rig.cycle()
            await rig.run(15)  # `a` starts: its alert is refused (the outage's first failure)
            assert webhook_receiver.requests, "the started alert was tried"
            rig.offset += step  # NTP (or a person) steps the watcher's wall clock
            await rig.run(90)  # 1 min 45 s into the outage, retried all along
            assert await store.dead_letter_count() == 0
            assert alerts_of(watcher.requests) == []  # not news yet, however far the step
            await rig.run(30)  # 2 min 15 s: the route's failure is news for `watch`
            [failing] = alerts_of(watcher.requests)
            assert failing.kind is EventKind.DELIVERY_FAILING and failing.mentions("'ops'")
            webhook_receiver.answer(200)
            await rig.run(30)
            a = rig.sim.job_uuid("a")
            assert delivered(rig) == Counter({(a, EventKind.STARTED): 1})
            assert await store.dead_letter_count() == 0
    finally:
        watcher.stop()

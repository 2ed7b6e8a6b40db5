"""End to end: a route muted by a `[[time_intervals]]` window holds what is due in it (stored,
shown in `status`, kept across a restart) and sends it as one message when the window ends,
minus what resolved meanwhile; a route without the window hears everything at once.

The window is the next quarter of an hour of the watcher's wall clock (UTC); the test moves
that clock (the harness's seam) past its end rather than waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.harness import GROUP, Harness, job_scenario, open_harness, route
from tests.receivers import WebhookReceiver
from watcher.core import status_view
from watcher.core.model import EventKind

JOBS = [
    # stalls 5 s into its run for 90 s (stalled after 60 s), then moves and completes
    {"kb": "docs", "id": "slow", "pending": 1, "run": 30, "stalls": [{"after": 5, "for": 90}]},
    {"kb": "wiki", "id": "broken", "pending": 1, "run": 20, "outcome": "failed", "at": 20},
]


def window(start: datetime, minutes: int) -> dict[str, Any]:
    """A `[[time_intervals]]` entry holding `minutes` from `start` (UTC, whole minutes)."""
    end = start + timedelta(minutes=minutes)
    times = [{"start_time": f"{start:%H:%M}", "end_time": f"{end:%H:%M}"}]
    return {"name": "maintenance", "time_intervals": [{"times": times, "location": "UTC"}]}


def routes(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    quiet = route("quiet", receiver.url_json("/quiet"))
    quiet["mute_during"] = ["maintenance"]
    return [quiet, route("loud", receiver.url_json("/loud"))]


async def test_a_muted_route_holds_alerts_and_sends_one_message_when_the_window_ends(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(
        scenario, tmp_path, webhook_receiver, routes=routes(webhook_receiver), start=False
    ) as h:
        h.overrides["time_intervals"] = [window(h.now().replace(second=0), 15)]
        await h.start()
        await h.run(240, every=10)  # both jobs end within four minutes
        loud = [alert.kind for alert in h.alerts("/loud")]
        assert EventKind.STALLED in loud and EventKind.FAILED in loud
        assert h.alerts("/quiet") == []  # held, not lost:
        status = await h.status_json()
        (quiet,) = [r for r in status["deliveries"]["routes"] if r["route"] == "quiet"]
        assert quiet["held"] == quiet["pending"] >= 5 and quiet["held_by"] == "maintenance"
        assert h.runtime is not None
        text = status_view.table(await h.runtime.store.snapshot(h.now()), h.now())
        until = quiet["held_until"][:16]  # to the minute, as the text shows it
        assert f"held by quiet hours maintenance until {until}" in text

        await h.restart()  # the held rows are in the store, not in memory
        await h.step(60)
        assert h.alerts("/quiet") == []

        await _past_the_window(h)
        (released,) = h.alerts("/quiet")
        assert released.kind == GROUP
        assert released.title.startswith("❌ Quiet hours maintenance over: ")
        # one line per job, its outcome: no `started`, and the stall said on the outcome's line
        assert sorted(released.events()) == [("completed", "docs-kb"), ("failed", "wiki-kb")]
        assert "completed after a stall" in released.body
        assert "held during quiet hours maintenance" in released.body

        await h.step(60)  # sent once: nothing more
        assert len(h.alerts("/quiet")) == 1
        status = await h.status_json()
        assert all(r["held"] == 0 for r in status["deliveries"]["routes"])


async def _past_the_window(h: Harness) -> None:
    """Step the world (and the watcher's wall clock with it) until the window is over."""
    for _ in range(20):
        await h.step(60)
        if h.alerts("/quiet"):
            return


async def test_alerts_held_by_a_window_removed_from_the_config_go_out_at_once(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(
        scenario, tmp_path, webhook_receiver, routes=routes(webhook_receiver), start=False
    ) as h:
        h.overrides["time_intervals"] = [window(h.now().replace(second=0), 60)]
        await h.start()
        await h.run(240, every=10)
        assert h.alerts("/quiet") == []  # held for the hour

        # The window is removed (a restart or a reload builds a new runtime): nothing holds
        # these alerts any more, so they go now, not at the end of a window that is gone.
        del h.overrides["time_intervals"]
        h.routes = [route("quiet", webhook_receiver.url_json("/quiet")), h.routes[1]]
        await h.restart()
        await h.step(10)
        (released,) = h.alerts("/quiet")
        assert released.title.startswith("❌ Quiet hours maintenance over: ")
        assert sorted(released.events()) == [("completed", "docs-kb"), ("failed", "wiki-kb")]
        status = await h.status_json()
        assert all(r["held"] == 0 and r["pending"] == 0 for r in status["deliveries"]["routes"])


async def test_alerts_held_past_a_shortened_window_go_out_at_its_new_end(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(
        scenario, tmp_path, webhook_receiver, routes=routes(webhook_receiver), start=False
    ) as h:
        start = h.now().replace(second=0)
        h.overrides["time_intervals"] = [window(start, 60)]
        await h.start()
        await h.run(240, every=10)
        assert h.alerts("/quiet") == []

        h.overrides["time_intervals"] = [window(start, 10)]  # ends 10 minutes after it began
        await h.restart()
        await h.step(10)
        assert h.alerts("/quiet") == []  # still inside the shortened window
        status = await h.status_json()
        (quiet,) = [r for r in status["deliveries"]["routes"] if r["route"] == "quiet"]
        assert quiet["held_until"].startswith(f"{start + timedelta(minutes=10):%Y-%m-%dT%H:%M}")
        await _past_the_window(h)
        assert h.now() < start + timedelta(minutes=15)  # at the new end, not the old one
        assert len(h.alerts("/quiet")) == 1


async def test_a_window_ending_in_the_hour_daylight_saving_skips_releases_at_the_jump(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Berlin, 2026-03-29: clocks jump from 02:00 CET to 03:00 CEST (01:00 UTC). A window
    01:00-02:30 has no 02:30 that night: it ends at the jump, 10 minutes after 01:50 CET."""
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(
        scenario, tmp_path, webhook_receiver, routes=routes(webhook_receiver), start=False
    ) as h:
        h.offset = datetime(2026, 3, 29, 0, 46, tzinfo=UTC) - h.sim.clock.now()  # 01:46 CET
        times = [{"start_time": "01:00", "end_time": "02:30"}]
        nightly = {"times": times, "location": "Europe/Berlin"}
        h.overrides["time_intervals"] = [{"name": "maintenance", "time_intervals": [nightly]}]
        await h.start()
        await h.run(240, every=10)  # until 01:50 CET: both jobs ended, held
        assert h.alerts("/quiet") == []
        status = await h.status_json()
        (quiet,) = [r for r in status["deliveries"]["routes"] if r["route"] == "quiet"]
        assert quiet["held_until"] == "2026-03-29T01:00:00+00:00"  # 03:00 CEST, the jump
        await _past_the_window(h)
        assert h.now() < datetime(2026, 3, 29, 1, 2, tzinfo=UTC)
        (released,) = h.alerts("/quiet")
        assert released.title.startswith("❌ Quiet hours maintenance over: ")

"""`watcher status`'s schedules and freshness (`watcher.core.watchview`): one table, a fixed
moment, every time DigitalOcean's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.core import watchview
from watcher.core.schedules import KbWatch, Schedule

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
DAILY = Schedule(uuid="s1", is_active=True, next_run_at=NOW + timedelta(hours=3), days=(1, 2))
WATCH = KbWatch(kb_uuid="kb", since=NOW - timedelta(days=2))

CASES = [
    # no schedule read, never a success: said so, not stale
    (WATCH, "no schedule; no success seen", False),
    # an active schedule: its next run, and the last success
    (
        KbWatch("kb", WATCH.since, schedule=DAILY, last_success=NOW - timedelta(hours=5)),
        "next run 2026-11-28T12:00+00:00; last success 2026-11-28T04:00+00:00",
        False,
    ),
    # the run waited for comes before the one the schedule now shows
    (
        KbWatch("kb", WATCH.since, schedule=DAILY, due_run=NOW - timedelta(minutes=10)),
        "next run 2026-11-28T08:50+00:00; no success seen",
        False,
    ),
    # turned off, and stale: both told
    (
        KbWatch(
            "kb",
            WATCH.since,
            schedule=Schedule(is_active=False, time="03:00"),
            last_success=NOW - timedelta(days=2),
            stale_from=NOW - timedelta(days=2),
        ),
        "schedule off; last success 2026-11-26T09:00+00:00; "
        "STALE (no success since 2026-11-26T09:00+00:00)",
        True,
    ),
]


@pytest.mark.parametrize(("watch", "line", "stale"), CASES)
def test_status_tells_each_kbs_schedule_and_freshness(
    watch: KbWatch, line: str, stale: bool
) -> None:
    assert watchview._line(watch) == line
    shown = watchview.as_json({"kb": watch})["kb"]
    assert shown["stale"] is stale
    assert (shown["schedule"] is None) is (watch.schedule is None)
    if watch.schedule is not None and watch.schedule.active:
        assert shown["schedule"]["next_run_at"] == watchview._iso(watch.schedule.next_run_at)

"""The simulator's clocks: a held real clock stands still until released, then runs."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from watcher.simulator import RealClock

START = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


def test_a_held_clock_stands_at_its_start_until_released_and_then_runs_from_there() -> None:
    clock = RealClock(speed=1000, start=START, held=True)
    time.sleep(0.02)
    assert clock.now() == START
    assert clock.wall_of(START) is not None

    clock.release()
    time.sleep(0.02)
    moved = (clock.now() - START).total_seconds()
    assert 10 <= moved < 60  # 20 ms or more at 1000x, counted from the release only
    assert clock.wall_of(START) is not None and clock.wall_of(START) <= time.time()


def test_a_clock_that_was_not_held_runs_from_its_creation() -> None:
    clock = RealClock(speed=1000, start=START)
    time.sleep(0.02)
    clock.release()  # no effect: it never stood still
    assert (clock.now() - START).total_seconds() >= 10

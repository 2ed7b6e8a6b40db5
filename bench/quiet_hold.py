"""Time of `watcher.core.quiet.hold` over one claimed batch (issue 16, quiet hours).

    python bench/quiet_hold.py [--rows 200]

`hold` runs on the event loop for every delivery round; each claimed row's route asks when its
quiet ends (`watcher.core.windows.window_end`). A window that holds for long (whole days, a
year, "every day") follows up to 1,500 occurrences to find its end, about 90 ms on 2 cores.
Prints, per window shape, the milliseconds of one `window_end` and of `hold` over `--rows`
rows of one route: the end is computed once per route and batch, so the second stays near
the first, whatever the batch's size.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watcher.core.model import EventKind
from watcher.core.outbox import OutboxItem
from watcher.core.quiet import hold
from watcher.core.state import Transition
from watcher.core.windows import TimeInterval, TimeRange, TimeWindow, window_end

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # a Saturday
SHAPES = {
    "weekday nights 22:00-07:00": TimeInterval(BERLIN, (TimeRange(1320, 420),)),
    "weekends (whole days)": TimeInterval(BERLIN, weekdays=frozenset({5, 6})),
    "the year 2026": TimeInterval(BERLIN, years=frozenset({2026})),
    "every day (no fields)": TimeInterval(BERLIN),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200)
    rows = parser.parse_args().rows
    event = Transition(event_id="j/failed", kind=EventKind.FAILED, at=NOW)
    items = [OutboxItem(n, "ops", event, "c", NOW) for n in range(rows)]
    print(f"{'window':30} {'window_end ms':>14} {f'hold({rows}) ms':>14}")
    for name, interval in SHAPES.items():
        windows = (TimeWindow("w", (interval,)),)
        started = time.perf_counter()
        window_end(windows, NOW)
        one = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        hold(items, {"ops": windows}, NOW)
        batch = (time.perf_counter() - started) * 1000
        print(f"{name:30} {one:14.2f} {batch:14.2f}")


if __name__ == "__main__":
    main()

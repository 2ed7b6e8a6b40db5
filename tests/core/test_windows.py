"""Quiet hours and maintenance windows, table-driven: (interval, instant) -> held, and
(windows, instant) -> when the quiet ends. Instants are written in UTC; the comment of each
case says the wall clock in the interval's timezone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from watcher.core.windows import TimeInterval, TimeRange, TimeWindow, contains, window_end

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MON_FRI = frozenset(range(5))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def times(start: str, end: str) -> tuple[TimeRange, ...]:
    return (TimeRange(hhmm(start), hhmm(end)),)


# Weekday nights in Berlin, one range crossing midnight: Monday 22:00 to Saturday 06:00.
NIGHTS_BERLIN = TimeInterval(BERLIN, times("22:00", "06:00"), weekdays=MON_FRI)
# Alertmanager's way of saying the same: two ranges that meet at midnight.
NIGHTS_SPLIT = TimeInterval(
    BERLIN, (TimeRange(hhmm("22:00"), 1440), TimeRange(0, hhmm("06:00"))), weekdays=MON_FRI
)
EARLY_BERLIN = TimeInterval(BERLIN, times("01:00", "02:30"))  # around both DST changes
EARLY_NEW_YORK = TimeInterval(NEW_YORK, times("01:00", "02:30"))
# The last three days of each month, and December to February, all day.
MONTH_END = TimeInterval(days_of_month=((-3, -1),))
WINTER = TimeInterval(months=frozenset({12, 1, 2}))
FIRST_WEEK_2027 = TimeInterval(days_of_month=((1, 7),), years=frozenset({2027}))


@pytest.mark.parametrize(
    ("interval", "at", "held"),
    [
        # Tuesday 2026-12-01 23:30 in Berlin (22:30 UTC, CET = UTC+1): a weekday night.
        (NIGHTS_BERLIN, utc(2026, 12, 1, 22, 30), True),
        # Wednesday 05:59 in Berlin: still the Tuesday night.
        (NIGHTS_BERLIN, utc(2026, 12, 2, 4, 59), True),
        # Wednesday 06:00 in Berlin: the end is not inside.
        (NIGHTS_BERLIN, utc(2026, 12, 2, 5, 0), False),
        # Tuesday 21:59 in Berlin: not yet.
        (NIGHTS_BERLIN, utc(2026, 12, 1, 20, 59), False),
        # Saturday 05:00 in Berlin: the morning of Friday's night is held.
        (NIGHTS_BERLIN, utc(2026, 12, 5, 4, 0), True),
        # Saturday 23:00 in Berlin: Saturday nights are not weekday nights.
        (NIGHTS_BERLIN, utc(2026, 12, 5, 22, 0), False),
        # Monday 03:00 in Berlin: the morning of Sunday's night is not held either.
        (NIGHTS_BERLIN, utc(2026, 12, 7, 2, 0), False),
        # Saturday 05:00 in Berlin, Alertmanager's split form: Saturday is not a weekday.
        (NIGHTS_SPLIT, utc(2026, 12, 5, 4, 0), False),
        # Berlin, 2026-03-29: 01:30 CET (00:30 UTC), before the skipped hour.
        (EARLY_BERLIN, utc(2026, 3, 29, 0, 30), True),
        # Berlin, 2026-03-29: 03:00 CEST (01:00 UTC), clocks jumped 02:00 -> 03:00.
        (EARLY_BERLIN, utc(2026, 3, 29, 1, 0), False),
        # Berlin, 2026-10-25: 02:15 CEST (00:15 UTC), the first of the repeated hour.
        (EARLY_BERLIN, utc(2026, 10, 25, 0, 15), True),
        # Berlin, 2026-10-25: 02:15 CET (01:15 UTC), the same wall time again: held again.
        (EARLY_BERLIN, utc(2026, 10, 25, 1, 15), True),
        # Berlin, 2026-10-25: 02:45 CET (01:45 UTC): past 02:30 on the wall.
        (EARLY_BERLIN, utc(2026, 10, 25, 1, 45), False),
        # New York, 2026-03-08: 01:59 EST (06:59 UTC), just before the skipped hour.
        (EARLY_NEW_YORK, utc(2026, 3, 8, 6, 59), True),
        # New York, 2026-03-08: 03:00 EDT (07:00 UTC), the skipped hour is gone.
        (EARLY_NEW_YORK, utc(2026, 3, 8, 7, 0), False),
        # New York, 2026-11-01: 01:30 EDT (05:30 UTC), the first 01:30.
        (EARLY_NEW_YORK, utc(2026, 11, 1, 5, 30), True),
        # New York, 2026-11-01: 01:30 EST (06:30 UTC), the repeated 01:30.
        (EARLY_NEW_YORK, utc(2026, 11, 1, 6, 30), True),
        # New York, 2026-11-01: 02:30 EST (07:30 UTC): the end.
        (EARLY_NEW_YORK, utc(2026, 11, 1, 7, 30), False),
        # The same instant is 02:30 CET in Berlin... and 20:30 in New York the day before.
        (EARLY_NEW_YORK, utc(2026, 1, 15, 1, 30), False),
        # 2026-02-26 (28 days): three days before the end of February.
        (MONTH_END, utc(2026, 2, 26, 12, 0), True),
        # 2026-02-25: four days before the end.
        (MONTH_END, utc(2026, 2, 25, 12, 0), False),
        # 2026-03-29: three days before the end of a 31-day month.
        (MONTH_END, utc(2026, 3, 29, 0, 0), True),
        # 2026-03-28 23:59: not yet.
        (MONTH_END, utc(2026, 3, 28, 23, 59), False),
        # January is in a December-to-February range.
        (WINTER, utc(2027, 1, 10, 8, 0), True),
        # March is not.
        (WINTER, utc(2027, 3, 1, 0, 0), False),
        # The first week of 2027.
        (FIRST_WEEK_2027, utc(2027, 1, 7, 23, 59), True),
        # The first week of 2026 is another year.
        (FIRST_WEEK_2027, utc(2026, 1, 3, 12, 0), False),
    ],
)
def test_an_instant_is_held_when_its_wall_clock_in_the_timezone_matches(
    interval: TimeInterval, at: datetime, held: bool
) -> None:
    assert contains(interval, at) is held


def window(*intervals: TimeInterval, name: str = "w") -> TimeWindow:
    return TimeWindow(name, intervals)


@pytest.mark.parametrize(
    ("windows", "at", "end"),
    [
        # Tuesday 23:30 in Berlin: the night ends Wednesday 06:00 CET (05:00 UTC).
        ((window(NIGHTS_BERLIN),), utc(2026, 12, 1, 22, 30), utc(2026, 12, 2, 5, 0)),
        # Alertmanager's two ranges that meet at midnight are one quiet.
        ((window(NIGHTS_SPLIT),), utc(2026, 12, 1, 22, 30), utc(2026, 12, 2, 5, 0)),
        # Not held: no end.
        ((window(NIGHTS_BERLIN),), utc(2026, 12, 1, 12, 0), None),
        # Summer, Tuesday 23:30 CEST: ends 06:00 CEST, 04:00 UTC.
        ((window(NIGHTS_BERLIN),), utc(2026, 7, 7, 21, 30), utc(2026, 7, 8, 4, 0)),
        # Berlin's night of the spring change (Saturday night isn't a weekday night, so
        # Monday's): the window 01:00-02:30 on 2026-03-29 ends when 02:00 jumps to 03:00.
        ((window(EARLY_BERLIN),), utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0)),
        # Berlin's autumn change: 02:10 CEST ends at the first 02:30 (00:30 UTC)...
        ((window(EARLY_BERLIN),), utc(2026, 10, 25, 0, 10), utc(2026, 10, 25, 0, 30)),
        # ...and 02:10 CET, the repeated hour, at the second 02:30 (01:30 UTC).
        ((window(EARLY_BERLIN),), utc(2026, 10, 25, 1, 10), utc(2026, 10, 25, 1, 30)),
        # New York's spring change: 01:30 EST ends at the jump, 07:00 UTC (03:00 EDT).
        ((window(EARLY_NEW_YORK),), utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 0)),
        # New York's autumn change: the first 01:30 EDT ends at 02:30 EST (07:30 UTC): the
        # wall never reads 02:30 before that.
        ((window(EARLY_NEW_YORK),), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 7, 30)),
        # Two windows that follow each other: the quiet lasts through both.
        (
            (
                window(TimeInterval(times=times("08:00", "09:00"))),
                window(TimeInterval(times=times("09:00", "10:00"))),
            ),
            utc(2026, 12, 1, 8, 30),
            utc(2026, 12, 1, 10, 0),
        ),
        # The last three days of February 2026: held until March 1st, 00:00 UTC.
        ((window(MONTH_END),), utc(2026, 2, 26, 12, 0), utc(2026, 3, 1, 0, 0)),
        # Winter: from January 10th until March 1st.
        ((window(WINTER),), utc(2027, 1, 10, 8, 0), utc(2027, 3, 1, 0, 0)),
    ],
)
def test_the_quiet_ends_at_the_first_instant_no_window_holds(
    windows: tuple[TimeWindow, ...], at: datetime, end: datetime | None
) -> None:
    assert window_end(windows, at) == end

"""Quiet hours and maintenance windows (`[[time_intervals]]`): is an instant inside one, and
when does it end. Pure: the wall clock is a parameter, each interval carries its timezone.

The shape is Alertmanager's `time_intervals`. An interval matches an instant when every field
it sets matches the instant's wall-clock time in the interval's `location` (DST included):

- `times`: `[start, end)` in minutes of the day (`end` may be 1440, "24:00"). A range whose
  start lies after its end crosses midnight (Alertmanager refuses those): its part after
  midnight belongs to the day it started on, so "monday:friday 22:00-06:00" holds Friday
  night until Saturday 06:00. No `times`: the whole day.
- `weekdays` (0 = Monday), `months` (1-12), `years`: sets of values.
- `days_of_month`: inclusive ranges; negative days count from the month's end (-1 the last).

A window is a name and its intervals (any of them matching). `window_end` is the first
instant at or after `at` that no interval of the given windows holds; a wall-clock time that
does not exist (the hour DST skips) ends at the transition, one that exists twice matches
both times.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

DAY_MINUTES = 1440
_MAX_STEPS = 1500  # occurrences followed in one `window_end` (a year of whole days and more)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Minutes of the day `[start, end)`; `start > end` crosses midnight."""

    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.start > self.end


@dataclass(frozen=True, slots=True)
class TimeInterval:
    """One interval of a window; an empty field matches everything."""

    location: tzinfo = UTC
    times: tuple[TimeRange, ...] = ()
    weekdays: frozenset[int] = frozenset()
    days_of_month: tuple[tuple[int, int], ...] = ()
    months: frozenset[int] = frozenset()
    years: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A named `[[time_intervals]]` entry: held when any of its intervals matches."""

    name: str
    intervals: tuple[TimeInterval, ...]


def day_matches(interval: TimeInterval, day: date) -> bool:
    """Whether `day` (a local date) is one of the interval's days."""
    if interval.weekdays and day.weekday() not in interval.weekdays:
        return False
    if interval.months and day.month not in interval.months:
        return False
    if interval.years and day.year not in interval.years:
        return False
    if interval.days_of_month:
        last = calendar.monthrange(day.year, day.month)[1]
        return any(
            _day(start, last) <= day.day <= _day(end, last) for start, end in interval.days_of_month
        )
    return True


def _day(value: int, last: int) -> int:
    return last + 1 + value if value < 0 else value


def contains(interval: TimeInterval, at: datetime) -> bool:
    """Whether the aware instant `at` lies inside `interval` (its wall clock in the location)."""
    return _occurrence(interval, at) is not None


def _occurrence(interval: TimeInterval, at: datetime) -> datetime | None:
    """The end (UTC) of the occurrence of `interval` holding `at`; None when none holds it."""
    zone = interval.location
    local = at.astimezone(zone)
    today = local.date()
    if not interval.times:
        return (
            _to_utc(today + timedelta(days=1), 0, zone, at)
            if day_matches(interval, today)
            else None
        )
    minute = local.hour * 60 + local.minute
    for span in interval.times:
        if not span.crosses_midnight:
            if span.start <= minute < span.end and day_matches(interval, today):
                return _to_utc(today, span.end, zone, at)
        elif minute >= span.start and day_matches(interval, today):
            return _to_utc(today + timedelta(days=1), span.end, zone, at)
        elif minute < span.end and day_matches(interval, today - timedelta(days=1)):
            return _to_utc(today, span.end, zone, at)
    return None


def _to_utc(day: date, minutes: int, zone: tzinfo, after: datetime) -> datetime:
    """The first instant (UTC) after `after` whose wall clock in `zone` reaches `day` at
    `minutes`.

    A time that exists once converts directly; one that exists twice (the hour DST repeats)
    is the first of its occurrences after `after`; one in a gap (the hour DST skips) is the
    transition itself, the first instant whose wall clock is past it.
    """
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)
    readings = [naive.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    real = sorted({r for r in readings if r.astimezone(zone).replace(tzinfo=None) == naive})
    if real:
        return next((r for r in real if r > after), real[-1])
    low, high = sorted(readings)  # the gap: the offset changes between these two
    target = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def first_instant(day: date, minutes: int, zone: tzinfo) -> datetime:
    """The first instant (UTC) whose wall clock in `zone` reaches `day` at `minutes` (a
    skipped time: the DST change; a repeated one: its first occurrence)."""
    return _to_utc(day, minutes, zone, datetime.min.replace(tzinfo=UTC))


def muting(windows: Sequence[TimeWindow], at: datetime) -> TimeWindow | None:
    """The first of `windows` holding the instant `at`, if any."""
    return next(
        (w for w in windows if any(contains(interval, at) for interval in w.intervals)), None
    )


def window_end(windows: Sequence[TimeWindow], at: datetime) -> datetime | None:
    """When the quiet that holds `at` ends: the first instant no interval of `windows` holds
    (back-to-back occurrences, such as 22:00-24:00 then 00:00-06:00, are one quiet).
    None when `at` is not held. UTC."""
    intervals = [interval for window in windows for interval in window.intervals]
    moment = at.astimezone(UTC)
    for _ in range(_MAX_STEPS):
        ends = [end for i in intervals if (end := _occurrence(i, moment)) is not None]
        if not ends:
            return None if moment == at.astimezone(UTC) else moment
        following = max(ends)
        if following <= moment:  # cannot happen with sane zones; never loop on it
            return moment
        moment = following
    return moment

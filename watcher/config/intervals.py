"""`[[time_intervals]]` (quiet hours, maintenance windows) and a route's `digest` schedule.

The shape is Alertmanager's `time_intervals`:

    [[time_intervals]]
    name = "weekday-nights"
    [[time_intervals.time_intervals]]
    times = [{ start_time = "22:00", end_time = "06:00" }]
    weekdays = ["monday:friday"]
    location = "Europe/Berlin"

Ranges are inclusive (`"monday:friday"`, `"1:7"`, `"-3:-1"`, `"january:march"`,
`"2026:2027"`); `location` is an IANA timezone (the `tzdata` package supplies them where the
host has none). What they mean is `watcher.core.windows`.
"""

from __future__ import annotations

import calendar
import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, field_validator, model_validator

from watcher.config.sections import Section
from watcher.core.digest import DigestSchedule, Period
from watcher.core.windows import DAY_MINUTES, TimeInterval, TimeRange, TimeWindow

WEEKDAYS = tuple(day.lower() for day in calendar.day_name)  # monday first
MONTHS = tuple(month.lower() for month in calendar.month_name[1:])
Ranges = tuple[tuple[int, int], ...]
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def zone(name: str) -> ZoneInfo:
    """The IANA timezone `name`; a ValueError saying what is wrong otherwise."""
    if name.strip().lower() == "local":
        raise ValueError('"Local" is not supported: name the IANA timezone, e.g. "Europe/Berlin"')
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'{name!r} is not an IANA timezone (e.g. "Europe/Berlin", "America/New_York", "UTC")'
        ) from None


def clock_minutes(text: str, *, end: bool = False) -> int:
    """`"HH:MM"` as minutes of the day; "24:00" only as an end."""
    match = _CLOCK.match(text.strip())
    minutes = int(match[1]) * 60 + int(match[2]) if match else -1
    if minutes < 0 or minutes > DAY_MINUTES or (minutes == DAY_MINUTES and not end):
        latest = "24:00" if end else "23:59"
        raise ValueError(f"{text!r} is not a time of day as HH:MM (00:00 to {latest})")
    return minutes


def _range(text: object, names: tuple[str, ...], low: int, high: int, what: str) -> list[int]:
    """An inclusive range `"a:b"` (or one value) of names or numbers as [a, b]."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        raise ValueError(f"each {what} must be a string such as {_example(what)}")
    parts = text.strip().lower().split(":")
    if len(parts) > 2 or not all(parts):
        raise ValueError(f"{text!r} is not a {what} or range of them, e.g. {_example(what)}")
    values = [_one(part, names, low, high, what) for part in parts]
    wraps = what in ("weekday", "month")  # "saturday:monday", "november:february"
    if values[0] > values[-1] and not wraps and not values[0] > 0 > values[-1]:
        raise ValueError(f"{text!r}: the range starts after it ends")
    return [values[0], values[-1]]


def _one(part: str, names: tuple[str, ...], low: int, high: int, what: str) -> int:
    if part in names:
        return names.index(part) + (0 if what == "weekday" else 1)
    try:
        value = int(part)
    except ValueError:
        raise ValueError(f"{part!r} is not a {what}, e.g. {_example(what)}") from None
    if not low <= value <= high or (value == 0 and what == "day of month"):
        raise ValueError(f"{part!r} is not a {what} ({low} to {high})")
    return value


def _example(what: str) -> str:
    return {
        "weekday": '"monday:friday"',
        "month": '"january:march"',
        "day of month": '"1:7" or "-3:-1"',
        "year": '"2026:2027"',
    }[what]


def _spread(ranges: Ranges, low: int, high: int) -> frozenset[int]:
    """Every value of the inclusive ranges; a range that starts after it ends wraps around."""
    values: set[int] = set()
    for start, end in ranges:
        if start <= end:
            values.update(range(start, end + 1))
        else:
            values.update(range(start, high + 1), range(low, end + 1))
    return frozenset(values)


class TimeRangeConfig(Section):
    """`{ start_time = "HH:MM", end_time = "HH:MM" }`; an end before the start crosses midnight."""

    start_time: str
    end_time: str

    @field_validator("start_time")
    @classmethod
    def _start(cls, value: str) -> str:
        clock_minutes(value)
        return value.strip()

    @field_validator("end_time")
    @classmethod
    def _end(cls, value: str, info: object) -> str:
        end = clock_minutes(value, end=True)
        start = getattr(info, "data", {}).get("start_time")
        if start is not None and clock_minutes(start) == end:
            raise ValueError("must differ from start_time (leave out times for the whole day)")
        return value.strip()

    def as_range(self) -> TimeRange:
        return TimeRange(clock_minutes(self.start_time), clock_minutes(self.end_time, end=True))


def _ranges_of(names: tuple[str, ...], low: int, high: int, what: str) -> BeforeValidator:
    def check(value: object) -> object:
        if not isinstance(value, list | tuple):
            return value
        return tuple(tuple(_range(item, names, low, high, what)) for item in value)

    return BeforeValidator(check)


class IntervalConfig(Section):
    """One interval: every field it sets must match (Alertmanager's `time_interval`)."""

    times: tuple[TimeRangeConfig, ...] = ()
    weekdays: Annotated[Ranges, _ranges_of(WEEKDAYS, 0, 6, "weekday")] = ()
    days_of_month: Annotated[Ranges, _ranges_of((), -31, 31, "day of month")] = ()
    months: Annotated[Ranges, _ranges_of(MONTHS, 1, 12, "month")] = ()
    years: Annotated[Ranges, _ranges_of((), 1970, 9999, "year")] = ()
    location: str = "UTC"

    @field_validator("location")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value.strip()

    @model_validator(mode="after")
    def _limits_something(self) -> IntervalConfig:
        # Alertmanager reads an empty interval as "always"; here a route muted during it would
        # hold every alert for good, which is a mistake far more often than a wish.
        if not (self.times or self.weekdays or self.days_of_month or self.months or self.years):
            raise ValueError(
                "sets none of times, weekdays, days_of_month, months, years: it would match "
                "all the time and a route muted during it would never alert; set at least one "
                "(to stop a route, remove it)"
            )
        return self

    def as_interval(self) -> TimeInterval:
        return TimeInterval(
            location=zone(self.location),
            times=tuple(t.as_range() for t in self.times),
            weekdays=_spread(self.weekdays, 0, 6),
            days_of_month=tuple((start, end) for start, end in self.days_of_month),
            months=_spread(self.months, 1, 12),
            years=_spread(self.years, 1970, 9999),
        )


class TimeIntervalsConfig(Section):
    """`[[time_intervals]]`: a named window that routes name in `mute_during`."""

    name: str = Field(min_length=1, max_length=64)
    time_intervals: tuple[IntervalConfig, ...]

    @field_validator("time_intervals", mode="before")
    @classmethod
    def _some(cls, value: object) -> object:
        if isinstance(value, list | tuple) and not value:
            raise ValueError("must list at least one interval ([[time_intervals.time_intervals]])")
        return value

    def as_window(self) -> TimeWindow:
        return TimeWindow(self.name, tuple(i.as_interval() for i in self.time_intervals))


_DIGEST = re.compile(
    r"^(?P<period>daily|weekly)(?:\s+(?P<day>[a-z]+))?\s+(?P<at>\d{1,2}:\d{2})(?:\s+(?P<zone>\S+))?$"
)
DIGEST_HINT = 'e.g. "daily 09:00 Europe/Berlin" or "weekly monday 09:00 Europe/Berlin"'


def digest_schedule(text: str) -> DigestSchedule:
    """A route's `digest = "daily HH:MM ZONE"` / `"weekly DAY HH:MM ZONE"` (zone: UTC if left
    out); a ValueError naming what is wrong otherwise."""
    match = _DIGEST.match(" ".join(text.split()).lower() if text else "")
    if match is None:
        raise ValueError(f"{text!r} is not a digest schedule; {DIGEST_HINT}")
    period = Period(match["period"])
    day = match["day"]
    if (period is Period.WEEKLY) != (day is not None):
        raise ValueError(
            f"{text!r}: a weekly digest names its weekday, a daily one does not; {DIGEST_HINT}"
        )
    if day is not None and day not in WEEKDAYS:
        raise ValueError(f"{day!r} is not a weekday (monday to sunday)")
    raw_zone = text.split()[-1] if match["zone"] else "UTC"
    return DigestSchedule(
        period=period,
        minute=clock_minutes(match["at"].zfill(5)),
        location=zone(raw_zone),
        weekday=WEEKDAYS.index(day) if day else 0,
    )

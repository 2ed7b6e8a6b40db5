"""Durations: read as people write them in the configuration, written back two ways.

`parse_duration` reads `90s`, `1h30m` or whole seconds; `format_setting` writes a setting the
way the configuration accepts it (`1m30s`); `format_elapsed` writes how long something took
for people (`1m 30s`, in alerts and `watcher status`).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from watcher.core.durations import LONGEST, format_elapsed, format_setting, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("4h", timedelta(hours=4)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1h 30m", timedelta(minutes=90)),  # spaces between parts
        ("15M", timedelta(minutes=15)),  # units are case-insensitive
        (" 2h ", timedelta(hours=2)),  # surrounding blanks are ignored
        ("0.5s", timedelta(milliseconds=500)),  # only seconds may carry a fraction
        ("90", timedelta(seconds=90)),  # whole seconds as text (environment variables)
        (90, timedelta(seconds=90)),  # whole seconds as a TOML integer
        (timedelta(minutes=3), timedelta(minutes=3)),  # a value built in code passes through
        ("0s", timedelta(0)),
        ("-5m", timedelta(minutes=-5)),  # parsed; the field decides whether it may be negative
        ("3650d", LONGEST),  # the longest duration there is
    ],
)
def test_durations_parse(text: str | int | timedelta, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "m", "1.5h", "5 minutes", "1m1h", "1h30", "abc", "1w", "-", True, 1.5, None]
)
def test_garbage_is_not_a_duration(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["3651d", "87601h", 10**9, "-3651d"])
def test_a_duration_beyond_ten_years_is_an_error_not_an_overflow(text: str | int) -> None:
    """now + duration must never overflow the clock arithmetic: the parser refuses first."""
    with pytest.raises(ValueError, match="far too long"):
        parse_duration(text)


def test_a_short_plain_word_is_quoted_in_the_error_and_anything_else_is_not() -> None:
    """A misplaced secret pasted into a duration key never reaches the error message."""
    with pytest.raises(ValueError, match=r"^'abc' is not a duration"):
        parse_duration("abc")
    secret = "dop_v1_" + "5ec7e7" * 8
    with pytest.raises(ValueError) as caught:
        parse_duration(secret)
    assert str(caught.value).startswith("this value is not a duration")
    assert "5ec7e7" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=90), "1m30s"),
        (timedelta(days=90), "90d"),
        (timedelta(0), "0s"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_settings_format_the_way_they_are_written(value: timedelta, text: str) -> None:
    assert format_setting(value) == text
    assert parse_duration(text) == value


def test_a_setting_is_written_in_whole_seconds() -> None:
    assert format_setting(timedelta(seconds=1.5)) == "1s"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (65, "1m 05s"),  # minutes and seconds: seconds in two digits
        (3725, "1h 02m 05s"),
        (0, "0s"),
        (59.9, "59s"),  # whole seconds, the fraction dropped
        (90_000, "25h 00m 00s"),  # hours are not folded into days
    ],
)
def test_elapsed_times_read_like_a_person_wrote_them(seconds: float, text: str) -> None:
    assert format_elapsed(timedelta(seconds=seconds)) == text

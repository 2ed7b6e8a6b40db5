"""Durations as people write them in configuration: `90s`, `15m`, `4h`, `1d`, `1h30m`, or seconds.

Seconds may carry a fraction (`0.5s`).

Pure functions; `parse_duration` raises `ValueError` with a message fit to show a user.
Two ways back to text: `format_setting` (`1h30m`, as the configuration is written) and
`format_elapsed` (`1h 30m 00s`, for people reading an alert or `watcher status`).
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
_PATTERN = re.compile(
    r"(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?"
)
# Only short plain words are repeated in errors: anything else might be a misplaced secret.
_PLAIN = re.compile(r"[\w .:+-]{0,24}")
EXAMPLES = "e.g. 90s, 0.5s, 15m, 4h, 1d, 1h30m, or whole seconds"


def parse_duration(value: object) -> timedelta:
    """Turn `"1h30m"`, `"90"` or `90` into a timedelta; raise ValueError on anything else."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be a duration string ({EXAMPLES})")
    if isinstance(value, int):
        return _seconds(value)
    text = value.strip().lower()
    negative = text.startswith("-")
    if negative:
        text = text[1:].strip()
    seconds = _parse_positive(text)
    if seconds is None:
        shown = repr(value) if _PLAIN.fullmatch(value) else "this value"
        raise ValueError(f"{shown} is not a duration ({EXAMPLES})")
    return _seconds(-seconds if negative else seconds)


# No setting needs more; a longer one would overflow the clock arithmetic (now + duration).
LONGEST = timedelta(days=3650)


def _seconds(seconds: float) -> timedelta:
    """A timedelta of `seconds`; beyond ten years (either sign) it is a ValueError, not a crash."""
    if not abs(seconds) <= LONGEST.total_seconds():
        raise ValueError("is far too long to be a duration (at most 3650d)")
    return timedelta(seconds=seconds)


def _parse_positive(text: str) -> float | None:
    """Seconds in an unsigned duration text, or None when it is not one."""
    if text.isdigit():
        return int(text)
    match = _PATTERN.fullmatch(text)
    if not text or match is None or not any(match.groups()):
        return None
    # Only the seconds may carry a fraction ("0.5s"), for fast demos and tests.
    return sum(float(g) * unit for g, (_, unit) in zip(match.groups(), _UNITS, strict=True) if g)


def format_setting(value: timedelta) -> str:
    """Write a timedelta the way the configuration accepts it (`1h30m`, `90d`, `0s`), whole
    seconds (a fraction is dropped); `check-config` and its errors show settings this way."""
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    sign, total = ("-", -total) if total < 0 else ("", total)
    parts = []
    for suffix, unit in _UNITS:
        count, total = divmod(total, unit)
        if count:
            parts.append(f"{count}{suffix}")
    return sign + "".join(parts)


def format_elapsed(value: timedelta) -> str:
    """How long something took or has waited, for people: `1h 02m 05s`, `4m 07s`, `9s`.

    Whole seconds (a fraction is dropped), leading zero units left out, hours not folded into
    days; alerts and `watcher status` show times this way.
    """
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"

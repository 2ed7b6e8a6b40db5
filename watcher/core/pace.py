"""Adaptive polling: how long to wait before the next cycle. Pure.

Fast while a job is pending or running, slow when all is idle, and never faster than the
request budget allows: a cycle that cost N requests may run at most
`max_requests_per_minute // N` times a minute, and when the API says fewer than `reserve`
requests remain for the token (shared with the team's other tools) the watcher backs off
until the oldest counted request expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from watcher.core.model import RateLimit

PACE_KEY = "poll_pace"
"""The meta key under which the daemon stores the current pace, for `watcher status`."""


class PaceReason(StrEnum):
    """Why the interval is what it is (shown in `status` and the metrics)."""

    IDLE = "idle"
    ACTIVE = "active"
    BUDGET = "budget"
    RESERVE = "reserve"


@dataclass(frozen=True, slots=True)
class PaceSettings:
    """The polling knobs from the config (`[poll]`, `[api]`)."""

    interval: timedelta = timedelta(seconds=60)
    active_interval: timedelta = timedelta(seconds=15)
    max_requests_per_minute: int = 60
    reserve: int = 500
    longest: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Pace:
    """The next interval and the reason for it."""

    interval: timedelta
    reason: PaceReason


def next_pace(
    settings: PaceSettings,
    *,
    active: bool,
    requests_last_cycle: int,
    rate: RateLimit | None,
    now: datetime,
) -> Pace:
    """The interval before the next cycle, given activity, cost and the API's rate headers."""
    wanted = settings.active_interval if active else settings.interval
    pace = Pace(wanted, PaceReason.ACTIVE if active else PaceReason.IDLE)
    floor = budget_floor(settings.max_requests_per_minute, requests_last_cycle)
    if floor > pace.interval:
        pace = Pace(floor, PaceReason.BUDGET)
    if rate is not None and rate.remaining is not None and rate.remaining < settings.reserve:
        until_reset = _until(rate.reset, now)
        stretched = max(pace.interval * 4, until_reset)
        pace = Pace(min(stretched, settings.longest), PaceReason.RESERVE)
    return Pace(min(pace.interval, max(settings.longest, wanted)), pace.reason)


def budget_floor(per_minute: int, requests_per_cycle: int) -> timedelta:
    """The shortest interval at which no sliding minute holds more than `per_minute` requests.

    A cycle sends its requests in a burst, so k cycles fit in a minute only if k whole bursts
    fit: k = per_minute // requests, and the interval is 60 s / k.
    """
    per_minute, cost = max(per_minute, 1), max(requests_per_cycle, 1)
    cycles = per_minute // cost
    if cycles == 0:
        return timedelta(seconds=60 * cost / per_minute)
    return timedelta(seconds=60 / cycles)


def _until(reset: int | None, now: datetime) -> timedelta:
    if reset is None:
        return timedelta(0)
    return max(datetime.fromtimestamp(reset, tz=now.tzinfo) - now, timedelta(0))

"""Adaptive polling: the interval follows activity and never outruns the request budget."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.model import RateLimit
from watcher.core.pace import PaceReason, PaceSettings, next_pace

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SETTINGS = PaceSettings(
    interval=timedelta(seconds=60),
    active_interval=timedelta(seconds=10),
    max_requests_per_minute=60,
    reserve=500,
    longest=timedelta(minutes=15),
)
PLENTY = RateLimit(limit=5000, remaining=4800, reset=int(NOW.timestamp()) + 30)


@pytest.mark.parametrize(
    ("active", "requests", "rate", "seconds", "reason"),
    [
        # all idle: the slow interval
        (False, 1, PLENTY, 60, PaceReason.IDLE),
        # a job pending or running: the fast interval
        (True, 1, PLENTY, 10, PaceReason.ACTIVE),
        # a cycle costing 20 requests at 60/min may run at most every 20 s
        (True, 20, PLENTY, 20, PaceReason.BUDGET),
        # 13 requests: only 4 whole bursts fit in a minute, so every 15 s
        (True, 13, PLENTY, 15, PaceReason.BUDGET),
        (False, 120, PLENTY, 120, PaceReason.BUDGET),
        # few requests left for the team: back off until the oldest request expires, at least 4x
        (
            True,
            1,
            RateLimit(remaining=100, reset=int(NOW.timestamp()) + 300),
            300,
            PaceReason.RESERVE,
        ),
        (True, 1, RateLimit(remaining=100, reset=int(NOW.timestamp()) + 5), 40, PaceReason.RESERVE),
        # never longer than the longest interval
        (
            False,
            1,
            RateLimit(remaining=0, reset=int(NOW.timestamp()) + 3600),
            900,
            PaceReason.RESERVE,
        ),
        # no rate headers seen yet: activity decides
        (True, 1, None, 10, PaceReason.ACTIVE),
    ],
)
def test_interval_follows_activity_budget_and_reserve(
    active: bool, requests: int, rate: RateLimit | None, seconds: float, reason: PaceReason
) -> None:
    pace = next_pace(SETTINGS, active=active, requests_last_cycle=requests, rate=rate, now=NOW)
    assert (pace.interval.total_seconds(), pace.reason) == (seconds, reason)


@pytest.mark.parametrize("requests", [1, 2, 5, 13, 40, 200])
def test_requests_per_minute_never_exceed_the_budget_over_a_simulated_hour(requests: int) -> None:
    """Replaying an hour of cycles on a simulated clock: no sliding minute holds too many."""
    clock = NOW
    sent: list[datetime] = []
    while clock < NOW + timedelta(hours=1):
        sent.extend([clock] * requests)
        pace = next_pace(
            SETTINGS, active=True, requests_last_cycle=requests, rate=PLENTY, now=clock
        )
        clock += pace.interval
    for i, start in enumerate(sent):
        in_window = bisect.bisect_left(sent, start + timedelta(minutes=1)) - i
        assert in_window <= max(SETTINGS.max_requests_per_minute, requests)

"""The client-side request budget and the retry delays.

`RequestBudget` keeps the client under its own limit (at most N requests in any sliding
60 seconds) and, when the API's `ratelimit-remaining` runs low, spreads what is left until
`ratelimit-reset`. The API's limits are per token and shared with every other tool using
that token, so the watcher should leave most of them to others. Clocks and sleep are
injected so that tests run instantly.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable

from watcher.core.model import RateLimit

WINDOW_S = 60.0


class RequestBudget:
    """Waits before each request so that the sliding-window and low-remaining rules hold."""

    def __init__(
        self,
        per_minute: int,
        *,
        low_remaining: int,
        max_pace_s: float,
        monotonic: Callable[[], float],
        wall_clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._per_minute = per_minute
        self._low_remaining = low_remaining
        self._max_pace_s = max_pace_s
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._spacing = 0.0
        self._lock = asyncio.Lock()

    @property
    def spacing_s(self) -> float:
        """The gap currently kept between requests because the API's quota runs low."""
        return self._spacing

    def left_in_window(self) -> int:
        """How many requests may still go out in the current sliding minute."""
        self._expire(self._monotonic())
        return self._per_minute - len(self._sent)

    async def acquire(self) -> float:
        """Wait until one more request is allowed, count it, and return the seconds waited."""
        async with self._lock:
            waited = 0.0
            while (delay := self._delay(self._monotonic())) > 0:
                await self._sleep(delay)
                waited += delay
            self._sent.append(self._monotonic())
            return waited

    def observe(self, rate: RateLimit) -> None:
        """Adapt the pace to the API's last rate-limit headers."""
        remaining, reset = rate.remaining, rate.reset
        if remaining is None or reset is None or remaining >= self._low_remaining:
            self._spacing = 0.0
            return
        until_reset = max(0.0, reset - self._wall_clock())
        self._spacing = min(self._max_pace_s, until_reset / max(remaining, 1))

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - WINDOW_S:
            self._sent.popleft()

    def _delay(self, now: float) -> float:
        self._expire(now)
        window = self._sent[0] + WINDOW_S - now if len(self._sent) >= self._per_minute else 0.0
        pace = self._sent[-1] + self._spacing - now if self._sent and self._spacing else 0.0
        return max(window, pace, 0.0)


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    return rng.uniform(0.0, min(cap, base * 2 ** max(attempt - 1, 0)))


def server_wait(rate: RateLimit, *, now: float, cap: float, use_reset: bool) -> float | None:
    """The wait the server asked for (`retry-after`, else until a future `ratelimit-reset`), capped.

    `ratelimit-reset` only means "wait" on a 429; on other answers it is just bookkeeping.
    """
    if rate.retry_after is not None:
        return min(cap, rate.retry_after)
    if use_reset and rate.reset is not None and rate.reset > now:
        return min(cap, rate.reset - now)
    return None

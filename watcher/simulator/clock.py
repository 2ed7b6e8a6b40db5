"""Simulated time: a manual clock for tests and a real-time clock with a speed factor.

Every lifecycle in the simulator is a pure function of the simulated `now`; the clock is the
only thing that moves it. Each clock can also say at which wall-clock instant a simulated
moment became (or becomes) visible, which latency benchmarks compare with alert times.
"""

from __future__ import annotations

import bisect
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

DEFAULT_START = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
ZERO_TIME = "0001-01-01T00:00:00Z"


class Clock(Protocol):
    """A source of simulated time."""

    def now(self) -> datetime:
        """The current simulated instant (timezone-aware UTC)."""
        ...

    def wall_of(self, moment: datetime) -> float | None:
        """The Unix wall time at which `moment` was reached, or None if it is still ahead."""
        ...


class ManualClock:
    """A clock that only moves when `advance` is called; remembers when each move happened."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._moments: list[datetime] = [self._now]
        self._walls: list[float] = [time.time()]

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by `seconds` (never backwards)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += timedelta(seconds=seconds)
        self._moments.append(self._now)
        self._walls.append(time.time())

    def wall_of(self, moment: datetime) -> float | None:
        index = bisect.bisect_left(self._moments, moment)
        return self._walls[index] if index < len(self._walls) else None


class RealClock:
    """Simulated time that follows the wall clock, `speed` simulated seconds per real second.

    `held=True` keeps simulated time at `start` until `release()` is called: a test starts a
    watcher process (seconds on a loaded machine), releases the clock once the watcher has
    seen the account, and the scenario's timeline then plays in front of it, never before it.
    """

    def __init__(
        self, speed: float = 1.0, start: datetime | None = None, *, held: bool = False
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = (start or datetime.now(UTC).replace(microsecond=0)).astimezone(UTC)
        self._held = held
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def release(self) -> None:
        """Start a held clock moving from `start`, now; no effect on a running clock."""
        if self._held:
            self._held = False
            self._mono0 = time.monotonic()
            self._wall0 = time.time()

    def now(self) -> datetime:
        if self._held:
            return self._start
        elapsed = (time.monotonic() - self._mono0) * self.speed
        return self._start + timedelta(seconds=elapsed)

    def wall_of(self, moment: datetime) -> float | None:
        if moment > self.now():
            return None
        offset = max(0.0, (moment - self._start).total_seconds())
        return self._wall0 + offset / self.speed


def rfc3339(moment: datetime | None) -> str:
    """Render an instant the way DigitalOcean does (`...Z`, whole seconds); None is Go's zero."""
    if moment is None:
        return ZERO_TIME
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""DigitalOcean's rate limits as a sliding window over the requests the simulator admitted.

Two windows over the same record: `per_hour` requests in any hour (reported in the
`ratelimit-*` headers) and `per_minute` requests in any minute (the burst limit; going over
it earns a 429 with `retry-after`). Going over the hourly limit earns a 429 without it.
Rejected requests are not counted, so a client that waits as told gets through. Time is the
simulator's clock, so tests can cross a window with `advance` instead of sleeping.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime

HOUR = 3600.0
MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one request may pass, with the values of its rate-limit headers."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int | None = None

    def headers(self) -> dict[str, str]:
        found = {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset),
        }
        if self.retry_after is not None:
            found["retry-after"] = str(self.retry_after)
        return found


class RateLimiter:
    """Counts admitted requests in a sliding hour and a sliding minute."""

    def __init__(self, per_hour: int = 5000, per_minute: int = 250) -> None:
        if per_hour <= 0 or per_minute <= 0:
            raise ValueError("rate limits must be positive")
        self.per_hour = per_hour
        self.per_minute = per_minute
        self._admitted: deque[float] = deque()

    def admit(self, now: datetime) -> Verdict:
        """Decide on one request arriving at `now` and record it if it passes."""
        stamp = now.timestamp()
        while self._admitted and self._admitted[0] <= stamp - HOUR:
            self._admitted.popleft()
        in_minute = len(self._admitted) - bisect.bisect_right(self._admitted, stamp - MINUTE)
        if in_minute >= self.per_minute:
            oldest = self._admitted[len(self._admitted) - in_minute]
            wait = max(1, math.ceil(oldest + MINUTE - stamp))
            return self._verdict(stamp, allowed=False, retry_after=wait)
        if len(self._admitted) >= self.per_hour:
            return self._verdict(stamp, allowed=False)
        self._admitted.append(stamp)
        return self._verdict(stamp, allowed=True)

    def _verdict(self, stamp: float, *, allowed: bool, retry_after: int | None = None) -> Verdict:
        oldest = self._admitted[0] if self._admitted else stamp
        return Verdict(
            allowed=allowed,
            limit=self.per_hour,
            remaining=max(0, self.per_hour - len(self._admitted)),
            reset=math.ceil(oldest + HOUR),
            retry_after=retry_after,
        )

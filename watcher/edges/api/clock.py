"""DigitalOcean's clock, estimated from the `Date` headers of its answers.

An answer's `Date` (RFC 9110 IMF-fixdate, whole seconds, rounded down) was written by the
server at some instant between sending the request (local monotonic reading `sent`) and
receiving the answer (`received`). So the offset θ between the API's clock and the local
monotonic clock lies in `[Date − received, Date + 1 − sent)`. Each answer bounds θ; the
estimate is the middle of the intersection of the bounds of the recent answers, which
narrows well below a second after a few answers. When the bounds stop overlapping (the
API's clock was stepped, or drifted past the window) the older answers are dropped.

The API's clock then reads `monotonic() + θ`: it never steps with the local wall clock.
Until an answer carries a usable header (none yet, missing, unparseable, or absurd: before
2020 or after 2100), the local wall clock stands in; each kind of unusable header is logged
once. A header is never judged by the local clock: when the two disagree by days, it is the
local clock that is wrong (a machine without a battery-backed clock boots in 1970).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import structlog

log = structlog.get_logger(__name__)

EARLIEST = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
"""A `Date` outside [EARLIEST, LATEST) is not believed: no API answering today sends one."""


class ApiClock:
    """The API's clock as its answers tell it, falling back to the local wall clock."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        window: int = 32,
    ) -> None:
        self._monotonic, self._wall_clock = monotonic, wall_clock
        self._bounds: deque[tuple[float, float]] = deque(maxlen=max(1, window))
        self._offset: float | None = None
        self._logged: set[str] = set()

    def observe(self, date: str | None, *, sent: float, received: float) -> None:
        """Take one answer's `Date` header (None when it had none) into the estimate."""
        moment = self._parse(date)
        if moment is None:
            return
        self._bounds.append((moment - received, moment + 1.0 - sent))
        while True:
            low = max(lo for lo, _ in self._bounds)
            high = min(hi for _, hi in self._bounds)
            if low <= high or len(self._bounds) == 1:
                break
            self._bounds.popleft()  # the API's clock moved: the older answers no longer hold
        self._offset = (low + high) / 2

    def timestamp(self) -> float:
        """The API's clock now, as Unix seconds (the local wall clock until it is known)."""
        if self._offset is None:
            return self._wall_clock()
        return self._monotonic() + self._offset

    def now(self) -> datetime:
        """The API's clock now, UTC."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    @property
    def known(self) -> bool:
        """Whether an answer has told the API's clock (else the local clock stands in)."""
        return self._offset is not None

    def skew(self) -> float | None:
        """The API's clock minus the local wall clock, seconds (None until known): for logs."""
        if self._offset is None:
            return None
        return self.timestamp() - self._wall_clock()

    def _parse(self, date: str | None) -> float | None:
        if date is None:
            self._once("missing", "api_date_header_missing", None)
            return None
        try:
            moment = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            self._once("unparseable", "api_date_header_unusable", date)
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
        if not EARLIEST <= seconds < LATEST:
            self._once("absurd", "api_date_header_unusable", date)
            return None
        return seconds

    def _once(self, kind: str, event: str, value: str | None) -> None:
        if kind in self._logged:
            return
        self._logged.add(kind)
        fallback = "the last good estimate" if self.known else "the local clock"
        log.warning(event, value=value, reason=kind, using=fallback)

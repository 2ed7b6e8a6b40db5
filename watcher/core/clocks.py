"""The watcher's three clocks, as values. Pure: the core is handed readings, it never reads one.

- The **wall clock** (`datetime`, UTC) is for people: log lines, event times, `status`,
  retention. NTP and people may step it, forwards or backwards.
- The **API's clock** (`datetime`, UTC) is DigitalOcean's, as the `Date` header of its answers
  tells it. The API's timestamps (whole seconds) are compared with this clock only.
- The **elapsed clock** (`Elapsed`) is the host's clock since boot, which never steps: what
  the watcher measures itself (how long a job has not moved, how long the API has failed, how
  old the last finished cycle is). Two readings compare only within one boot, so every
  reading carries the boot it was taken in.

`Instant` is one moment read on all three.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Elapsed:
    """A reading of the host's never-stepping clock: `seconds` since boot `boot`.

    `boot` is the kernel's boot id (`/proc/sys/kernel/random/boot_id` on Linux); readings of
    different boots cannot be compared. Negative `seconds` mean before that boot (a job that
    last moved before the machine started).
    """

    seconds: float
    boot: str = ""

    def since(self, earlier: Elapsed) -> timedelta | None:
        """The time from `earlier` to this reading; None when they cannot be compared.

        That is when they come from different boots; and, where the boot id is unknown (""),
        when `earlier` lies ahead, which only a reboot explains. Within one known boot a
        reading ahead of this one was taken a moment later by another process (the daemon
        writing a heartbeat while a probe reads it): no time has passed.
        """
        if earlier.boot != self.boot:
            return None
        if earlier.seconds > self.seconds:
            return None if not self.boot else timedelta(0)
        return timedelta(seconds=self.seconds - earlier.seconds)

    def minus(self, delta: timedelta) -> Elapsed:
        """The reading `delta` earlier, on the same boot."""
        return Elapsed(self.seconds - delta.total_seconds(), self.boot)

    def encode(self) -> list[object]:
        """`[seconds, boot]`, for JSON."""
        return [self.seconds, self.boot]

    @classmethod
    def decode(cls, value: object) -> Elapsed | None:
        """Read `[seconds, boot]` back; None for anything else (an old or damaged value). The
        boot id is interned: every reading of one boot holds the same string."""
        if not isinstance(value, list) or len(value) != 2:
            return None
        seconds, boot = value
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            return None
        return cls(float(seconds), sys.intern(str(boot))) if isinstance(boot, str) else None


@dataclass(frozen=True, slots=True)
class Instant:
    """One moment on the three clocks: `wall` (people), `api` (DigitalOcean's), `elapsed`."""

    wall: datetime
    api: datetime
    elapsed: Elapsed

    @classmethod
    def aligned(cls, moment: datetime, elapsed: Elapsed | None = None) -> Instant:
        """All three clocks agreeing on `moment` (tests and the demo; real clocks never do).

        The elapsed reading defaults to the seconds since the Unix epoch on boot "aligned".
        """
        if elapsed is None:
            elapsed = Elapsed((moment - _EPOCH).total_seconds(), "aligned")
        return cls(wall=moment, api=moment, elapsed=elapsed)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def whole_second(moment: datetime) -> datetime:
    """`moment` rounded down to the whole second, the resolution of every API timestamp."""
    return moment.replace(microsecond=0)

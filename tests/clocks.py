"""Clocks for tests that drive time by hand: the watcher's elapsed clock beside a simulator's
ManualClock, and a wall clock the test sets."""

from __future__ import annotations

from datetime import UTC, datetime

from watcher.core.clocks import Elapsed

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def elapsed_of(moment: datetime) -> Elapsed:
    """The elapsed-clock reading at reference time `moment`: its seconds, one boot.

    It moves only with the reference clock (`sim.advance`, a suspend included), never with a
    step of the watcher's wall clock.
    """
    return Elapsed((moment - _EPOCH).total_seconds(), "test-boot")


class WallClock:
    """The watcher's wall clock, moved by the test: `clock.now = ...`; calling it reads it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

"""The watcher's elapsed clock in tests that drive time by hand (a simulator's ManualClock)."""

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

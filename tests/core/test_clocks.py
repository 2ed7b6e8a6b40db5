"""Readings of the elapsed clock compare within one boot only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from watcher.core.clocks import Elapsed


@pytest.mark.parametrize(
    ("now", "earlier", "expected"),
    [
        # the usual case: time passed on one boot
        (Elapsed(100.0, "a"), Elapsed(40.0, "a"), timedelta(seconds=60)),
        # another boot: nothing can be said
        (Elapsed(100.0, "b"), Elapsed(40.0, "a"), None),
        # one known boot, a reading a moment ahead (another process, a race): no time passed
        (Elapsed(100.0, "a"), Elapsed(100.2, "a"), timedelta(0)),
        # an unknown boot id: a reading ahead can only mean a reboot
        (Elapsed(100.0, ""), Elapsed(400.0, ""), None),
        (Elapsed(400.0, ""), Elapsed(100.0, ""), timedelta(seconds=300)),
    ],
)
def test_since_compares_readings_of_one_boot_only(
    now: Elapsed, earlier: Elapsed, expected: timedelta | None
) -> None:
    assert now.since(earlier) == expected


def test_a_reading_survives_its_stored_form_and_garbage_reads_as_none() -> None:
    reading = Elapsed(12.5, "0b1d")
    assert Elapsed.decode(reading.encode()) == reading
    for garbage in (None, [], [1], [True, "b"], ["1", "b"], [1, 2], "x"):
        assert Elapsed.decode(garbage) is None

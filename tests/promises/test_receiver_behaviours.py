"""The short version of `bench/delivery_run.py`: receivers that behave like the services,
outages of a few lengths; every alert expected is delivered, none lost, none duplicated."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.promises.receiverrig import Case, run_case


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("behaviour", "outage"),
    [
        ("refused", 90.0),  # the case 4: down while 12 jobs finished over 8 polls
        ("http 500", 600.0),
        ("smtp 535", 120.0),  # login refused: given up quickly, then `watcher retry --all`
        ("discord 2,000", 0.0),  # 6,600-character partial alerts through the Discord plugin
        ("trickle", 30.0),  # a byte every 2 s: cut at the deadline, retried once it answers
    ],
)
async def test_every_alert_gets_through_once(tmp_path: Path, behaviour: str, outage: float) -> None:
    figures = await run_case(Case(behaviour, outage), tmp_path, deadline="3s", pace="0.05s")

    assert figures.expected == 24
    assert (figures.delivered, figures.lost) == (24, 0), figures
    if behaviour != "trickle":  # a trickled answer is a send the receiver took, then cut
        assert figures.duplicated == 0, figures
    if behaviour in ("refused", "http 500"):
        assert figures.messages < 24  # the backlog went grouped, not as a burst

"""The store shared as users share it, with real processes: a reload, then `status`, `health`
and `once` opening and closing the store beside the daemon. The minute-long version is
`python bench/store_churn.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.promises.churnrig import ChurnPlan, figures_text, run_churn


def test_after_a_reload_commands_beside_the_daemon_break_nothing_and_see_its_cycles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = run_churn(ChurnPlan(seconds=5.0), tmp_path)
    with capsys.disabled():
        print("\n" + figures_text(figures))
    assert figures.failures == []
    assert figures.rounds >= 2 and set(figures.runs) == {"status", "health", "once"}
    assert figures.deleted_side_files == [], "the daemon writes to a deleted -wal"
    assert len(figures.cycles_seen) >= 2, "status froze at the reload"
    assert figures.integrity == "ok"
    assert figures.exit_code == 0
    alerts = figures.alerts
    assert alerts.lost == [] and alerts.unexpected == []
    assert alerts.duplicated == 0
    assert alerts.delivered == alerts.expected > 0

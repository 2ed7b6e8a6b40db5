"""Several replicas, one alert: three `watcher run` on one PostgreSQL, killed and paused.

Three real daemons share a fresh PostgreSQL schema and a real-time simulator; for about half
a minute a seeded hand SIGKILLs one (the poller more often than not) and restarts it, or
pauses one with SIGSTOP and wakes it with SIGCONT. Every alert the scenario's jobs owe
arrives on every route that asked for it, duplicates only around a kill (between a send and
its acknowledgement), no poller write is ever made under a stale epoch (an audit trigger in
the schema counts them), and the API sees one poller's rounds. The long version is
`python bench/replica_chaos.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.promises.replicarig import ChaosPlan, chaos_table, run_chaos
from tests.stores import pg_available

pytestmark = pytest.mark.skipif(pg_available() is not None, reason=str(pg_available()))


def test_three_replicas_killed_and_paused_deliver_every_alert_once_with_one_poller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = ChaosPlan(seed=20261201, horizon=14.0, first_job=2.0)
    figures = run_chaos(plan, tmp_path)
    with capsys.disabled():
        print("\n" + chaos_table([figures]))
    alerts = figures.alerts
    assert figures.kills > 0 and figures.pauses > 0
    assert figures.failovers_kill or figures.failovers_pause, "the poller was never hit"
    assert figures.stale_writes == 0, "a poller write landed under a stale epoch"
    assert alerts.lost == []
    assert alerts.unexpected == []
    assert alerts.unexplained == [], "a duplicate arrived with no kill in its ack window"
    assert alerts.delivered == alerts.expected > 0
    assert alerts.stuck_claims == 0
    assert figures.rounds <= figures.rounds_allowed, "more than one replica polled at once"
    assert all(code == 0 for code in figures.exit_codes), figures.exit_codes

"""A quiet cycle's upkeep: the store's gauges come from the counts the store kept (the cycle
read the store's version at its start), so a quiet cycle hands the store's thread only its
version read and its heartbeat; the gauges it exports are the ones a snapshot would read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.clocks import WallClock
from tests.service.quiet_runtime import quiet_runtime
from watcher.edges.metrics import Metrics
from watcher.service.daemon import Daemon
from watcher.service.runtime import Runtime

TOKEN = "dop_v1_" + "5120" * 16
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with quiet_runtime(tmp_path, TOKEN, NOW) as opened:
        opened.metrics = Metrics()
        yield opened


def _gauges(metrics: Metrics) -> list[str]:
    """The store's gauges in the exposition text."""
    names = ("jobs", "outbox_depth", "oldest_undelivered", "dead_letters")
    return [
        line
        for line in metrics.render().decode().splitlines()
        if not line.startswith("#") and any(f"_{name}" in line.split("{")[0] for name in names)
    ]


async def _until_quiet(daemon: Daemon) -> None:
    """Tick until a cycle is quiet (the first full ones settle the account)."""
    for _ in range(6):
        with capture_logs() as logs:
            await daemon.tick()
        [finished] = [e for e in logs if e["event"] == "cycle_finished"]
        if finished["quiet"]:
            return
    raise AssertionError("no quiet cycle in 6")


async def test_a_quiet_cycle_hands_the_store_thread_its_version_read_and_heartbeat_only(
    runtime: Runtime,
) -> None:
    clock = WallClock(NOW)
    daemon = Daemon(runtime, config_path=None, env={}, clock=clock)
    await _until_quiet(daemon)
    store = runtime.store
    before = store.round_trips
    with capture_logs() as logs:
        await daemon.tick()
    [finished] = [e for e in logs if e["event"] == "cycle_finished"]
    assert finished["quiet"] is True
    # the store's version (the cycle's verdict) and the heartbeat: no gauges' snapshot
    assert store.round_trips - before == 2


async def test_a_quiet_cycles_gauges_are_those_a_snapshot_reads(runtime: Runtime) -> None:
    clock = WallClock(NOW)
    daemon = Daemon(runtime, config_path=None, env={}, clock=clock)
    await _until_quiet(daemon)
    clock.now = NOW + timedelta(minutes=3)
    await daemon.tick()
    quiet = _gauges(daemon.metrics)
    assert quiet  # exported
    await daemon.upkeep._update_store_gauges(clock.now)  # a snapshot's, read now
    assert _gauges(daemon.metrics) == quiet

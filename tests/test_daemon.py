"""The daemon: a bounded stop even with a stuck cycle, and honest reloads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from watcher import daemon as daemon_module
from watcher.config import Config, load_config
from watcher.daemon import Daemon
from watcher.runtime import open_runtime
from watcher.simulator import Fault, FaultKind, ManualClock, Simulator, load_scenario, serve

TOKEN = "dop_v1_" + "5709" * 16


async def test_a_stop_cancels_a_cycle_stuck_past_the_grace_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_module, "CYCLE_GRACE", 0.3)
    sim = Simulator(load_scenario("quiet"), token=TOKEN, clock=ManualClock())
    # The KB list answers only after a minute: the cycle is stuck in flight.
    sim.inject(Fault(FaultKind.SLOW, delay=60.0, count=None, path_prefix="/v2/gen-ai/knowledge"))
    async with serve(sim) as url:
        config = Config.from_mapping(
            {
                "api": {"base_url": url, "timeout": "120s"},
                "state": {"path": str(tmp_path / "w.db")},
                "routes": [{"name": "ops", "urls": ["json://127.0.0.1:9/x"]}],
            },
            token=TOKEN,
            token_source="test",
        )
        runtime = await open_runtime(config, clock=lambda: datetime.now(UTC))
        daemon = Daemon(runtime, config_path=None, env={})
        with capture_logs() as logs:
            serving = asyncio.create_task(daemon.serve())
            for _ in range(200):
                if daemon.cycle_started is not None:
                    break
                await asyncio.sleep(0.05)
            assert daemon.cycle_started is not None, "the first cycle never started"
            await asyncio.sleep(0.5)  # well inside the minute the KB list takes
            daemon.stopping.set()
            code = await asyncio.wait_for(serving, timeout=30)
    assert code == 0
    events = [entry["event"] for entry in logs]
    assert "cycle_cancelled_to_stop" in events
    assert events[-1] == "watcher_stopped"


async def test_a_reload_that_changes_logging_or_http_says_those_need_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.toml"
    base = (
        f'[state]\npath = "{tmp_path / "w.db"}"\n'
        '[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:9/x"]\n'
    )
    path.write_text(base, encoding="utf-8")
    env = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN}
    runtime = await open_runtime(load_config(path, env), clock=lambda: datetime.now(UTC))
    daemon = Daemon(runtime, config_path=path, env=env)
    path.write_text(base + '[log]\nlevel = "debug"\n', encoding="utf-8")
    with capture_logs() as logs:
        assert await daemon.reload()
    await daemon.runtime.close()
    [warning] = [e for e in logs if e["event"] == "config_reload_needs_restart"]
    assert warning["sections"] == ["log"]
    assert daemon.config.log.level.value == "debug"

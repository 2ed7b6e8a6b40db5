"""The daemon: a bounded stop even with a stuck cycle, and honest reloads."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.stores import open_held
from watcher.config import Config, load_config
from watcher.core.clocks import Elapsed
from watcher.core.health import Probe
from watcher.edges.hostclock import monotonic_now
from watcher.service import daemon as daemon_module
from watcher.service.cycle import CycleReport
from watcher.service.daemon import Daemon
from watcher.service.runtime import open_runtime
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


# --- time: a monotonic schedule, the cycle deadline, the one health rule ----------------------


class Notes:
    """A SystemdNotifier stand-in that keeps every message."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    def notify(self, **fields: str | int) -> bool:
        self.sent.append({k: str(v) for k, v in fields.items()})
        return True

    def ready(self) -> bool:
        return self.notify(READY=1)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def watchdog(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return self.notify(WATCHDOG=1)
        return self.notify(WATCHDOG=1, WATCHDOG_USEC=round(timeout * 1e6))

    def stopping(self) -> bool:
        return self.notify(STOPPING=1)

    def reloading(self) -> bool:
        return self.notify(RELOADING=1)

    def having(self, key: str) -> list[dict[str, str]]:
        return [m for m in self.sent if key in m]


class Monotonic:
    """The daemon's monotonic clock, moved by the test on top of the real one."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> Elapsed:
        real = monotonic_now()
        return Elapsed(real.seconds + self.ahead, real.boot)


def _daemon_config(url: str, tmp_path: Path, **poll: str) -> Config:
    return Config.from_mapping(
        {
            "api": {"base_url": url, "timeout": "120s"},
            "poll": {"interval": "0.3s", "active_interval": "0.3s", "jitter": "0s", **poll},
            "state": {"path": str(tmp_path / "w.db")},
            "delivery": {"timeout": "1s"},
            "routes": [{"name": "ops", "urls": ["json://127.0.0.1:9/x"]}],
        },
        token=TOKEN,
        token_source="test",
    )


async def _until(predicate: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_stuck_cycle_fails_liveness_and_starves_the_watchdog_then_a_stop_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Liveness is the age of the last finished cycle; the watchdog is fed by nothing else."""
    monkeypatch.setattr(daemon_module, "CYCLE_GRACE", 0.3)
    sim = Simulator(load_scenario("quiet"), token=TOKEN, clock=ManualClock())
    async with serve(sim) as url:
        runtime = await open_runtime(_daemon_config(url, tmp_path))
        notes, clock = Notes(), Monotonic()
        env = {"WATCHDOG_USEC": "60000000"}
        daemon = Daemon(runtime, config_path=None, env=env, systemd=notes, monotonic=clock)  # type: ignore[arg-type]
        real_run, calls = runtime.cycle.run, []

        async def first_then_stuck() -> CycleReport:
            calls.append(1)
            if len(calls) == 1:
                return await real_run()
            await asyncio.Event().wait()  # a cycle that never ends (a bug, a hung syscall)
            raise AssertionError("unreachable")

        runtime.cycle.run = first_then_stuck  # type: ignore[method-assign]
        serving = asyncio.create_task(daemon.serve())
        await _until(lambda: len(calls) >= 2, "the second (stuck) cycle")
        limit = daemon.limit.total_seconds()  # 0.3 + 2 x 60 + 1 = 121.3 s
        assert (await daemon.health(Probe.LIVE)).ok
        clock.ahead = limit + 1  # the stuck cycle outlives the limit
        verdict = await daemon.health(Probe.LIVE)
        assert not verdict.ok and verdict.reason.startswith("stuck: the last cycle finished")
        assert not (await daemon.health(Probe.READY)).ok
        await asyncio.sleep(0.5)
        pings = notes.having("WATCHDOG")
        assert pings == [{"WATCHDOG": "1", "WATCHDOG_USEC": str(round(limit * 1e6))}]
        daemon.stopping.set()
        assert await asyncio.wait_for(serving, timeout=30) == 0


async def test_a_bare_429_storm_ends_the_cycle_at_its_deadline_and_the_next_starts_on_time(
    tmp_path: Path,
) -> None:
    """Without retry-after the client would wait up to 4 x 60 s; the cycle deadline is 1 s.

    Meanwhile "a cycle is still running" is said once per overrun, at debug, and APScheduler,
    which no longer drives polling, warns about nothing.
    """
    sim = Simulator(load_scenario("quiet"), token=TOKEN, clock=ManualClock())
    # a 429 without retry-after waits for `ratelimit-reset`, up to a minute per attempt
    sim.inject(Fault(FaultKind.RATE_LIMITED, count=None, retry_after=None))
    async with serve(sim) as url:
        config = _daemon_config(url, tmp_path, cycle_deadline="1s")
        runtime = await open_runtime(config)
        daemon = Daemon(runtime, config_path=None, env={})
        with capture_logs() as logs:
            serving = asyncio.create_task(daemon.serve())
            await _until(
                lambda: len([e for e in logs if e["event"] == "cycle_finished"]) >= 3,
                "three finished cycles",
            )
            daemon.stopping.set()
            assert await asyncio.wait_for(serving, timeout=30) == 0
    finished = [e for e in logs if e["event"] == "cycle_finished"]
    assert all(not e["ok"] for e in finished[:3])
    # each ends at its 1 s deadline, not at the minute a 429 without retry-after may wait
    # (the bound leaves a loaded machine's slow commits seconds of room)
    assert all(0.9 <= e["duration_s"] < 15 for e in finished[:3]), finished
    passed = [e for e in logs if e["event"] == "cycle_deadline_passed"]
    overruns = [e for e in logs if e["event"] == "cycle_still_running"]
    assert len(passed) >= 3
    assert 3 <= len(overruns) <= len(passed) + 1  # once per overrun, never once per tick
    assert all(e["log_level"] == "debug" for e in overruns)
    # each says where the cycle waits, in the watcher's own code: here, the API's read
    assert all(str(e["waiting_in"]).startswith("watcher.edges.api.") for e in overruns), overruns
    assert not [e for e in logs if e["log_level"] == "warning" and "apscheduler" in str(e)]


def _config_text(state: Path) -> str:
    return f'[state]\npath = "{state}"\n[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:9/x"]\n'


async def _daemon(tmp_path: Path, state: Path) -> tuple[Daemon, Path]:
    path = tmp_path / "watcher.toml"
    path.write_text(_config_text(state), encoding="utf-8")
    env = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN}
    runtime = await open_runtime(load_config(path, env), clock=lambda: datetime.now(UTC))
    return Daemon(runtime, config_path=path, env=env), path


async def test_a_reload_keeps_the_open_store_and_its_lease_never_opening_the_file_again(
    tmp_path: Path,
) -> None:
    """The reload that dropped SQLite's locks opened the file a second time; the session's
    store guard (`tests.storeguard`) fails any test that does."""
    daemon, _ = await _daemon(tmp_path, tmp_path / "w.db")
    store, keeper, epoch = daemon.runtime.store, daemon.runtime.keeper, daemon.runtime.store.epoch
    try:
        assert await daemon.reload()
        assert daemon.runtime.store is store and daemon.runtime.keeper is keeper
        assert (store.epoch, keeper.held) == (epoch, True)
        await daemon.runtime.cycle.deliver()  # the kept store still writes
    finally:
        await daemon.runtime.close()


async def test_a_reload_to_another_state_file_takes_its_lease_and_lets_the_old_one_go(
    tmp_path: Path,
) -> None:
    daemon, config = await _daemon(tmp_path, tmp_path / "old.db")
    old = daemon.runtime.store
    config.write_text(_config_text(tmp_path / "new.db"), encoding="utf-8")
    try:
        assert await daemon.reload()
        assert daemon.runtime.store is not old and daemon.runtime.keeper.held
        assert daemon.runtime.store.epoch == 1
    finally:
        await daemon.runtime.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT holder FROM lease").fetchall() == [(None,)]
    conn.close()


async def test_a_reload_to_a_state_file_another_watcher_holds_is_rejected_and_survived(
    tmp_path: Path,
) -> None:
    other = await open_held(tmp_path / "theirs.db", datetime.now(UTC))
    daemon, config = await _daemon(tmp_path, tmp_path / "mine.db")
    mine = daemon.runtime.store
    config.write_text(_config_text(tmp_path / "theirs.db"), encoding="utf-8")
    try:
        with capture_logs() as logs:
            assert not await daemon.reload()
        [rejected] = [e for e in logs if e["event"] == "config_reload_rejected"]
        assert "is held by" in rejected["problems"][0]
        assert daemon.runtime.store is mine and daemon.runtime.keeper.held
    finally:
        await daemon.runtime.close()
        await other.close()

"""The daemon's upkeep: history pruned by `state.retention`, at start and hourly on the
wall clock; and the one-shot commands stay free of the daemon's scheduler."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.clocks import WallClock
from tests.stores import open_held
from watcher.config import Config
from watcher.core.model import EventKind, Job, Phase, Status
from watcher.core.outbox import DeliveryState, Settlement
from watcher.core.state import Change, Delivery, JobState, Transition
from watcher.edges.store.sqlite import SqliteStore
from watcher.service.daemon import Daemon
from watcher.service.runtime import open_runtime
from watcher.simulator import ManualClock, Simulator, load_scenario, serve

TOKEN = "dop_v1_" + "cd" * 32
KB = "44444444-4444-4444-8444-444444444444"


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    sim = Simulator(load_scenario("quiet"), token=TOKEN, clock=ManualClock())
    async with serve(sim) as url:
        yield url


def _config(base_url: str, state: Path) -> Config:
    return Config.from_mapping(
        {
            "api": {"base_url": base_url},
            "state": {"path": str(state), "retention": "7d"},
            "routes": [{"name": "ops", "urls": ["json://127.0.0.1:9/hook"], "events": ["*"]}],
        },
        token=TOKEN,
        token_source="test",
    )


async def _add_history(path: Path, finished: datetime, n: int, prefix: str) -> None:
    """`n` finished jobs of a KB the account does not list, each with a sent alert."""
    async with await open_held(path, finished) as store:
        await _record_history(store, finished, n, prefix)


async def _record_history(store: SqliteStore, finished: datetime, n: int, prefix: str) -> None:
    """Record the history of `_add_history` through an open store that holds the lease."""
    states, transitions = [], []
    for i in range(n):
        job = Job(
            uuid=f"{prefix}-{i}",
            knowledge_base_uuid=KB,
            phase=Phase.SUCCEEDED,
            status=Status.COMPLETED,
            created_at=finished,
            finished_at=finished,
            updated_at=finished,
        )
        states.append(JobState(job, KB, finished, finished, done=True))
        transitions.append(Transition(f"{job.uuid}/completed", EventKind.COMPLETED, finished, KB))
    await store.record(
        Change(
            f"fill-{prefix}",
            finished,
            jobs=tuple(states),
            transitions=tuple(transitions),
            deliveries=tuple(Delivery(t.event_id, "ops") for t in transitions),
        )
    )
    items = await store.claim_due(finished + timedelta(seconds=1), 1000)
    await store.settle([Settlement(i.id, DeliveryState.SENT, finished, attempts=1) for i in items])


async def _jobs(path: Path, prefix: str, now: datetime) -> int:
    async with await SqliteStore.open(path, now=now) as store:
        state = await store.load({f"{prefix}-{i}" for i in range(100)})
    return len(state.jobs)


async def _wait_pruned(db: Path, prefix: str, now: datetime, below: int) -> int:
    for _ in range(200):
        if (kept := await _jobs(db, prefix, now)) < below:
            return kept
        await asyncio.sleep(0.05)
    return await _jobs(db, prefix, now)


async def test_daemon_prunes_history_older_than_retention_at_start(
    base_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    db = tmp_path / "w.db"
    await _add_history(db, now - timedelta(days=30), 60, "old")
    await _add_history(db, now - timedelta(days=2), 5, "recent")
    config = _config(base_url, db)
    daemon = Daemon(await open_runtime(config), config_path=None, env={}, clock=WallClock(now))
    try:
        daemon.calendar.start(daemon._prune_now)
        # the newest 50 jobs of a KB are always kept (the API may still list them)
        assert await _wait_pruned(db, "old", now, below=60) == 45
    finally:
        daemon.calendar.shutdown()
        await daemon.runtime.close()
    assert await _jobs(db, "recent", now) == 5


async def test_pruning_is_calendar_work_hourly_on_the_wall_clock_and_polling_is_not(
    base_url: str, tmp_path: Path
) -> None:
    """APScheduler keeps the wall-clock job (pruning, hourly at :17); cycles run elsewhere."""
    now = datetime.now(UTC)
    db = tmp_path / "w.db"
    daemon = Daemon(
        await open_runtime(_config(base_url, db)), config_path=None, env={}, clock=WallClock(now)
    )
    try:
        daemon.calendar.start(daemon._prune_now)
        await asyncio.sleep(0.3)  # the run at start
        jobs = daemon.calendar.scheduler.get_jobs()
        assert [job.id for job in jobs] == ["prune"]
        later = jobs[0].next_run_time
        assert later.minute == 17 and later.second == 0
        assert timedelta(0) < later - datetime.now(UTC) <= timedelta(hours=1)
    finally:
        daemon.calendar.shutdown()
        await daemon.runtime.close()


def test_one_shot_commands_do_not_import_the_scheduler() -> None:
    code = "import sys, watcher.service.commands; print('apscheduler' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"


def test_status_shows_the_pace_the_daemon_stored(tmp_path: Path) -> None:
    db = tmp_path / "w.db"

    async def store_pace() -> None:
        async with await open_held(db, datetime.now(UTC)) as store:
            pace = {"interval_s": 15.0, "reason": "active"}
            await store.set_meta("poll_pace", json.dumps(pace))

    asyncio.run(store_pace())
    config_file = tmp_path / "w.toml"
    config_file.write_text(
        f'[state]\npath = "{db}"\n\n[[routes]]\nname = "ops"\n'
        'urls = ["json://127.0.0.1:9/hook"]\nevents = ["failed"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN"))}
    watcher = Path(sys.executable).parent / "watcher"
    done = subprocess.run(
        [str(watcher), "status", "--json", "--config", str(config_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["poll"] == {"interval_s": 15.0, "reason": "active"}

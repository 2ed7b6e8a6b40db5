"""The store under crashes and a hostile disk: consistent after kill -9, no false "sent".

A child process killed inside `record` (at a patched point, and at random moments of a
stream of big writes) leaves a file that passes `quick_check` and shows whole cycles only.
A full disk (a file-size limit in a child) or a read-only state file (`chattr +i`; the tests
run as root) fails the cycle with a clear error and sends nothing it could not record; once
the disk is back the alert goes out, once. A corrupt state file stops `watcher once` with the
way out, and the file is left exactly as it was.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.harness import TOKEN, alerts_of
from tests.receivers import WebhookReceiver
from tests.storeguard import guard_env
from watcher.core.model import EventKind
from watcher.simulator import ManualClock, Simulator, serve_in_thread
from watcher.simulator.loading import parse_scenario

WATCHER = Path(sys.executable).parent / "watcher"
REPO = Path(__file__).resolve().parents[2]

_DIE_INSIDE_RECORD = """
import asyncio, os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from watcher.edges import host
from watcher.edges.store import sqlite as store_sqlite
from watcher.edges.store.rows import _UPSERT_JOB, _UPSERT_KB
from watcher.core.model import Job
from watcher.core.state import Change, JobState, KbState

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)

def dying_write(conn, rows):
    conn.executemany(_UPSERT_KB, rows.kbs)
    conn.executemany(_UPSERT_JOB, rows.jobs)
    os.kill(os.getpid(), signal.SIGKILL)  # half of the change is written, none committed

async def main() -> None:
    store = await store_sqlite.SqliteStore.open(Path(sys.argv[1]), now=NOW)
    await store.lease_step(host.this_process("test", NOW), 30.0)
    await store.record(Change("c0", NOW, kbs=(KbState("kb-0", "before", NOW),)))
    jobs = tuple(JobState(Job(uuid=f"j{i}"), "kb-1", NOW, NOW) for i in range(5000))
    store_sqlite.write_change = dying_write
    await store.record(Change("c1", NOW, kbs=(KbState("kb-1", "after", NOW),), jobs=jobs))

asyncio.run(main())
"""


def quick_check(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        result = str(conn.execute("PRAGMA quick_check").fetchone()[0])
    conn.close()
    return result


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        found = conn.execute(sql).fetchall()
    conn.close()
    return found


def test_a_kill_inside_record_leaves_a_consistent_file_without_the_partial_change(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.db"
    done = subprocess.run(
        [sys.executable, "-c", _DIE_INSIDE_RECORD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert quick_check(path) == "ok"
    assert rows(path, "SELECT uuid, name FROM knowledge_bases") == [("kb-0", "before")]
    assert rows(path, "SELECT count(*) FROM jobs") == [(0,)]


_WRITE_FOREVER = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from watcher.edges import host
from watcher.edges.store.sqlite import SqliteStore
from watcher.core.model import Job
from watcher.core.state import Change, JobState, KbState

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
PER_CYCLE = 400

async def main() -> None:
    store = await SqliteStore.open(Path(sys.argv[1]), now=NOW)
    await store.lease_step(host.this_process("test", NOW), 30.0)
    n = int((await store.get_meta("cycles")) or 0)
    print("ready", flush=True)
    while True:
        n += 1
        jobs = tuple(
            JobState(Job(uuid=f"c{n}-j{i}", phase_raw="x" * 200), "kb", NOW, NOW)
            for i in range(PER_CYCLE)
        )
        change = Change(f"c{n}", NOW + timedelta(seconds=n), kbs=(KbState("kb", str(n), NOW),),
                        jobs=jobs)
        await store.record(change, meta={"cycles": str(n)})

asyncio.run(main())
"""


def test_kills_at_random_moments_of_big_writes_only_ever_leave_whole_cycles(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.db"
    rng = random.Random(7)
    for _ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITE_FOREVER, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"ready"
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        assert quick_check(path) == "ok"
        cycles = int(str(rows(path, "SELECT value FROM meta WHERE key = 'cycles'")[0][0]))
        assert rows(path, "SELECT count(*) FROM jobs") == [(400 * cycles,)]
        assert rows(path, "SELECT name FROM knowledge_bases") == [(str(cycles),)]


# --- the disk says no during a cycle -----------------------------------------------------

SCENARIO = {
    "name": "disk",
    "knowledge_bases": [
        {
            "key": "docs",
            "name": "docs-kb",
            "data_sources": [{"key": "site", "items": 40}],
            "history": [{"ago": 86400, "run": 100, "outcome": "completed"}],
        }
    ],
    "timeline": [{"at": 5, "start_job": {"kb": "docs", "id": "j", "pending": 1, "run": 20}}],
}


def wall_clock() -> ManualClock:
    """A manual clock starting now: `watcher once` reads the real clock for its own time."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


def write_config(folder: Path, base_url: str, receiver: WebhookReceiver, state: Path) -> Path:
    path = folder / "watcher.toml"
    path.write_text(
        f"""
[api]
base_url = "{base_url}"
timeout = "2s"

[state]
path = "{state}"

[log]
format = "json"

[[routes]]
name = "ops"
urls = ["{receiver.url_json("/ops")}"]
events = ["*"]
""",
        encoding="utf-8",
    )
    return path


def once(config: Path) -> subprocess.CompletedProcess[str]:
    env = guard_env({**os.environ, "DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    return subprocess.run(
        [str(WATCHER), "once", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """Make `path` read-only even for root (`chattr +i`), undone afterwards."""
    chattr = shutil.which("chattr")
    if os.geteuid() != 0 or chattr is None:
        pytest.skip("needs root and chattr to make a path read-only for root")
    done = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


@pytest.mark.parametrize("locked", ["file", "directory"])
def test_a_read_only_state_fails_once_clearly_sends_nothing_and_recovers_once(
    tmp_path: Path, webhook_receiver: WebhookReceiver, locked: str
) -> None:
    sim = Simulator(parse_scenario(SCENARIO, "disk"), token=TOKEN, clock=wall_clock())
    state_dir = tmp_path / "state"
    state = state_dir / "watcher.db"
    with serve_in_thread(sim) as url:
        config = write_config(tmp_path, url, webhook_receiver, state)
        sim.advance(8)  # the job runs
        first = once(config)
        assert first.returncode == 0, first.stderr
        assert [a.kind for a in alerts_of(webhook_receiver.requests)] == [EventKind.STARTED]
        sim.advance(30)  # the job is over
        with immutable(state if locked == "file" else state_dir):
            failed = once(config)
        # A state path this user cannot write is the configuration's fault: exit 78, one line.
        assert failed.returncode == 78
        assert failed.stderr.startswith(f"{config}: state.path: {state} ")
        assert "Traceback" not in failed.stderr and len(failed.stderr.splitlines()) == 1
        assert len(webhook_receiver.requests) == 1, "sent an alert it could not record"
        again = once(config)
        assert again.returncode == 0, again.stderr
        kinds = [a.kind for a in alerts_of(webhook_receiver.requests)]
        assert kinds == [EventKind.STARTED, EventKind.COMPLETED]
        assert TOKEN not in first.stderr + failed.stderr + again.stderr


_FULL_DISK_CYCLE = """
import asyncio, json, resource, signal, sys
from pathlib import Path
from watcher.config import Config
from watcher.core.errors import StoreError
from watcher.service.runtime import open_runtime
from watcher.simulator import ManualClock, Simulator, serve_in_thread
from watcher.simulator.loading import parse_scenario

scenario, (receiver_url, state, token) = json.loads(sys.argv[1]), sys.argv[2:5]

async def main() -> None:
    sim = Simulator(parse_scenario(scenario, "disk"), token=token, clock=ManualClock())
    with serve_in_thread(sim) as url:
        config = Config.from_mapping(
            {"api": {"base_url": url}, "state": {"path": state},
             "routes": [{"name": "ops", "urls": [receiver_url], "events": ["*"]}]},
            token=token,
        )
        runtime = await open_runtime(config, clock=sim.now)
        sim.advance(8)
        print("cycle1", (await runtime.cycle.run()).ok, flush=True)
        sim.advance(30)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))
        try:
            await runtime.cycle.run()
            print("cycle2 no error", flush=True)
        except StoreError as exc:
            print("cycle2 StoreError", str(exc).replace(chr(10), " "), flush=True)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        print("cycle3", (await runtime.cycle.run()).ok, flush=True)
        print("cycle4", (await runtime.cycle.run()).ok, flush=True)
        await runtime.close()

asyncio.run(main())
"""


def test_a_full_disk_fails_the_cycle_clearly_sends_nothing_then_delivers_once(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """The child's files may not grow past 1 byte during cycle 2 (RLIMIT_FSIZE)."""
    import json

    state = tmp_path / "watcher.db"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _FULL_DISK_CYCLE,
            json.dumps(SCENARIO),
            webhook_receiver.url_json("/ops"),
            str(state),
            TOKEN,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("cycle")]
    assert lines[0] == "cycle1 True"
    assert lines[1].startswith(f"cycle2 StoreError state store {state}: recording a cycle failed")
    assert "disk" in lines[1]
    assert lines[2:] == ["cycle3 True", "cycle4 True"]
    kinds = [a.kind for a in alerts_of(webhook_receiver.requests)]
    assert kinds == [EventKind.STARTED, EventKind.COMPLETED]
    assert quick_check(state) == "ok"
    assert TOKEN not in done.stdout + done.stderr


def test_a_corrupt_state_file_stops_once_with_the_way_out_and_is_left_untouched(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    sim = Simulator(parse_scenario(SCENARIO, "disk"), token=TOKEN, clock=wall_clock())
    state = tmp_path / "watcher.db"
    with serve_in_thread(sim) as url:
        config = write_config(tmp_path, url, webhook_receiver, state)
        sim.advance(8)
        assert once(config).returncode == 0
        with sqlite3.connect(state) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        damaged = bytearray(state.read_bytes())
        damaged[4096:] = b"\xa5" * (len(damaged) - 4096)
        state.write_bytes(bytes(damaged))
        sim.advance(30)
        failed = once(config)
    assert failed.returncode != 0
    assert "not a usable watcher state store" in failed.stderr
    assert f"mv {state} {state}.corrupt" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert state.read_bytes() == damaged, "the corrupt file was changed"
    assert [a.kind for a in alerts_of(webhook_receiver.requests)] == [EventKind.STARTED]

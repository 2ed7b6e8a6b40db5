"""The SQLite store's file: permissions, schema versions, corrupt and foreign files, read-only
places and a full disk.

Running as root makes chmod useless for read-only tests, so as root a file or directory is
made read-only with `chattr +i` (immutable: refused even to root); the test is skipped where
the filesystem cannot do that. The full disk is a file-size limit (RLIMIT_FSIZE) in a child
process, so the limit never touches the test runner's own files.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.stores import open_held
from watcher.core.errors import StoreCorrupt, StoreError
from watcher.core.state import Change, KbState
from watcher.edges.store.schema import MIGRATIONS, SCHEMA_VERSION
from watcher.edges.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def make_store(path: Path) -> None:
    """Create a store at `path` holding one KB, and close it."""
    store = await open_held(path, NOW)
    await store.record(Change(cycle_id="c", at=NOW, kbs=(KbState("kb-1", "docs", NOW),)))
    await store.close()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a file or directory read-only for this process, even for root; undo afterwards."""
    if os.geteuid() != 0:
        before = mode(path)
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(before)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr: cannot make a path read-only")
    done = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr +i is not supported here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


async def test_a_new_store_and_its_wal_files_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "watcher.db"
    previous = os.umask(0)
    try:
        store = await open_held(path, NOW)
        await store.record(Change(cycle_id="c", at=NOW))
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert (mode(path), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        await store.close()
    finally:
        os.umask(previous)
    assert mode(path.parent) == 0o700


async def test_a_new_store_runs_in_wal_mode_with_the_current_schema_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.db"
    await make_store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_reopening_keeps_the_data_and_the_creation_time(tmp_path: Path) -> None:
    path = tmp_path / "watcher.db"
    await make_store(path)
    store = await SqliteStore.open(path, now=NOW + timedelta(days=1))
    try:
        assert list((await store.load([])).kbs) == ["kb-1"]
        assert (await store.snapshot(NOW)).created_at == NOW
    finally:
        await store.close()


async def test_a_version_1_store_is_migrated_keeping_its_rows_with_no_sightings_yet(
    tmp_path: Path,
) -> None:
    """Rows written before sightings and news watermarks existed load with None for both."""
    path = tmp_path / "watcher.db"
    with sqlite3.connect(path) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO knowledge_bases VALUES ('kb-1', 'docs', ?, 'job-1', ?)",
            ("2026-11-27T12:00:00.000000Z", "2026-11-27T12:00:00.000000Z"),
        )
        conn.execute(
            "INSERT INTO jobs (uuid, kb_uuid, observation, first_seen_at, progress_at, updated)"
            " VALUES ('job-1', 'kb-1', '{\"uuid\": \"job-1\"}', ?, ?, ?)",
            ("2026-11-27T12:00:00.000000Z",) * 3,
        )
    conn.close()
    store = await SqliteStore.open(path, now=NOW)
    try:
        state = await store.load(["job-1"])
        assert state.kbs["kb-1"].news_since is None
        assert state.jobs["job-1"].sighting is None
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_a_store_written_by_a_newer_watcher_is_refused_and_left_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.db"
    await make_store(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()  # no live connection while the file is read (`tests.storeguard`)
    before = path.read_bytes()
    with pytest.raises(
        StoreError, match=rf"schema version 99.*knows only up to {SCHEMA_VERSION}"
    ) as caught:
        await SqliteStore.open(path, now=NOW)
    assert type(caught.value) is StoreError
    assert path.read_bytes() == before


async def test_a_garbage_file_is_reported_corrupt_with_the_way_out_and_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.db"
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)
    with pytest.raises(StoreCorrupt) as caught:
        await SqliteStore.open(path, now=NOW)
    message = str(caught.value)
    assert str(path) in message
    assert f"mv {path} {path}.corrupt" in message
    assert "records the current state silently" in message
    assert path.read_bytes() == garbage
    assert os.listdir(tmp_path) == ["watcher.db"]


async def test_a_store_with_damaged_pages_is_reported_corrupt_and_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.db"
    await make_store(path)
    damaged = bytearray(path.read_bytes())
    damaged[4096:] = b"\xa5" * (len(damaged) - 4096)
    path.write_bytes(bytes(damaged))
    with pytest.raises(StoreCorrupt, match="not a usable watcher state store"):
        await SqliteStore.open(path, now=NOW)
    assert path.read_bytes() == damaged


async def test_an_sqlite_file_of_another_program_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreCorrupt, match="another program"):
        await SqliteStore.open(path, now=NOW)
    assert path.read_bytes() == before


async def test_a_directory_in_place_of_the_file_is_a_clear_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot create or open it for writing"):
        await SqliteStore.open(tmp_path, now=NOW)


async def test_a_new_store_in_a_read_only_directory_is_a_clear_store_error(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    with read_only(folder), pytest.raises(StoreError, match="needs write access") as caught:
        await SqliteStore.open(folder / "watcher.db", now=NOW)
    assert str(folder / "watcher.db") in str(caught.value)


async def test_an_existing_store_in_a_read_only_directory_is_a_clear_store_error(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    await make_store(folder / "watcher.db")
    with read_only(folder), pytest.raises(StoreError, match="writable by the watcher"):
        await SqliteStore.open(folder / "watcher.db", now=NOW)


async def test_a_read_only_store_file_is_a_clear_store_error(tmp_path: Path) -> None:
    path = tmp_path / "watcher.db"
    await make_store(path)
    with read_only(path), pytest.raises(StoreError, match="needs write access"):
        await SqliteStore.open(path, now=NOW)


_FULL_DISK = """
import asyncio, os, resource, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from watcher.edges import host
from watcher.edges.store.sqlite import SqliteStore
from watcher.core.errors import StoreError
from watcher.core.model import Job
from watcher.core.state import Change, JobState, KbState

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
path = Path(sys.argv[1])

async def main() -> None:
    store = await SqliteStore.open(path, now=NOW)
    await store.lease_step(host.this_process("test", NOW), 30.0)
    await store.record(Change(cycle_id="c0", at=NOW, kbs=(KbState("kb", "docs", NOW),)))
    room = max(p.stat().st_size for p in (path, Path(f"{path}-wal"))) + 4096
    jobs = tuple(
        JobState(Job(uuid=f"j{i}", phase_raw="x" * 500), "kb", NOW, NOW) for i in range(400)
    )
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (room, hard))
    try:
        await store.record(Change(cycle_id="c1", at=NOW, jobs=jobs))
        print("NO ERROR")
    except StoreError as exc:
        print("ERROR", exc)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    print("JOBS", len((await store.load([])).jobs))
    await store.record(Change(cycle_id="c2", at=NOW, jobs=jobs[:1]))
    print("JOBS", len((await store.load([])).jobs))
    await store.close()

asyncio.run(main())
"""


def test_a_full_disk_fails_the_record_cleanly_and_the_store_carries_on(tmp_path: Path) -> None:
    path = tmp_path / "watcher.db"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FULL_DISK), str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"ERROR state store {path}: recording a cycle failed")
    assert lines[1:] == ["JOBS 0", "JOBS 1"]

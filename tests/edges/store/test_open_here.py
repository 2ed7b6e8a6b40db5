"""A store connection opened on the calling thread (`StoreConnection.open_here`, `watcher
health`'s fast path): its coroutines finish without waiting, so they run with no event loop,
and they say what the store on its own thread says."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from structlog.testing import capture_logs

from tests.stores import open_held
from watcher.cli import _finished
from watcher.core.errors import StoreReplaced
from watcher.edges.store.conn import StoreConnection

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T = TypeVar("T")


def at_once(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that must not wait, with no event loop: it fails if it waits."""
    with pytest.raises(StopIteration) as done:
        work.send(None)
    return done.value.value  # type: ignore[no-any-return]


def make_store(path: Path) -> None:
    async def make() -> None:
        store = await open_held(path, NOW)
        await store.set_meta("k", "v")
        await store.close()

    asyncio.run(make())


def test_a_connection_opened_here_reads_and_checks_without_an_event_loop(
    tmp_path: Path,
) -> None:
    db = tmp_path / "w.db"
    make_store(db)
    store = StoreConnection.open_here(db, now=NOW, integrity_check=False)
    assert at_once(store.get_meta("k")) == "v"
    assert at_once(store.get_meta("none")) is None
    at_once(store.check_writable())
    at_once(store.close())
    at_once(store.close())  # idempotent


def test_a_connection_opened_here_refuses_a_replaced_file_as_the_store_does(
    tmp_path: Path,
) -> None:
    """A file moved away under the probe: `StoreReplaced`, with the bystander's words."""
    db = tmp_path / "w.db"
    make_store(db)
    store = StoreConnection.open_here(db, now=NOW, integrity_check=False)
    os.replace(db, tmp_path / "aside.db")
    with pytest.raises(StoreReplaced, match="the process holding its lease saves a copy"):
        at_once(store.check_writable())
    at_once(store.close())


@pytest.mark.parametrize("quiet", [False, True])
def test_a_quiet_connection_logs_no_warning_when_it_reopens_on_new_side_files(
    tmp_path: Path, quiet: bool
) -> None:
    """Side files deleted under the probe: it reopens and goes on either way; only a connection
    opened without `quiet` says so in the logs."""
    db = tmp_path / "w.db"
    make_store(db)
    store = StoreConnection.open_here(db, now=NOW, integrity_check=False, quiet=quiet)
    for suffix in ("-wal", "-shm"):
        os.unlink(f"{db}{suffix}")
    with capture_logs() as logs:
        at_once(store.check_writable())
    assert [e["event"] for e in logs] == ([] if quiet else ["store_side_file_replaced"])
    assert at_once(store.get_meta("k")) == "v"
    at_once(store.close())


def test_the_cli_runs_a_coroutine_that_never_waits_and_refuses_one_that_does() -> None:
    async def answer() -> int:
        return 42

    async def waits() -> int:
        await asyncio.sleep(0)
        return 1

    assert _finished(answer()) == 42
    with pytest.raises(RuntimeError, match="needs an event loop"):
        _finished(waits())

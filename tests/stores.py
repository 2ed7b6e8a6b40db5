"""Opening SQLite stores in tests the way the watcher does: open, then take the store's lease."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from watcher.edges import host
from watcher.edges.store.sqlite import DEFAULT_LEASE, SqliteStore

LEASE_SECONDS = 30.0


async def open_held(
    path: Path, now: datetime, *, lease: timedelta = DEFAULT_LEASE, integrity_check: bool = True
) -> SqliteStore:
    """Open the store at `path` and take its lease for a holder of its own (as `once` does)."""
    store = await SqliteStore.open(path, now=now, lease=lease, integrity_check=integrity_check)
    try:
        outcome = await store.lease_step(host.this_process("pytest", now), LEASE_SECONDS)
        assert outcome.decision.held, outcome
    except BaseException:
        await store.close()
        raise
    return store

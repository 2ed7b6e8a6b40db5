"""Every failure of the store's file comes out as `StoreError`, whatever raised it underneath:
callers (readiness, the daemon's upkeep) catch that and nothing wider."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.stores import open_held
from watcher.core.errors import StoreError

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


async def test_an_os_error_on_the_state_path_is_a_store_error_naming_the_path(
    tmp_path: Path,
) -> None:
    """A symlink loop put at the state path makes `stat` fail with ELOOP, an OSError that is
    neither "not found" nor a sqlite3 error."""
    path = tmp_path / "w.db"
    store = await open_held(path, NOW)
    moved = tmp_path / "moved.db"
    try:
        os.rename(path, moved)
        os.symlink(path, path)  # points at itself
        with pytest.raises(StoreError) as caught:
            await store.check_writable()
        assert str(path) in str(caught.value)
        assert "symbolic links" in str(caught.value)
    finally:
        os.unlink(path)
        os.rename(moved, path)
        await store.close()

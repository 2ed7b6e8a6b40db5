"""A runtime on the simulator's quiet account: an SQLite file, one route, a fixed wall clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from watcher.config import Config
from watcher.service.runtime import Runtime, open_runtime
from watcher.simulator import ManualClock, Simulator, load_scenario, serve


@contextlib.asynccontextmanager
async def quiet_runtime(tmp_path: Path, token: str, now: datetime) -> AsyncIterator[Runtime]:
    """The runtime of a config on the `quiet` scenario served on loopback, closed after."""
    sim = Simulator(load_scenario("quiet"), token=token, clock=ManualClock())
    async with serve(sim) as url:
        config = Config.from_mapping(
            {
                "api": {"base_url": url},
                "state": {"path": str(tmp_path / "w.db")},
                "routes": [{"name": "ops", "urls": ["json://127.0.0.1:9/x"]}],
            },
            token=token,
            token_source="test",
        )
        opened = await open_runtime(config, clock=lambda: now)
        try:
            yield opened
        finally:
            await opened.close()

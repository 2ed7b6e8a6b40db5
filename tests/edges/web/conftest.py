"""The page's app over a real SQLite store, served by the real server on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.edges.web.history import NOW
from tests.stores import open_held
from watcher.core.health import Health, Probe
from watcher.edges.metrics import Metrics
from watcher.edges.store.sqlite import SqliteStore
from watcher.edges.web.access import Access
from watcher.edges.web.app import create_app
from watcher.edges.web.gate import Limits
from watcher.edges.web.host import Budget, WatcherFacts
from watcher.edges.web.server import WebServer

TOKEN = "page-token-0123456789abcdef"


@dataclass
class Host:
    """A `WatcherHost` over a real store, whose health, clocks and facts the test sets."""

    real_store: SqliteStore
    now: datetime = NOW
    api_now: datetime = NOW
    health_of: dict[Probe, Health] = field(
        default_factory=lambda: {
            Probe.LIVE: Health(True, "last cycle finished 1s ago (limit 90s)"),
            Probe.READY: Health(False, "no successful cycle yet"),
        }
    )
    asked: list[Probe] = field(default_factory=list)
    meter: Metrics = field(default_factory=Metrics)
    setup: tuple[str, ...] = ()
    config: str = "Configuration watcher.toml is valid.\n  API: https://api.digitalocean.com"

    @property
    def store(self) -> SqliteStore:
        return self.real_store

    def clocks(self) -> tuple[datetime, datetime]:
        return self.now, self.api_now

    async def health(self, probe: Probe) -> Health:
        self.asked.append(probe)
        return self.health_of[probe]

    async def kb_accounts(self) -> dict[str, str]:
        return {}

    async def facts(self) -> WatcherFacts:
        return WatcherFacts(
            version="0.1.0",
            now=self.now,
            api_now=self.api_now,
            live=self.health_of[Probe.LIVE],
            ready=self.health_of[Probe.READY],
            poll_interval=timedelta(seconds=60),
            poll_reason="idle",
            budget=Budget(per_minute=60, limit=5000, remaining=4990, requests_sent=10),
            config=self.config,
            listen="127.0.0.1:9187",
            last_cycle_at=self.now - timedelta(seconds=5),
            last_cycle_ok=True,
            retention=timedelta(days=90),
            setup=self.setup,
        )

    def metrics(self) -> bytes:
        return self.meter.render()


Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_held(tmp_path / "watcher.db", NOW)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def host(store: SqliteStore) -> Host:
    return Host(store)


@pytest.fixture
async def serve(host: Host) -> AsyncIterator[Serve]:
    """Start the app with the given access rules (loopback, no token by default); its URL."""
    servers: list[WebServer] = []

    async def start(access: Access | None = None, limits: Limits | None = None) -> str:
        app = create_app(host, access or Access(loopback=True))
        server = WebServer(app, limits)
        await server.start("127.0.0.1:0")
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as opened:
        yield opened

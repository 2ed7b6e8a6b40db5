"""The daemon's side of the page: what `watcher.edges.web` asks of the running watcher.

`DaemonHost` answers the page from the daemon as it is at each request (a reload replaces the
runtime, and the page follows): its store, its clocks (the wall clock and DigitalOcean's,
as the API client reads it from the `Date` headers), the health rule's verdicts, the metrics,
and the facts of the watcher page. `web_server` assembles the server with the access rules
of the configuration (`[http] listen`, `auth_token_file`, `max_connections`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING, Protocol

from watcher.config import Config, describe
from watcher.config.page_token import resolve_page_token
from watcher.core import status_view
from watcher.core.apihealth import API_HEALTH_KEY, ApiHealth
from watcher.core.errors import ConfigError
from watcher.core.health import Health, Probe
from watcher.core.redact import SECRETS
from watcher.edges.store.sqlite import SqliteStore
from watcher.edges.web.access import Access
from watcher.edges.web.app import create_app
from watcher.edges.web.gate import Limits
from watcher.edges.web.host import Budget, WatcherFacts
from watcher.edges.web.server import WebServer, is_loopback, parse_listen
from watcher.service.accountcheck import (
    MISSING_KEY,
    UNMATCHED_KEY,
    decode_missing,
    decode_unmatched,
)
from watcher.service.accountscope import account_key
from watcher.service.accountstatus import kb_accounts

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.core.pace import Pace
    from watcher.edges.metrics import Metrics
    from watcher.service.runtime import Runtime
    from watcher.service.vitals import Vitals


class Daemon(Protocol):
    """What the page reads of the running daemon (`watcher.service.daemon.Daemon`), declared
    here so that the page does not import the daemon that serves it."""

    runtime: Runtime
    metrics: Metrics
    vitals: Vitals
    clock: Callable[[], datetime]

    @property
    def pace(self) -> Pace: ...

    @property
    def config(self) -> Config: ...

    async def health(self, probe: Probe) -> Health: ...


"""The meta key under which the cycle keeps the API's health (`watcher.core.apihealth`)."""


def version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("gradient-watcher")
    except metadata.PackageNotFoundError:
        return "unknown"


class DaemonHost:
    """The running daemon as the page sees it (`watcher.edges.web.host.WatcherHost`)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    @property
    def store(self) -> SqliteStore:
        return self.daemon.runtime.store

    def clocks(self) -> tuple[datetime, datetime]:
        return self.daemon.clock(), self.daemon.runtime.client.api_now()

    async def health(self, probe: Probe) -> Health:
        return await self.daemon.health(probe)

    def metrics(self) -> bytes:
        return self.daemon.metrics.render()

    async def kb_accounts(self) -> dict[str, str]:
        return await kb_accounts(self.daemon.runtime.store, self.daemon.config)

    async def facts(self) -> WatcherFacts:
        daemon = self.daemon
        runtime, config = daemon.runtime, daemon.config
        now, api_now = self.clocks()
        store = runtime.store
        api = await _api_health(store, config)
        setup = status_view.SetupFindings(
            missing=tuple(decode_missing(await store.get_meta(MISSING_KEY))),
            unmatched=tuple(decode_unmatched(await store.get_meta(UNMATCHED_KEY))),
        )
        beat = daemon.vitals.heartbeat
        rate = runtime.client.rate_limit
        keeper = runtime.keeper
        return WatcherFacts(
            version=version(),
            now=now,
            api_now=api_now,
            live=await daemon.health(Probe.LIVE),
            ready=await daemon.health(Probe.READY),
            poll_interval=daemon.pace.interval,
            poll_reason=daemon.pace.reason.value,
            budget=Budget(
                per_minute=config.api.max_requests_per_minute,
                limit=rate.limit if rate else None,
                remaining=rate.remaining if rate else None,
                requests_sent=runtime.client.requests_sent,
            ),
            config=describe(config),
            listen=config.http.listen or "",
            last_cycle_at=await store.last_cycle_at(),
            last_cycle_ok=None if beat is None else beat.ok,
            last_cycle_error=None if beat is None else beat.error,
            api_failing_since=api.failing_since,
            api_error=api.last_error,
            standby=None if keeper.held else keeper.problem,
            retention=config.state.retention,
            setup=tuple(line for line in status_view.setup_lines(setup, now) if line),
            kb_accounts=await self.kb_accounts(),
        )


async def _api_health(store: SqliteStore, config: Config) -> ApiHealth:
    """The API's health; with several `[[accounts]]`, the earliest failing account's, its
    error naming the account (the page's API line then says whose token or API fails)."""
    if not config.several_accounts:
        return ApiHealth.decode(await store.get_meta(API_HEALTH_KEY))
    failing = []
    for account in config.accounts:
        raw = await store.get_meta(account_key(account.name, API_HEALTH_KEY))
        health = ApiHealth.decode(raw)
        if health.failing_since is not None:
            error = f"account {account.name}: {health.last_error or 'failing'}"
            failing.append(replace(health, last_error=error))
    return min(failing, key=lambda h: str(h.failing_since), default=ApiHealth())


def web_server(daemon: Daemon, env: Mapping[str, str]) -> WebServer:
    """The page's server for the daemon's configuration; `ConfigError` when the token file
    cannot be used (the daemon exits 78)."""
    config = daemon.config
    source = config.source_of("http", "auth_token_file")
    token, problems = resolve_page_token(config.http, env, source)
    if problems:
        raise ConfigError(problems)
    if token is not None:
        SECRETS.register(token.get_secret_value())
    host, _ = parse_listen(config.http.listen or "127.0.0.1:0")
    access = Access(
        loopback=is_loopback(host), token=None if token is None else token.get_secret_value()
    )
    app = create_app(DaemonHost(daemon), access)
    return WebServer(app, Limits(max_connections=config.http.max_connections))

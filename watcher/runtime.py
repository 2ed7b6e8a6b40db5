"""Assembling the edges and the cycle from a configuration, and taking them apart again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from watcher.config import Config
from watcher.cycle import Cycle, CycleSettings
from watcher.decide import RetryPolicy, RouteRule
from watcher.edges.api import ApiClient, RequestRecord
from watcher.edges.store_sqlite import SqliteStore
from watcher.errors import ConfigError, ConfigProblem
from watcher.metrics import Metrics
from watcher.pace import PaceSettings
from watcher.ports import Notifier
from watcher.redact import register_secret
from watcher.state import Message, SendResult


def utcnow() -> datetime:
    """The wall clock, in UTC: the one place the shell reads it."""
    return datetime.now(UTC)


def cycle_settings(config: Config) -> CycleSettings:
    """The cycle's slice of the configuration."""
    return CycleSettings(
        watched=config.watched(),
        policy=config.stall_policy(),
        rules=tuple(RouteRule(r.name, r.event_kinds, config.kb_refs(r)) for r in config.routes),
        retry=RetryPolicy(
            base=config.delivery.retry_base,
            maximum=config.delivery.retry_max,
            dead_after=config.delivery.dead_after,
        ),
        storm_threshold=config.delivery.storm_threshold,
        api_unreachable_after=config.alerts.api_unreachable_after,
        per_page=config.api.per_page,
    )


def pace_settings(config: Config) -> PaceSettings:
    """The polling knobs."""
    return PaceSettings(
        interval=config.poll.interval,
        active_interval=config.poll.active_interval,
        max_requests_per_minute=config.api.max_requests_per_minute,
        reserve=config.api.reserve,
    )


def route_urls(config: Config) -> dict[str, list[str]]:
    """Route name to its apprise URLs, unwrapped: only the notifier may hold them."""
    return {r.name: [u.get_secret_value() for u in r.urls] for r in config.routes}


def register_config_secrets(config: Config) -> None:
    """Tell the log redaction about the token and every route URL (and their parts)."""
    if config.token is not None:
        register_secret(config.token.get_secret_value())
    for urls in route_urls(config).values():
        for url in urls:
            register_secret(url)


def build_notifier(config: Config) -> Notifier:
    """The apprise notifier for the configured routes (apprise is imported only here)."""
    from watcher.edges.notify_apprise import AppriseNotifier

    return AppriseNotifier(route_urls(config), timeout=config.delivery.timeout.total_seconds())


class LazyNotifier:
    """Builds the apprise notifier on the first send: a cycle with nothing to send (most of
    them, and most `watcher once` runs) never pays for loading apprise's plugins."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._notifier: Notifier | None = None

    async def send(
        self, route: str, message: Message, skip: frozenset[int] = frozenset()
    ) -> SendResult:
        if self._notifier is None:
            self._notifier = build_notifier(self._config)
        return await self._notifier.send(route, message, skip)


@dataclass
class Runtime:
    """The assembled watcher: API client, store, notifier and the cycle over them."""

    config: Config
    client: ApiClient
    store: SqliteStore
    cycle: Cycle
    metrics: Metrics

    async def close(self) -> None:
        await self.client.aclose()
        await self.store.close()


async def open_runtime(
    config: Config,
    *,
    metrics: Metrics | None = None,
    notifier: Notifier | None = None,
    clock: Callable[[], datetime] = utcnow,
    api_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Runtime:
    """Open the store and the API client and wire the cycle; raises ConfigError without a token.

    `api_sleep` is how the API client waits between retries (tests make those waits instant).
    """
    if config.token is None:
        raise ConfigError(
            [
                ConfigProblem(
                    "api.token",
                    "no API token: set DIGITALOCEAN_ACCESS_TOKEN or DIGITALOCEAN_TOKEN, "
                    "or api.token_file",
                    config.source,
                )
            ]
        )
    metrics = metrics or Metrics()
    client = ApiClient(
        config.api.base_url,
        config.token.get_secret_value(),
        token_source=config.token_source or "configuration",
        timeout=config.api.timeout.total_seconds(),
        max_requests_per_minute=config.api.max_requests_per_minute,
        per_page=config.api.per_page,
        on_response=_api_observer(metrics),
        sleep=api_sleep,
    )
    try:
        store = await SqliteStore.open(config.state.path, now=clock())
    except BaseException:
        await client.aclose()
        raise
    cycle = Cycle(
        source=client,
        store=store,
        outbox=store,
        meta=store,
        notifier=notifier or LazyNotifier(config),
        settings=cycle_settings(config),
        clock=clock,
    )
    return Runtime(config=config, client=client, store=store, cycle=cycle, metrics=metrics)


def _api_observer(metrics: Metrics) -> Callable[[RequestRecord], None]:
    def observe(record: RequestRecord) -> None:
        metrics.observe_api(record.endpoint, record.status or "error", record.duration_s)

    return observe

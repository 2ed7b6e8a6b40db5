"""Assembling the edges and the cycle from a configuration, and taking them apart again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from watcher.config import Config
from watcher.config.accounts import Account
from watcher.config.trust import verify_context
from watcher.core.account import RouteRefs
from watcher.core.clocks import Elapsed
from watcher.core.costing import lowest_factor
from watcher.core.decide import RetryPolicy, RouteRule
from watcher.core.errors import ConfigError, ConfigProblem
from watcher.core.extras import share_per_hour
from watcher.core.guard import GuardedFacts, GuardedNotifier, GuardedStore
from watcher.core.outbox import Budget, Message, SendResult
from watcher.core.pace import PaceSettings
from watcher.core.ports import Notifier
from watcher.core.present import Presentation, RouteFormat
from watcher.core.redact import SECRETS
from watcher.core.remedy import OnStalled
from watcher.core.schedules import Freshness, ScheduleRules
from watcher.core.tolerance import Tolerances
from watcher.edges import host
from watcher.edges.api.client import ApiClient, ApiSettings, RequestRecord, RequestRetry
from watcher.edges.hostclock import elapsed_now
from watcher.edges.reports import ReportShelf, reports_dir
from watcher.edges.store.files import file_id
from watcher.edges.store.lease import token_lease
from watcher.edges.store.sqlite import SqliteStore
from watcher.service.accountscope import AccountScope
from watcher.service.budget import spent_key
from watcher.service.config_secrets import (
    register_config_secrets,
    route_urls,
)
from watcher.service.costs import PriceBook
from watcher.service.cycle import Cycle, CycleSettings
from watcher.service.extrarun import ExtrasSettings
from watcher.service.kbwatch import KbWatchSettings
from watcher.service.lease_keeper import LeaseKeeper
from watcher.service.stores import open_store

if TYPE_CHECKING:
    from watcher.service.remedies import Remedies


class ApiMetrics(Protocol):
    """What a runtime counts of its API requests: the daemon's Prometheus `Metrics`, or
    `NO_METRICS` for a one-shot run, which exports nothing."""

    def observe_api(self, endpoint: str, status: int | str, duration: float) -> None: ...

    def observe_account_api(self, account: str, status: int | str) -> None: ...

    def declare_routes(self, routes: Iterable[str]) -> None: ...


class NoMetrics:
    """Counts nothing: `watcher once` serves no `/metrics`, so it builds no Prometheus
    registry (nor imports prometheus_client)."""

    def observe_api(self, endpoint: str, status: int | str, duration: float) -> None:
        """Nothing to count."""

    def observe_account_api(self, account: str, status: int | str) -> None:
        """Nothing to count."""

    def declare_routes(self, routes: Iterable[str]) -> None:
        """Nothing to export."""


NO_METRICS = NoMetrics()


def utcnow() -> datetime:
    """The wall clock, in UTC: the one place the shell reads it."""
    return datetime.now(UTC)


def cycle_settings(config: Config) -> CycleSettings:
    """The cycle's slice of the configuration."""
    spikes = {r.name: r.cost_spike_factor for r in config.routes if r.cost_spike_factor}
    spike_at = lowest_factor(config.cost.spike_factor, spikes)
    return CycleSettings(
        watched=config.watched(),
        route_refs=tuple(
            RouteRefs(r.name, index, r.knowledge_bases)
            for index, r in enumerate(config.routes)
            if _refs_checked(config, r.accounts)
        ),
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
        deadline=config.poll.cycle_deadline,
        send_interval=config.delivery.send_interval,
        route_send_intervals={
            r.name: r.send_interval for r in config.routes if r.send_interval is not None
        },
        delivery_failing_after=config.alerts.delivery_failing_after,
        tolerances=tolerances(config),
        presentations=presentations(config),
        extras=extras_settings(config),
        incident_rules=tuple(r.incident_rule() for r in config.routes),
        spike_rule=replace(config.cost.spike_rule(), factor=spike_at),
        route_spike_factors=spikes,
        mutes=config.mutes(),
        digests=config.digests(),
        kb_watch=kb_watch_settings(config),
    )


def _refs_checked(config: Config, heard: tuple[str, ...]) -> bool:
    """Whether this account's cycle checks a route's KB entries against its listing: always
    with one account; with several, only for a route that hears this account alone (another
    account's KB would look like an entry that matches nothing)."""
    return not config.several_accounts or heard == (config.account,)


def kb_watch_settings(config: Config) -> KbWatchSettings:
    """Schedules, freshness and where reports are kept (beside the store)."""
    freshness = Freshness(
        default=config.freshness.fresh_within,
        by_kb={
            kb.uuid: kb.fresh_within for kb in config.knowledge_bases if kb.fresh_within is not None
        },
    )
    return KbWatchSettings(
        rules=ScheduleRules(grace=config.schedules.grace, freshness=freshness),
        read_every=config.schedules.read_every,
        reports=ReportShelf(reports_dir(config.state.path)),
    )


def extras_settings(config: Config) -> ExtrasSettings:
    """The extra reads' share of the hourly ceiling (0 when `extra_reads_share` is 0: no data
    sources, database health, agents nor schedules; the prices and reports still go, within
    the reserve and the poll's room)."""
    per_hour = share_per_hour(config.api.max_requests_per_minute, config.api.extra_reads_share)
    return ExtrasSettings(
        per_hour,
        config.api.reserve,
        ceiling=config.api.max_requests_per_minute,
        fastest=config.poll.active_interval.total_seconds(),
    )


def remedies(config: Config, client: ApiClient, store: GuardedStore) -> Remedies | None:
    """Remediation of stalled jobs, when `[remediation] on_stalled` asks for it."""
    policy = config.remediation.policy()
    if policy.on_stalled is OnStalled.NOTHING:
        return None
    from watcher.service.remedies import Remedies  # only when configured

    rules = cycle_settings(config).rules
    return Remedies(client, store, store, policy, rules)


def tolerances(config: Config) -> Tolerances:
    """The error budgets: each `[[knowledge_bases]]` entry's own, else `[alerts]`'s."""
    return Tolerances(
        default=config.alerts.tolerate_failed_items,
        by_kb={
            kb.uuid: kb.tolerate_failed_items
            for kb in config.knowledge_bases
            if kb.tolerate_failed_items is not None
        },
    )


def pace_settings(config: Config) -> PaceSettings:
    """The polling knobs."""
    return PaceSettings(
        interval=config.poll.interval,
        active_interval=config.poll.active_interval,
        max_requests_per_minute=config.api.max_requests_per_minute,
        reserve=config.api.reserve,
    )


def presentations(config: Config) -> dict[str, Presentation]:
    """How each route shows its events: events, templated alerts, or (left out) built-in."""
    shown = {}
    for r in config.routes:
        title, body = r.templates
        if r.format is RouteFormat.EVENT or title is not None or body is not None:
            shown[r.name] = Presentation(r.format, title, body)
    return shown


def build_notifier(config: Config) -> Notifier:
    """The notifier for the configured routes, behind the alert boundary (messages go out
    redacted and inert, results come back redacted): apprise for alert routes (imported only
    here), signed webhooks for `format = "event"` routes."""
    from watcher.edges.notify.apprise import AppriseNotifier
    from watcher.edges.notify.webhook import SignedWebhookNotifier

    SECRETS.resolve_pending()  # apprise is loaded now: classify the route URLs
    urls = route_urls(config)
    events = {r.name for r in config.routes if r.format is RouteFormat.EVENT}
    timeout = config.delivery.timeout.total_seconds()
    notifier: Notifier = AppriseNotifier(
        {name: u for name, u in urls.items() if name not in events},
        timeout=timeout,
        ca_bundle=config.ca_bundle,
    )
    if events:
        webhooks = SignedWebhookNotifier(
            {name: urls[name] for name in events},
            {r.name: r.signing_keys for r in config.routes if r.name in events},
            timeout=timeout,
            ca_bundle=config.ca_bundle,
        )
        notifier = RouteSwitch(notifier, dict.fromkeys(events, webhooks))
    return GuardedNotifier(notifier)


class RouteSwitch:
    """A notifier that hands each route to its own notifier (`default` for the others)."""

    def __init__(self, default: Notifier, by_route: Mapping[str, Notifier]) -> None:
        self._default, self._by_route = default, dict(by_route)

    def _for(self, route: str) -> Notifier:
        return self._by_route.get(route, self._default)

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return self._for(route).budgets(route)

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        return await self._for(route).send(route, message, skip, fitted)


class LazyNotifier:
    """Builds the apprise notifier on the first send: a cycle with nothing to send (most of
    them, and most `watcher once` runs) never pays for loading apprise's plugins."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._notifier: Notifier | None = None

    def _built(self) -> Notifier:
        if self._notifier is None:
            self._notifier = build_notifier(self._config)
        return self._notifier

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return self._built().budgets(route)

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        return await self._built().send(route, message, skip, fitted)


@dataclass
class AccountRuntime:
    """One more `[[accounts]]` entry of a runtime: its own API client, cycle and lease keeper
    (on an SQLite store the process's one lease covers every account: the store and keeper
    are the first account's)."""

    name: str
    config: Config  # `Config.for_account`: its token, KBs and rate budget
    client: ApiClient
    store: SqliteStore
    keeper: LeaseKeeper
    cycle: Cycle


@dataclass
class Runtime:
    """The assembled watcher: API client, store (with its lease), notifier, the cycle over them.

    `client`, `store`, `keeper` and `cycle` are the first account's (the only one without
    `[[accounts]]`); `others` are the further accounts, each polled by its own cycle."""

    config: Config
    client: ApiClient
    store: SqliteStore
    cycle: Cycle
    metrics: ApiMetrics  # the daemon's `Metrics`; `NO_METRICS` for `watcher once`
    keeper: LeaseKeeper
    others: tuple[AccountRuntime, ...] = ()

    @property
    def account(self) -> str:
        """The first account's name (`default` without `[[accounts]]`)."""
        return self.config.account_list()[0].name

    def accounts(self) -> tuple[AccountRuntime, ...]:
        """Every account, the first one included, in the config's order."""
        first = AccountRuntime(
            self.account,
            self.config.for_account(self.config.account_list()[0]),
            self.client,
            self.store,
            self.keeper,
            self.cycle,
        )
        return (first, *self.others)

    def keepers(self) -> tuple[LeaseKeeper, ...]:
        """Each distinct lease keeper (one per account on PostgreSQL, one on SQLite)."""
        found: list[LeaseKeeper] = []
        for account in self.accounts():
            if not any(k is account.keeper for k in found):
                found.append(account.keeper)
        return tuple(found)

    async def close(self, *, keep_store: bool = False, successor: Runtime | None = None) -> None:
        """Close the API clients and, unless `keep_store` (a reload), let the leases go and
        close the stores; a store the `successor` (a reload's new runtime) took over stays."""
        for account in self.accounts():
            # a round still sending must not outlive the store
            await account.cycle.dispatcher.cancel()
            await account.client.aclose()
        if keep_store:
            kept = {id(a.store) for a in successor.accounts()} if successor else set()
            await self._close_others(kept)
            return
        try:
            for keeper in self.keepers():
                await keeper.stop()
        finally:
            for store in {id(a.store): a.store for a in self.accounts()}.values():
                await store.close()

    async def _close_others(self, kept: set[int]) -> None:
        """On a reload that keeps the first account's store: the other accounts' own stores
        (PostgreSQL) that the new runtime did not take over (`kept`: their ids) are let go."""
        for account in self.others:
            if account.store is not self.store and id(account.store) not in kept:
                try:
                    await account.keeper.stop()
                finally:
                    await account.store.close()


async def open_runtime(
    config: Config,
    *,
    metrics: ApiMetrics | None = None,
    notifier: Notifier | None = None,
    clock: Callable[[], datetime] = utcnow,
    elapsed: Callable[[], Elapsed] = elapsed_now,
    api_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    command: str = "watcher once",
    hold: bool = True,
    keep: Runtime | None = None,
    api_monotonic: Callable[[], float] = time.monotonic,
) -> Runtime:
    """Open the store and the API client and wire the cycle; raises ConfigError without a token.

    `clock` is the wall clock and `elapsed` the never-stepping one (tests give their own).
    With `hold`, the store's lease is taken at once and renewed in the background (or
    `StoreHeld` names the process holding it); the daemon passes `hold=False` and stands by
    on its own. `keep` is the runtime a reload replaces: its store and lease are kept when
    the state path still names the same file. `api_sleep` is how the API client waits between
    retries and for its own rate budget, `api_monotonic` the clock it measures those on (tests
    make the waits instant and move that clock by them). Without `metrics`, a new Prometheus
    `Metrics` counts the API requests (`watcher once` passes `NO_METRICS`).
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
    register_config_secrets(config)  # idempotent: the CLI has usually done it already
    if metrics is None:
        from watcher.edges.metrics import Metrics  # prometheus_client: only when counted

        metrics = Metrics()
    metrics.declare_routes(r.name for r in config.routes)  # a reload's new routes too
    first, *rest = config.account_list()
    first_config = config.for_account(first)
    observer = _api_observer(metrics, first.name)
    client = api_client(
        first_config, on_response=observer, sleep=api_sleep, monotonic=api_monotonic
    )
    try:
        store, keeper = await _store(first_config, clock(), command, hold, keep)
    except BaseException:
        await client.aclose()
        raise
    shared = GuardedNotifier(notifier) if notifier is not None else LazyNotifier(config)
    wiring = _Wiring(config, shared, clock, elapsed)
    cycle = wiring.cycle(first_config, client, store, first=True)
    runtime = Runtime(
        config=config, client=client, store=store, cycle=cycle, metrics=metrics, keeper=keeper
    )
    try:
        runtime.others = tuple(
            [
                await _open_account(
                    wiring,
                    account,
                    runtime,
                    command,
                    hold,
                    metrics,
                    (api_sleep, api_monotonic),
                    keep,
                )
                for account in rest
            ]
        )
    except BaseException:
        await runtime.close(keep_store=keep is not None and keep.store is store)
        raise
    return runtime


@dataclass(frozen=True)
class _Wiring:
    """What every account's cycle shares: the whole config, the notifier, the clocks."""

    config: Config
    notifier: Notifier
    clock: Callable[[], datetime]
    elapsed: Callable[[], Elapsed]

    def cycle(self, config: Config, client: ApiClient, store: SqliteStore, *, first: bool) -> Cycle:
        """The cycle of one account (`config` is `Config.for_account`'s): with several
        accounts it sees the store through `AccountScope`; the first one also records the
        routes' digests."""
        guarded = GuardedStore(store)  # the store boundary: nothing secret is written
        scoped: Any = guarded
        if self.config.several_accounts:
            scoped = AccountScope(guarded, config.account, self.config.deaf_routes(config.account))
        settings = cycle_settings(config)
        if settings.extras is not None:  # the spent hour is the token's (its rate limit)
            token = config.token.get_secret_value() if config.token is not None else None
            spent = spent_key(token_lease(token))
            settings = replace(settings, extras=replace(settings.extras, spent_key=spent))
        return Cycle(
            source=client,
            store=scoped,
            outbox=guarded,
            meta=scoped,
            notifier=self.notifier,
            settings=settings,
            clock=self.clock,
            elapsed=self.elapsed,
            extra_source=client,
            facts=GuardedFacts(store),
            silences=store,
            extra=client,
            prices=PriceBook(client, config.cost.prices_every, self.elapsed, scoped),
            remedies=remedies(config, client, scoped),
            digest_reads=store if first else None,
            # quiet cycles need to know who wrote the store: several accounts share one
            # connection, and one account's writes are news to the other's cycle
            quiet_signs=None if self.config.several_accounts else store,
        )


async def _open_account(
    wiring: _Wiring,
    account: Account,
    runtime: Runtime,
    command: str,
    hold: bool,
    metrics: ApiMetrics,
    api_timing: tuple[Callable[[float], Awaitable[None]], Callable[[], float]],
    keep: Runtime | None = None,
) -> AccountRuntime:
    """One further account: its client and cycle; on a shared store (PostgreSQL) also its
    own store connection and lease (the lease is the account's token's). A reload (`keep`)
    keeps the account's store and lease when the database and the token are the same."""
    config = wiring.config.for_account(account)
    if config.token is None:
        raise ConfigError(
            [ConfigProblem(f"accounts.{account.name}", "no API token loaded", config.source)]
        )
    observer = _api_observer(metrics, account.name)
    api_sleep, api_monotonic = api_timing
    client = api_client(config, on_response=observer, sleep=api_sleep, monotonic=api_monotonic)
    store, keeper = runtime.store, runtime.keeper
    kept = _kept_account(keep, config)
    if kept is not None:
        store, keeper = kept.store, kept.keeper
    elif config.state.shared:
        try:
            store, keeper = await _store(config, wiring.clock(), command, hold, None)
        except BaseException:
            await client.aclose()
            raise
    cycle = wiring.cycle(config, client, store, first=False)
    return AccountRuntime(account.name, config, client, store, keeper, cycle)


def _kept_account(keep: Runtime | None, config: Config) -> AccountRuntime | None:
    """The account of the runtime a reload replaces whose store serves `config`'s account
    (the same database and token); None on SQLite (the first account's store is shared)."""
    if keep is None or not config.state.shared:
        return None
    for account in keep.others:
        same = account.config.state.url == config.state.url
        if same and account.config.token == config.token and account.store is not keep.store:
            return account
    return None


def _same_store(keep: Runtime, config: Config) -> bool:
    """Whether a reload keeps the store: the same file, or the same database and token."""
    before, after = keep.config.state, config.state
    if before.shared or after.shared:
        return before.url == after.url and keep.config.token == config.token
    return same_store(before.path, after.path)


def same_store(a: Path, b: Path) -> bool:
    """Whether two state paths name one store (the same path, or links to the same file)."""
    if a.absolute() == b.absolute():
        return True
    first, second = file_id(a), file_id(b)
    return first is not None and first == second


async def _store(
    config: Config, now: datetime, command: str, hold: bool, keep: Runtime | None
) -> tuple[SqliteStore, LeaseKeeper]:
    """The store and its lease keeper: the kept ones, or freshly opened (and held if asked)."""
    if keep is not None and _same_store(keep, config):
        return keep.store, keep.keeper
    store = await open_store(config, now)
    keeper = LeaseKeeper(store, host.this_process(command, now), config.state.lease.total_seconds())
    if not hold:
        return store, keeper
    try:
        await keeper.acquire()
    except BaseException:
        await store.close()
        raise
    keeper.start()
    return store, keeper


def api_settings(config: Config, *, max_attempts: int = 5) -> ApiSettings:
    """The API client's slice of the configuration (`[api]`, and `[http] ca_bundle`)."""
    api = config.api
    return ApiSettings(
        base_url=api.base_url,
        timeout=api.timeout.total_seconds(),
        max_requests_per_minute=api.max_requests_per_minute,
        per_page=api.per_page,
        max_response_bytes=int(api.max_response_size),
        max_list_items=api.max_list_items,
        retry=RequestRetry(max_attempts=max_attempts),
        verify=verify_context(config.ca_bundle),
    )


def api_client(
    config: Config,
    *,
    on_response: Callable[[RequestRecord], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_attempts: int = 5,
    monotonic: Callable[[], float] = time.monotonic,
) -> ApiClient:
    """The API client the configuration describes (the token must be set)."""
    if config.token is None:
        raise ValueError("api_client needs a configuration with a token")
    return ApiClient(
        api_settings(config, max_attempts=max_attempts),
        config.token.get_secret_value(),
        token_source=config.token_source or "configuration",
        on_response=on_response,
        sleep=sleep,
        monotonic=monotonic,
    )


def _api_observer(metrics: ApiMetrics, account: str) -> Callable[[RequestRecord], None]:
    def observe(record: RequestRecord) -> None:
        metrics.observe_api(record.endpoint, record.status or "error", record.duration_s)
        metrics.observe_account_api(account, record.status or "error")

    return observe

"""`Config`: the whole configuration as one frozen tree of the sections in `sections`, made of
the parts `watcher.config.build.collect` validated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from watcher.config.accounts import DEFAULT_ACCOUNT, Account, AccountConfig
from watcher.config.build import TABLE_ARRAYS, Parts, collect, to_problems
from watcher.config.checks import Loc
from watcher.config.heartbeat import HeartbeatConfig
from watcher.config.intervals import TimeIntervalsConfig
from watcher.config.remediation import CostConfig, RemediationConfig
from watcher.config.routes import RouteConfig
from watcher.config.sections import (
    AlertsConfig,
    ApiConfig,
    DeliveryConfig,
    FreshnessConfig,
    HttpConfig,
    KnowledgeBaseConfig,
    LogConfig,
    PollConfig,
    SchedulesConfig,
    StallConfig,
    StateConfig,
    is_uuid,
)
from watcher.config.trust import resolve_ca_bundle
from watcher.core.digest import DigestSchedule
from watcher.core.errors import ConfigError
from watcher.core.model import WatchedKb
from watcher.core.state import Policy
from watcher.core.windows import TimeWindow


class Config(BaseModel):
    """The whole configuration, one frozen tree; build it with `load_config` or `from_mapping`."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    api: ApiConfig = ApiConfig()
    poll: PollConfig = PollConfig()
    knowledge_bases: tuple[KnowledgeBaseConfig, ...] = ()
    stall: StallConfig = StallConfig()
    state: StateConfig = StateConfig()
    routes: tuple[RouteConfig, ...] = ()
    delivery: DeliveryConfig = DeliveryConfig()
    alerts: AlertsConfig = AlertsConfig()
    log: LogConfig = LogConfig()
    http: HttpConfig = HttpConfig()
    heartbeat: HeartbeatConfig = HeartbeatConfig()
    schedules: SchedulesConfig = SchedulesConfig()
    freshness: FreshnessConfig = FreshnessConfig()
    cost: CostConfig = CostConfig()
    remediation: RemediationConfig = RemediationConfig()
    time_intervals: tuple[TimeIntervalsConfig, ...] = ()
    accounts: tuple[AccountConfig, ...] = ()
    account: str = DEFAULT_ACCOUNT  # the account this (whole, or per-account) config polls
    # each [[accounts]] entry's (name, token or None, where the token came from)
    account_tokens: tuple[tuple[str, SecretStr | None, str | None], ...] = ()
    token: SecretStr | None = None
    token_source: str | None = None
    ca_bundle: Path | None = None  # resolved from http.ca_bundle or the environment
    ca_bundle_source: str | None = None
    token_problem: str | None = None  # why no token was loaded, when one was not required
    source: str = "<code>"
    overrides: tuple[str, ...] = ()
    origins: tuple[tuple[Loc, str], ...] = ()  # (key path, WATCHER_ variable that set it)

    def source_of(self, *loc: str | int) -> str:
        """Where the key at `loc` came from: the `WATCHER_` variable that set it (or a table
        above it), else the config file. Problems found after loading name this source."""
        origins = dict(self.origins)
        for depth in range(len(loc), 0, -1):
            if loc[:depth] in origins:
                return origins[loc[:depth]]
        return self.source

    @property
    def several_accounts(self) -> bool:
        """Whether the config has `[[accounts]]` (alerts then name their account)."""
        return bool(self.accounts)

    def account_list(self) -> tuple[Account, ...]:
        """Every account to poll: each `[[accounts]]` entry, else one named `default` made
        of the top-level token, `[[knowledge_bases]]` and `[api]` budget."""
        api = self.api
        if not self.accounts:
            return (
                Account(
                    DEFAULT_ACCOUNT,
                    self.token,
                    self.token_source,
                    self.knowledge_bases,
                    api.max_requests_per_minute,
                    api.reserve,
                ),
            )
        tokens = {name: (token, source) for name, token, source in self.account_tokens}
        return tuple(
            Account(
                a.name,
                *tokens.get(a.name, (None, None)),
                a.knowledge_bases,
                a.max_requests_per_minute or api.max_requests_per_minute,
                api.reserve if a.reserve is None else a.reserve,
            )
            for a in self.accounts
        )

    def for_account(self, account: Account) -> Config:
        """This config as one account's cycle sees it: its token, KBs and rate budget (every
        route is kept: delivery is shared; `routes_for` says which hear the account)."""
        if not self.accounts:
            return self
        api = self.api.model_copy(
            update={
                "max_requests_per_minute": account.max_requests_per_minute,
                "reserve": account.reserve,
            }
        )
        return self.model_copy(
            update={
                "api": api,
                "knowledge_bases": account.knowledge_bases,
                "token": account.token,
                "token_source": account.token_source,
                "account": account.name,
            }
        )

    def deaf_routes(self, account: str) -> frozenset[str]:
        """The routes whose `accounts = [...]` leaves `account` out."""
        return frozenset(r.name for r in self.routes if r.accounts and account not in r.accounts)

    def stall_policy(self) -> Policy:
        """The `[stall]` thresholds as the core's Policy."""
        return Policy(
            pending_after=self.stall.pending_after,
            no_progress_after=self.stall.no_progress_after,
            max_runtime=self.stall.max_runtime,
        )

    def watched(self) -> tuple[WatchedKb, ...]:
        """The configured knowledge bases; empty means every KB of the account."""
        return tuple(kb.as_watched() for kb in self.knowledge_bases)

    def kb_refs(self, route: RouteConfig) -> frozenset[str]:
        """The route's KB references plus the uuid of each configured name it uses.

        The API may report a KB under another name than `[[knowledge_bases]]` gives it, so a
        matcher holding these refs can match on the uuid alone. Uuids are lower case.
        """
        refs = {ref.lower() if is_uuid(ref) else ref for ref in route.knowledge_bases}
        return frozenset(refs | {kb.uuid for kb in self.knowledge_bases if kb.name in refs})

    def mutes(self) -> dict[str, tuple[TimeWindow, ...]]:
        """Each route's `mute_during` windows (routes without any left out)."""
        windows = {w.name: w.as_window() for w in self.time_intervals}
        return {
            r.name: tuple(windows[n] for n in r.mute_during if n in windows)
            for r in self.routes
            if r.mute_during
        }

    def digests(self) -> dict[str, DigestSchedule]:
        """Each route's digest schedule (routes without one left out)."""
        return {r.name: s for r in self.routes if (s := r.digest_schedule) is not None}

    def route(self, name: str) -> RouteConfig | None:
        """The route called `name`, if any."""
        return next((route for route in self.routes if route.name == name), None)

    @classmethod
    def assemble(cls, parts: Parts, **extra: Any) -> Config:
        """The Config made of the parts `collect` validated (call it only when there were no
        issues); `extra` sets the fields that come from elsewhere (token, sources, CA bundle)."""
        arrays = {
            name: tuple(item for _, item in parts.arrays.get(name, [])) for name in TABLE_ARRAYS
        }
        return cls.model_validate({**parts.sections, **arrays, **extra})

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        token: str | None = None,
        token_source: str | None = None,
        source: str = "<code>",
        check_urls: bool = True,
    ) -> Config:
        """Validate a dict shaped like the TOML file, without file or env; raise ConfigError
        listing every problem (`source` names the dict in them)."""
        parts, issues = collect(data, check_urls=check_urls)
        problems = to_problems(issues, source)
        http = parts.get("http", HttpConfig)
        ca_bundle, ca_source, ca_problems = resolve_ca_bundle(http, {}, source)
        if problems or ca_problems:
            raise ConfigError(problems + ca_problems)
        return cls.assemble(
            parts,
            token=SecretStr(token) if token is not None else None,
            token_source=token_source,
            ca_bundle=ca_bundle,
            ca_bundle_source=ca_source,
            source=source,
        )

    @classmethod
    def for_demo(
        cls,
        base_url: str,
        state_path: Path,
        token: str,
        routes: Mapping[str, Sequence[str]],
        overrides: Mapping[str, Any] | None = None,
    ) -> Config:
        """A config for `watcher demo`: every route hears every event; `overrides` adds sections."""
        data: dict[str, Any] = {
            "api": {"base_url": base_url},
            "state": {"path": str(state_path)},
            "routes": [
                {"name": name, "urls": list(urls), "events": ["*"]} for name, urls in routes.items()
            ],
        }
        for section, values in (overrides or {}).items():
            merged = {**data.get(section, {}), **values} if isinstance(values, Mapping) else values
            data[section] = merged
        return cls.from_mapping(data, token=token, token_source="demo", source="<demo>")

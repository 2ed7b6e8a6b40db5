"""Prometheus metrics of one watcher, in a registry of its own, rendered for `/metrics`.

Each `Metrics` owns a `CollectorRegistry` rather than using the global one, so tests and several
daemons in one process never clash. Every label with a closed set of values takes the enum the
rest of the watcher uses for it (`CycleOutcome`, `JobCondition` as in the store's snapshot and
`watcher status`, `DeliveryState`, `DeliveryOutcome` (`SettleReason.outcome`), `EventKind`), and
each value is exported from the start; the open ones are endpoint templates and route names.
A URL is refused as a route label, so an apprise URL with credentials is never exported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryOutcome, DeliveryState
from watcher.core.pings import PingKind, PingOutcome
from watcher.core.state import JobCondition

PREFIX = "gradient_watcher_"


class CycleOutcome(StrEnum):
    """`gradient_watcher_cycles{outcome}`: whether a poll cycle could read the API."""

    OK = "ok"
    ERROR = "error"


CYCLE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
API_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class Metrics:
    """The watcher's counters, gauges and histograms, with the setters the daemon calls."""

    def __init__(self) -> None:
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        # the per-state counts last exported by `set_store_gauges` (None: not yet)
        self._store_counts: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        self._define_cycle_and_api()
        self._define_jobs_and_delivery()
        self._define_accounts()
        self._preinitialise()

    def _define_accounts(self) -> None:
        """Create the per-account metrics (`account` label: the `[[accounts]]` name, or
        `default` without `[[accounts]]`); the deployment-wide ones above add every account up."""
        r = self.registry
        self.account_cycles = Counter(
            f"{PREFIX}account_cycles",
            "Poll cycles run, by account and outcome.",
            ["account", "outcome"],
            registry=r,
        )
        self.account_api_up = Gauge(
            f"{PREFIX}account_api_up",
            "1 when the account's last cycle could read the API with its token, else 0.",
            ["account"],
            registry=r,
        )
        self.account_api_requests = Counter(
            f"{PREFIX}account_api_requests",
            "Requests to the DigitalOcean API, by account and HTTP status.",
            ["account", "status"],
            registry=r,
        )
        self.account_lease_held = Gauge(
            f"{PREFIX}account_lease_held",
            "1 when this process holds the account's poller lease (so it polls it), else 0.",
            ["account"],
            registry=r,
        )
        self.account_events = Counter(
            f"{PREFIX}account_events",
            "Events detected, by account and kind.",
            ["account", "kind"],
            registry=r,
        )

    def observe_account(
        self, account: str, ok: bool, held: bool, kinds: Iterable[EventKind] = ()
    ) -> None:
        """Count one cycle of `account`, whether its API answered, its lease, its events."""
        outcome = (CycleOutcome.OK if ok else CycleOutcome.ERROR).value
        self.account_cycles.labels(account=account, outcome=outcome).inc()
        self.account_api_up.labels(account=account).set(1 if ok else 0)
        self.account_lease_held.labels(account=account).set(1 if held else 0)
        for kind in kinds:
            self.account_events.labels(account=account, kind=EventKind(kind).value).inc()

    def observe_account_api(self, account: str, status: int | str) -> None:
        """Count one API request of `account`."""
        self.account_api_requests.labels(account=account, status=str(status)).inc()

    def _define_cycle_and_api(self) -> None:
        """Create the poll-cycle and API-client metrics."""
        r = self.registry
        self.cycles = Counter(
            f"{PREFIX}cycles", "Poll cycles run, by outcome.", ["outcome"], registry=r
        )
        self.cycle_duration = Histogram(
            f"{PREFIX}cycle_duration_seconds",
            "Wall time of one poll cycle.",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            f"{PREFIX}last_successful_cycle_timestamp_seconds",
            "Unix time the last successful cycle ended.",
            registry=r,
        )
        self.api_requests = Counter(
            f"{PREFIX}api_requests",
            "Requests to the DigitalOcean API, by endpoint template and HTTP status.",
            ["endpoint", "status"],
            registry=r,
        )
        self.api_duration = Histogram(
            f"{PREFIX}api_request_duration_seconds",
            "Duration of one API request, by endpoint template.",
            ["endpoint"],
            buckets=API_BUCKETS,
            registry=r,
        )
        self.ratelimit_remaining = Gauge(
            f"{PREFIX}api_ratelimit_remaining",
            "Requests left in the API's rate-limit window, as last reported.",
            registry=r,
        )
        self.budget_per_minute = Gauge(
            f"{PREFIX}api_budget_per_minute",
            "Requests per minute the watcher allows itself.",
            registry=r,
        )
        self.extra_requests = Counter(
            f"{PREFIX}extra_requests",
            "Requests of the reads beyond the polling (data sources, database, agents, "
            "schedules, reports, prices), by kind; retries and pages included.",
            ["kind"],
            registry=r,
        )
        self.poll_interval = Gauge(
            f"{PREFIX}poll_interval_seconds", "Current poll interval.", registry=r
        )
        self.api_up = Gauge(
            f"{PREFIX}api_up", "1 when the last attempt to read the API worked, else 0.", registry=r
        )

    def _define_jobs_and_delivery(self) -> None:
        """Create the job, event, delivery and outbox metrics."""
        r = self.registry
        self.jobs = Gauge(f"{PREFIX}jobs", "Known indexing jobs, by state.", ["state"], registry=r)
        self.events = Counter(f"{PREFIX}events", "Events detected, by kind.", ["kind"], registry=r)
        self.deliveries = Counter(
            f"{PREFIX}deliveries",
            "Alert delivery attempts, by route and outcome.",
            ["route", "outcome"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            f"{PREFIX}outbox_depth", "Outbox rows, by delivery state.", ["state"], registry=r
        )
        self.oldest_undelivered = Gauge(
            f"{PREFIX}oldest_undelivered_age_seconds",
            "Age of the oldest alert not yet delivered (0 when none).",
            registry=r,
        )
        self.dead_letters = Gauge(
            f"{PREFIX}dead_letters", "Alerts given up on after the retry window.", registry=r
        )
        self.lease_held = Gauge(
            f"{PREFIX}lease_held",
            "1 while this process polls (holds its poller lease), else 0.",
            registry=r,
        )
        self.lease_epoch = Gauge(
            f"{PREFIX}lease_epoch",
            "The poller lease epoch this process holds (0: none).",
            registry=r,
        )
        self.replicas = Gauge(
            f"{PREFIX}replicas",
            "Replicas seen stepping their lease on this store (a shared store; 1 on SQLite).",
            registry=r,
        )
        self.heartbeats = Counter(
            f"{PREFIX}heartbeats",
            "Heartbeat pings ([heartbeat]), by kind (success, fail) and outcome.",
            ["kind", "outcome"],
            registry=r,
        )

    def _preinitialise(self) -> None:
        """Export every known label value at zero so rates and alerts work from the start."""
        for outcome in CycleOutcome:
            self.cycles.labels(outcome=outcome.value)
        for kind in EventKind:
            self.events.labels(kind=kind.value)
        for condition in JobCondition:
            self.jobs.labels(state=condition.value).set(0)
        for state in DeliveryState:
            self.outbox_depth.labels(state=state.value).set(0)
        for ping_kind in PingKind:
            for ping_outcome in PingOutcome:
                self.heartbeats.labels(kind=ping_kind.value, outcome=ping_outcome.value)

    def observe_cycle(self, ok: bool, duration: float, now: float) -> None:
        """Count one cycle and its duration; a successful one also stamps `now` (Unix seconds)."""
        self.cycles.labels(outcome=(CycleOutcome.OK if ok else CycleOutcome.ERROR).value).inc()
        self.cycle_duration.observe(max(duration, 0.0))
        if ok:
            self.last_success.set(now)

    def observe_api(self, endpoint: str, status: int | str, duration: float) -> None:
        """Count one API request; uuids and query strings in `endpoint` are folded away."""
        label = endpoint_label(endpoint)
        self.api_requests.labels(endpoint=label, status=str(status)).inc()
        self.api_duration.labels(endpoint=label).observe(max(duration, 0.0))

    def set_ratelimit_remaining(self, n: float) -> None:
        """Record the rate-limit budget the API last reported."""
        self.ratelimit_remaining.set(n)

    def set_api_budget_per_minute(self, n: float) -> None:
        """Record the request budget per minute the watcher allows itself."""
        self.budget_per_minute.set(n)

    def count_extra_requests(self, by_kind: Mapping[str, int]) -> None:
        """Count the requests each kind of extra read sent since the last call (a kind at 0
        is exported at 0)."""
        for kind, n in by_kind.items():
            self.extra_requests.labels(kind=kind).inc(max(n, 0))

    def set_poll_interval(self, s: float) -> None:
        """Record the current poll interval in seconds."""
        self.poll_interval.set(s)

    def set_api_up(self, up: bool) -> None:
        """Record whether the API could be read (1) or not (0)."""
        self.api_up.set(1 if up else 0)

    def count_events(self, kinds: Iterable[EventKind]) -> None:
        """Count each detected event by its kind."""
        for kind in kinds:
            self.events.labels(kind=EventKind(kind).value).inc()

    def declare_routes(self, routes: Iterable[str]) -> None:
        """Export each route's every delivery outcome at zero (`deliveries_total`), so that a
        rate of failures or dead letters is 0, not absent, until the first one."""
        for route in routes:
            for outcome in DeliveryOutcome:
                self.deliveries.labels(route=route, outcome=outcome.value)

    def count_delivery(self, route: str, outcome: DeliveryOutcome) -> None:
        """Count one delivery attempt; raise ValueError for an unknown outcome or a URL as route."""
        outcome = DeliveryOutcome(outcome)
        if "://" in route:
            raise ValueError("a route label must be the route's name, never one of its URLs")
        self.deliveries.labels(route=route, outcome=outcome.value).inc()

    def count_heartbeat(self, kind: PingKind, outcome: PingOutcome) -> None:
        """Count one heartbeat ping by its kind and what became of it."""
        self.heartbeats.labels(kind=PingKind(kind).value, outcome=PingOutcome(outcome).value).inc()

    def set_store_gauges(
        self,
        jobs_by_state: Mapping[JobCondition, int],
        outbox_by_state: Mapping[DeliveryState, int],
        oldest_undelivered_age: float | None,
        dead: int,
    ) -> None:
        """Set the store-derived gauges; a state missing from a mapping is exported as 0.

        The per-state gauges are set only when a count differs from the last ones set here
        (a quiet cycle's counts are those of the cycle before: 13 labelled lookups saved)."""
        jobs = tuple(jobs_by_state.get(condition, 0) for condition in JobCondition)
        outbox = tuple(outbox_by_state.get(state, 0) for state in DeliveryState)
        if (jobs, outbox) != self._store_counts:
            self._store_counts = jobs, outbox
            for condition, n in zip(JobCondition, jobs, strict=True):
                self.jobs.labels(state=condition.value).set(n)
            for state, n in zip(DeliveryState, outbox, strict=True):
                self.outbox_depth.labels(state=state.value).set(n)
        self.oldest_undelivered.set(max(oldest_undelivered_age or 0.0, 0.0))
        self.dead_letters.set(dead)

    def set_lease(self, held: bool, epoch: int | None, replicas: int | None = None) -> None:
        """Record whether this process holds its poller lease, its epoch, and (when read)
        how many replicas step theirs on the store."""
        self.lease_held.set(1 if held else 0)
        self.lease_epoch.set(epoch or 0)
        if replicas is not None:
            self.replicas.set(replicas)

    def render(self) -> bytes:
        """Return every metric in the Prometheus text exposition format."""
        return prometheus_client.generate_latest(self.registry)


def endpoint_label(endpoint: str) -> str:
    """Return `endpoint` without its query string and with every uuid replaced by `{uuid}`."""
    path = endpoint.split("?", 1)[0]
    return _UUID.sub("{uuid}", path)

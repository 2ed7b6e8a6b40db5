"""The daemon's upkeep around its cycles: metrics, the store's gauges, the poll pace, pruning.

After each cycle (`after_cycle`): count the cycle, its events and its delivery attempts
(`SettleReason.outcome`), refresh the store's gauges from a count-only snapshot, and choose
the next poll interval (`watcher.core.pace`) from the cycle's API cost and the rate limit the
API reported; the pace is saved in the store's meta table for `watcher status` when it
changes (and once at start). Hourly, on the wall clock (`prune`): forget finished history
older than `state.retention`, per-file reports with it.

None of it is essential to watching: a store that fails here (`StoreError`) is logged and
the daemon goes on; the next cycle, or the next hour, tries again.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import structlog

from watcher.core.errors import StoreError
from watcher.core.outbox import DeliveryState
from watcher.core.pace import PACE_KEY, Pace, PaceReason, next_pace
from watcher.edges.metrics import Metrics
from watcher.edges.store.snapshot import Counts
from watcher.service.budget import PRICES, REPORT, SCHEDULE
from watcher.service.cycle import CycleReport
from watcher.service.extras import AGENT, AGENTS, DATA_SOURCES, DATABASE
from watcher.service.healthcheck import shared_store
from watcher.service.runtime import Runtime, pace_settings

log = structlog.get_logger(__name__)

EXTRA_KINDS = (DATA_SOURCES, DATABASE, AGENTS, AGENT, SCHEDULE, REPORT, PRICES)
"""The kinds of extra read `gradient_watcher_extra_requests_total` exports from the start."""


class Upkeep:
    """Keeps the metrics, the store's gauges, the pace and the history of one daemon.

    `pace` is the interval in force (the daemon waits it between cycle starts); `last_cost`
    the API requests the last cycle made. `use` switches to a reloaded runtime.
    """

    def __init__(self, runtime: Runtime, metrics: Metrics) -> None:
        self.runtime, self.metrics = runtime, metrics
        self.pace = Pace(runtime.config.poll.interval, PaceReason.IDLE)
        self.last_cost = 0
        self._sent_before: dict[str, int] = {}  # each account's client's requests so far
        self._pace_saved = False
        self._extras_before: dict[str, Counter[str]] = {}  # each account's `by_kind` counted
        metrics.set_api_budget_per_minute(runtime.config.api.max_requests_per_minute)
        metrics.count_extra_requests(dict.fromkeys(EXTRA_KINDS, 0))

    def use(self, runtime: Runtime) -> None:
        """Go on with a reloaded runtime (its new API client counts requests from zero)."""
        self.runtime = runtime
        self._sent_before = {}  # its new clients count requests from zero
        self._extras_before = {}  # its new budgets count from zero too

    async def after_cycle(self, report: CycleReport, duration: float, now: datetime) -> None:
        """Count the cycle (`duration` in seconds, `now` the wall clock), refresh the gauges,
        choose the next pace."""
        metrics = self.metrics
        metrics.observe_cycle(report.ok, duration, now.timestamp())
        metrics.set_api_up(report.ok)
        metrics.count_events(report.events)
        for route, reason in report.deliveries:
            if reason.outcome is not None:  # postponed rows were not tried
                metrics.count_delivery(route, reason.outcome)
        self._count_extras()
        await self._update_store_gauges(now, quiet=report.quiet)
        await self.update_lease_gauges()
        await self._repace(report)

    def _count_extras(self) -> None:
        """Export what each kind of extra read sent since the last cycle (`ReadsBudget`),
        every account's added up."""
        sent: Counter[str] = Counter()
        for account in self.runtime.accounts():
            if (budget := account.cycle.budget) is None:
                continue
            counts = Counter(budget.by_kind)
            sent += counts - self._extras_before.get(account.name, Counter())
            self._extras_before[account.name] = counts
        self.metrics.count_extra_requests(sent)

    async def prune(self, now: datetime) -> None:
        """Forget finished history older than `state.retention` (calendar time, for people).

        Keeps the store, and the time its scans take, flat however long the watcher runs.
        """
        before = now - self.runtime.config.state.retention
        try:
            deleted = await self.runtime.store.prune(before)
        except StoreError as exc:
            log.error("history_prune_failed", error=str(exc))
            return
        if deleted:
            log.info("history_pruned", rows=deleted, before=before.isoformat())
        shelf = self.runtime.cycle.kb_watch.settings.reports
        if shelf is not None and (reports := await shelf.prune(before)):
            log.info("reports_pruned", files=reports, before=before.isoformat())

    async def update_lease_gauges(self) -> None:
        """The lease gauges: held, epoch, and on a shared store the live replicas."""
        store = self.runtime.store
        count = 1
        if shared_store(store):  # psycopg stays out of a daemon on SQLite (~130 modules)
            try:
                replicas, _, now = await store.replicas()
            except StoreError as exc:
                log.error("store_snapshot_failed", error=str(exc))
                return
            count = sum(1 for r in replicas if r.live(now))
        self.metrics.set_lease(self.runtime.keeper.held, store.epoch, count)

    async def _update_store_gauges(self, now: datetime, *, quiet: bool = False) -> None:
        """The store's gauges from a count-only snapshot; after a quiet cycle from the counts
        kept by the store when they still hold (`SqliteStore.kept_counts`: the cycle read the
        store's version at its start, and nothing changed a counted row since), with no
        round trip to the store's thread. The age of the oldest undelivered row is of `now`."""
        store = self.runtime.store
        counts = store.kept_counts() if quiet else None
        if counts is None:
            try:
                counts = Counts.of(await store.snapshot(now, detail=False))
            except StoreError as exc:
                log.error("store_snapshot_failed", error=str(exc))
                return
        oldest, outbox = counts.oldest_undelivered_at, counts.outbox_by_state
        age = None if oldest is None else (now - oldest).total_seconds()
        self.metrics.set_store_gauges(
            counts.jobs_by_state, outbox, age, outbox.get(DeliveryState.DEAD, 0)
        )

    async def _repace(self, report: CycleReport) -> None:
        """The next pace from the cycle's cost and the API's rate limit; saved when it changed.
        With several accounts each is paced by its own poll's cost, budget and rate limit, and
        the slowest pace holds (one loop runs every account's cycle)."""
        by_name = dict(report.by_account) or {self.runtime.account: report}
        paces: list[Pace] = []
        cost = 0
        for account in self.runtime.accounts():
            mine = by_name.get(account.name)
            if mine is None:  # not polled (its lease is elsewhere)
                continue
            client = account.client
            sent = client.requests_sent
            # the extra reads plan around the poll: only the poll's own cost sets its pace
            polled = max(sent - self._sent_before.get(account.name, 0) - mine.extra_requests, 0)
            self._sent_before[account.name] = sent
            cost += polled
            paces.append(
                next_pace(
                    pace_settings(account.config),
                    active=mine.active_jobs > 0,
                    requests_last_cycle=polled,
                    rate=client.rate_limit,
                    now=client.api_now(),  # `ratelimit-reset` is on the API's clock
                )
            )
        self.last_cost = cost
        client, config = self.runtime.client, self.runtime.config
        rate = client.rate_limit
        pace = max(paces, key=lambda p: p.interval) if paces else self.pace
        if rate is not None and rate.remaining is not None:
            self.metrics.set_ratelimit_remaining(rate.remaining)
        self.metrics.set_api_budget_per_minute(config.api.max_requests_per_minute)
        self.metrics.set_poll_interval(pace.interval.total_seconds())
        if pace != self.pace or not self._pace_saved:
            self._pace_saved = False
            await self._save_pace(pace)
        if pace != self.pace:
            seconds = pace.interval.total_seconds()
            log.info("poll_interval_changed", seconds=seconds, reason=pace.reason.value)
            self.pace = pace

    async def _save_pace(self, pace: Pace) -> None:
        """Keep the pace in the store for `watcher status`; when the store refuses, the pace
        is in force all the same and the next cycle saves it."""
        document = {"interval_s": pace.interval.total_seconds(), "reason": pace.reason.value}
        try:
            await self.runtime.store.set_meta(PACE_KEY, json.dumps(document))
        except StoreError as exc:
            log.error("poll_interval_not_saved", error=str(exc))
            return
        self._pace_saved = True

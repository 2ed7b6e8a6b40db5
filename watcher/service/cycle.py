"""One poll cycle, top to bottom: fetch, detect, decide, record, deliver.

This is the only orchestrator. It talks to the edges through the Protocols of
`watcher.core.ports`, calls the pure core, and is the boundary where a failure of one knowledge
base or one delivery is logged and survived. The steps:

- fetch (`watcher.service.observe`): the account's KBs, the jobs of those with news, the
  followed jobs no list showed, and what the store knew of them;
- detect (`watcher.core.detect`, `watcher.service.accountcheck`): the transitions, and the
  details of failed and partial jobs (a partial job within its KB's error budget is then
  told as completed: `watcher.core.tolerance`);
- decide (`watcher.core.decide.route`): which routes get which event; then the KBs' incidents
  (`watcher.core.incidents.track`): the alerts say which failure in a row they are, and the
  reminders and escalations due join the cycle's events;
- cost (`watcher.core.costing`): each outcome's cost from its KB's model price
  (`watcher.service.costs`, read about hourly), and `cost_spike`;
- record: states, incidents, events and outbox rows in one transaction, with the API's health
  (and the intents of remediation, `watcher.service.remedies`, which acts after it);
- extra reads (`watcher.service.extrarun`): what the budget's share allows of the reads beyond
  the polling (data sources, database health, agents), after the poll was recorded; their
  facts annotate the next alerts (`watcher.core.facts.with_facts`). One `ReadsBudget`
  (`watcher.service.budget`) serves them and the schedules, reports and prices read during
  the poll: the poll's own cost is measured each cycle and kept free for the next one;
- silences (`watcher.service.silencing`): the end of each silence that ended is announced;
- digests (`watcher.service.digests`): each route's digest whose slot passed is recorded;
- deliver (`watcher.service.dispatch`): what is due in the outbox goes out, but what a
  silence holds (recorded as silenced); a route in its quiet hours holds it until they end
  (`watcher.core.quiet`).

A *quiet cycle* stops after the poll (`watcher.core.nextdue`): when the KB list is what the
last full cycle saw, that cycle changed nothing, no other connection wrote the store since,
and no deadline of any kind came (each on its own clock, computed by `_deadlines` from what
the last full cycle left), the bookkeeping above is skipped; a full cycle still runs at
least every 20 cycles and every 10 minutes.

A cycle has a deadline (`CycleSettings.deadline`, on the event loop's monotonic clock): its
API reads end there and the cycle counts as a failed API read (towards `api_unreachable`).
Only the KB list is mandatory: each optional read (job lists, followed jobs, a failed job's
details) ends within its own share of what is left (`watcher.core.reads.read_share`), the
lists a quarter of the deadline before its end, so an endpoint that never answers costs
that read alone: the other KBs' jobs are still alerted in that cycle, on time.
Delivery waits for its rounds a bounded time too (a slow route goes on in the background).
So a cycle always ends, and the daemon's next one starts on time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from watcher.core import nextdue
from watcher.core.account import RouteRefs
from watcher.core.apihealth import API_HEALTH_KEY, ApiHealth, api_health
from watcher.core.clocks import Elapsed, Instant
from watcher.core.cost import PRICES_KEY, ModelPrice, SpikeRule, encode_prices
from watcher.core.costing import (
    COSTS_KEY,
    annotate,
    decode_recent,
    encode_recent,
    keep_spikes,
)
from watcher.core.decide import RetryPolicy, RouteRule, route
from watcher.core.detect import detect
from watcher.core.digest import DigestSchedule
from watcher.core.errors import ApiStatusError, Forbidden, SourceError, Unauthorized
from watcher.core.facts import with_facts
from watcher.core.incident import Incident
from watcher.core.incidents import track
from watcher.core.model import INCIDENT_EVENTS, EventKind, Job, KnowledgeBase, WatchedKb
from watcher.core.nextdue import Deadline, DueKind, Full, Settled, Verdict
from watcher.core.outbox import SettleReason
from watcher.core.ports import (
    DigestReads,
    ExtraSource,
    FactStore,
    MetaStore,
    Notifier,
    Outbox,
    QuietSigns,
    SilenceBook,
    Source,
    StateStore,
)
from watcher.core.present import Presentation
from watcher.core.reads import DETAILS_RESERVE, next_poll_cost
from watcher.core.reminders import IncidentRule
from watcher.core.render import DASHBOARD
from watcher.core.state import Change, Observation, Policy, Transition, WatchState, changed
from watcher.core.tolerance import Tolerances, tolerate
from watcher.core.windows import TimeWindow
from watcher.edges.hostclock import elapsed_now
from watcher.service.accountcheck import AccountCheck
from watcher.service.budget import ReadsBudget
from watcher.service.costs import PriceBook
from watcher.service.dispatch import Dispatcher, DispatchSettings
from watcher.service.extrarun import ExtraReads, ExtrasSettings
from watcher.service.kbwatch import KB_EVENTS, KbWatcher, KbWatchSettings
from watcher.service.observe import BASELINE_KEY, Observer, ReadDeadline, Sight
from watcher.service.silencing import Silencer
from watcher.service.unmoved import Unmoved

if TYPE_CHECKING:  # loaded only when configured: `[[routes]] digest`, `[remediation]`
    from watcher.service.digests import Digests
    from watcher.service.remedies import Remedies

log = structlog.get_logger(__name__)

EXTRA_READS_SHARE = 0.1
"""The share of a cycle's deadline that reads beyond the polling (reports, schedules) may use."""


@dataclass(frozen=True, slots=True)
class CycleSettings:
    """What a cycle needs from the configuration."""

    watched: tuple[WatchedKb, ...] = ()
    route_refs: tuple[RouteRefs, ...] = ()  # each route's knowledge_bases, checked each cycle
    policy: Policy = field(default_factory=Policy)
    rules: tuple[RouteRule, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    storm_threshold: int = 5
    api_unreachable_after: timedelta = timedelta(minutes=10)
    dashboard: str = DASHBOARD
    delivery_batch: int = 200
    per_page: int = 200
    deadline: timedelta = timedelta(seconds=60)
    send_interval: timedelta = timedelta(seconds=1)
    route_send_intervals: Mapping[str, timedelta] = field(default_factory=dict)
    delivery_failing_after: timedelta = timedelta(minutes=10)
    tolerances: Tolerances = field(default_factory=Tolerances)  # error budgets per KB
    presentations: Mapping[str, Presentation] = field(default_factory=dict)  # per route
    extras: ExtrasSettings | None = None  # the extra reads' share (None: no extra reads)
    kb_watch: KbWatchSettings = field(default_factory=KbWatchSettings)  # schedules, reports
    incident_rules: tuple[IncidentRule, ...] = ()  # per route: repeat_after, escalate_*
    spike_rule: SpikeRule = field(default_factory=SpikeRule)  # `cost_spike` (off by default)
    route_spike_factors: Mapping[str, float] = field(default_factory=dict)  # routes' own
    mutes: Mapping[str, tuple[TimeWindow, ...]] = field(default_factory=dict)  # mute_during
    digests: Mapping[str, DigestSchedule] = field(default_factory=dict)  # per route

    def dispatch(self) -> DispatchSettings:
        """The deliver stage's slice."""
        return DispatchSettings(
            rules=self.rules,
            retry=self.retry,
            storm_threshold=self.storm_threshold,
            dashboard=self.dashboard,
            batch=self.delivery_batch,
            send_interval=self.send_interval,
            route_send_intervals=self.route_send_intervals,
            failing_after=self.delivery_failing_after,
            presentations=self.presentations,
            mutes=self.mutes,
        )


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one cycle did, for logs, metrics and `systemd` status lines."""

    cycle_id: str
    ok: bool
    knowledge_bases: int = 0
    active_jobs: int = 0
    events: tuple[EventKind, ...] = ()
    deliveries: tuple[tuple[str, SettleReason], ...] = ()
    error: str | None = None
    # what the extra reads sent, during the poll and after it: never the poll's own cost
    extra_requests: int = 0
    # with several [[accounts]]: each account's own report, by name, for its own pace
    by_account: tuple[tuple[str, CycleReport], ...] = ()
    quiet: bool = False  # the poll alone: nothing moved, nothing due (`watcher.core.nextdue`)
    full: Full | None = None  # why a full cycle ran in full (None: quiet, or not told)
    due: DueKind | None = None  # with `Full.DUE`: the deadline that came


@dataclass(frozen=True, slots=True)
class Polled:
    """The poll itself: when it began, the cycle's read deadline, and the KB list read (or
    why it could not be)."""

    began: Elapsed
    reads: ReadDeadline
    account: tuple[KnowledgeBase, ...] = ()
    error: SourceError | TimeoutError | None = None


@dataclass(frozen=True, slots=True)
class Left:
    """What a full cycle's poll left for its deadlines: the state `detect` returned, the open
    incidents, and whether anything moved (then the next cycle runs in full too)."""

    state: WatchState
    incidents: Iterable[Incident]
    moved: bool


class Cycle:
    """Runs poll cycles against one source, one store and one notifier."""

    def __init__(
        self,
        source: Source,
        store: StateStore,
        outbox: Outbox,
        meta: MetaStore,
        notifier: Notifier,
        settings: CycleSettings,
        clock: Callable[[], datetime],
        elapsed: Callable[[], Elapsed] = elapsed_now,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        extra_source: ExtraSource | None = None,
        facts: FactStore | None = None,
        silences: SilenceBook | None = None,
        extra: ExtraSource | None = None,
        digest_reads: DigestReads | None = None,
        prices: PriceBook | None = None,
        remedies: Remedies | None = None,
        quiet_signs: QuietSigns | None = None,
    ) -> None:
        self.source, self.store, self.meta = source, store, meta
        # None: no quiet cycle (a store that cannot tell who wrote it, several accounts)
        self.quiet_signs = quiet_signs
        self._settled: Settled | None = None  # what the last full cycle left, when it settled
        self._left: Left | None = None  # what the running full cycle's poll left
        self._last_full: CycleReport | None = None
        self.prices, self.remedies = prices, remedies
        self._prices_written: str | None = None
        self._prices_seen: Mapping[str, ModelPrice] = {}  # encoded into _prices_written
        self.digests: Digests | None = None
        if digest_reads is not None and settings.digests:
            from watcher.service.digests import Digests

            scopes = {rule.name: rule.knowledge_bases for rule in settings.rules}
            self.digests = Digests(digest_reads, store, meta, settings.digests, clock, scopes)
        self.settings, self.clock, self.elapsed = settings, clock, elapsed
        self.observer = Observer(source, store, meta, settings.watched, settings.per_page)
        self.unmoved = Unmoved()  # what `detect` would leave unchanged again
        self.account_check = AccountCheck(meta, settings.watched, settings.route_refs)
        self.dispatcher = Dispatcher(
            outbox,
            store,
            meta,
            notifier,
            settings.dispatch(),
            clock,
            elapsed=elapsed,
            monotonic=monotonic,
            sleep=sleep,
            silences=silences,
        )
        routes = [rule.name for rule in settings.rules]
        self.silencer = Silencer(silences, routes, clock) if silences is not None else None
        self.current_id: str | None = None  # the id of the cycle running (or last run)
        self.next_poll = 0  # what the next poll may cost, were each busy KB's list read
        self.extras: ExtraReads | None = None
        self.budget: ReadsBudget | None = None  # every extra read's, with the poll's cost
        gauge = extra_source if extra_source is not None else extra
        if settings.extras is not None and gauge is not None:
            extras = settings.extras
            self.budget = ReadsBudget(
                gauge, extras.per_hour, extras.reserve, extras.ceiling, extras.fastest
            )
            if settings.extras.per_hour > 0 and extra_source is not None and facts is not None:
                self.extras = ExtraReads(extra_source, facts, self.budget, self._record_events)
        if prices is not None:
            prices.budget = self.budget
        self.kb_watch = KbWatcher(
            extra,
            meta,
            settings.kb_watch,
            settings.watched,
            budget=self.budget,
            others=self.extras.candidates if self.extras is not None else None,
            elapsed=elapsed,
        )
        self._seen: tuple[KnowledgeBase, ...] = ()

    async def run(self) -> CycleReport:
        """Poll once; unless the cycle may be quiet (nothing moved since the last full cycle
        and nothing is due: `watcher.core.nextdue`), record what changed and deliver what is
        due. Raises only on store failure."""
        cycle_id = self.current_id = uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(cycle_id=cycle_id)
        try:
            budget = self.budget
            sent, measured = (budget.gauge.requests_sent, budget.measured) if budget else (0, 0)
            polled = await self._list()  # the poll itself: every cycle, quiet or full
            version, verdict = await self._verdict(polled)
            if verdict.full is None:  # quiet: the poll was all there was to do
                report = self._quiet_report(cycle_id)
            else:
                report = await self._poll(cycle_id, polled)
            during = 0  # the extra reads made during the poll (schedules, reports, prices)
            if budget is not None:  # the poll's own requests: kept free for the next poll
                during = budget.measured - measured
                took = budget.gauge.requests_sent - sent - during
                budget.poll_cost = max(0, took, self.next_poll)
            if verdict.full is None:
                return report
            report = await self._extra_reads(report)
            report = replace(report, extra_requests=report.extra_requests + during)
            await self._keep_spent()
            told = 0  # silences' ends and digests recorded: the outbox moved
            if self.silencer is not None:  # silences that ended: what they hid, still open
                told += await self.silencer.end_silences()
            if self.digests is not None:  # due on the wall clock, whatever the API did
                told += await self.digests.record_due()
            delivered = await self.deliver()
            report = replace(report, deliveries=delivered, full=verdict.full, due=verdict.due)
            await self._settle(report, polled, version, moved=told > 0)
            return report
        finally:
            structlog.contextvars.unbind_contextvars("cycle_id")

    async def _list(self) -> Polled:
        """Read the account's KB list within the cycle's deadline (`Polled.error` when not)."""
        seconds = self.settings.deadline.total_seconds()
        until = asyncio.get_running_loop().time() + seconds
        polled = Polled(self.elapsed(), ReadDeadline(until, reserve=seconds * DETAILS_RESERVE))
        try:
            async with asyncio.timeout_at(until):
                return replace(polled, account=await self.observer.account())
        except (SourceError, TimeoutError) as exc:
            return replace(polled, error=exc)

    async def _verdict(self, polled: Polled) -> tuple[Hashable | None, Verdict]:
        """The store's version before this cycle reads it, and whether the cycle may be
        quiet (`watcher.core.nextdue.verdict`); a quiet one counts towards the safety net."""
        if polled.error is not None:
            self._settled = None
            return None, Verdict(Full.FAILED)
        version = await self.quiet_signs.state_version() if self.quiet_signs else None
        settled, now = self._settled, self.now()
        budget = self.budget
        room = budget is None or budget.blocked(now.elapsed) is None
        verdict = nextdue.verdict(settled, polled.account, version, now, room=room)
        # a full cycle settles anew when it ends (one that fails half-way never does)
        self._settled = None
        if verdict.full is None and settled is not None:
            self._settled = replace(settled, quiet=settled.quiet + 1)
        return version, verdict

    def _quiet_report(self, cycle_id: str) -> CycleReport:
        """A quiet cycle's report: what the last full cycle saw, no event, no delivery."""
        last = self._last_full
        return CycleReport(
            cycle_id=cycle_id,
            ok=True,
            knowledge_bases=last.knowledge_bases if last else 0,
            active_jobs=last.active_jobs if last else 0,
            quiet=True,
        )

    async def _settle(
        self, report: CycleReport, polled: Polled, version: Hashable | None, *, moved: bool
    ) -> None:
        """After a full cycle: when it changed nothing, what the next cycles may be quiet on
        (the KB list, the store's version, every deadline left); else nothing (full again)."""
        left, self._left = self._left, None
        self._last_full = report  # `_settled` is None since `_verdict`: full again unless set
        busy = moved or report.events or report.deliveries or report.extra_requests
        if left is None or left.moved or busy or not report.ok or version is None:
            return
        now = self.now()
        deadlines = await self._deadlines(left, now)
        clocked = any(job.deadline is not None for job in left.state.jobs.values())
        self._settled = Settled(polled.account, version, now, deadlines, clocked=clocked)

    async def _deadlines(self, left: Left, now: Instant) -> tuple[Deadline, ...]:
        """Every deadline the last full cycle left, each on its own clock."""
        found: list[Deadline] = []
        for job in left.state.jobs.values():  # a done one has none
            found += nextdue.stall_deadlines(job, self.settings.policy)
        rules = {rule.route: rule for rule in self.settings.incident_rules}
        found += nextdue.reminder_deadlines(left.incidents, rules)
        found += self.kb_watch.deadlines(self._seen, now)
        if self.extras is not None:
            candidates = self.extras.candidates(self._seen, now.elapsed)
            found += nextdue.reads_deadline(candidates, now.elapsed, needs_room=True)
        if self.prices is not None:
            found.append(self.prices.deadline())
        if self.remedies is not None and self.remedies.may_have_work:
            found.append(Deadline(DueKind.REMEDIATION))
        if self.silencer is not None and self.silencer.next_end is not None:
            found.append(Deadline(DueKind.SILENCE_END, wall=self.silencer.next_end))
        if self.digests is not None:
            found += self.digests.deadlines(now.wall)
        if self.dispatcher.busy:
            found.append(Deadline(DueKind.DELIVERY))
        if self.quiet_signs is not None:
            waits = await self.quiet_signs.next_delivery()
            if waits is not None:
                found.append(Deadline(DueKind.OUTBOX, wall=waits))
        return tuple(found)

    def now(self) -> Instant:
        """This moment on the three clocks: the wall's, the API's (from its answers), elapsed."""
        return Instant(wall=self.clock(), api=self.source.api_now(), elapsed=self.elapsed())

    async def _poll(self, cycle_id: str, polled: Polled) -> CycleReport:
        """Fetch, detect, decide and record; the API's reads end at the cycle's deadline."""
        reads, began = polled.reads, polled.began
        until = reads.until
        if polled.error is not None:
            return await self._fetch_failed(cycle_id, polled.error)
        try:
            async with asyncio.timeout_at(until):
                sight = await self.observer.observe(polled.account, reads)
            now = self.now()
            await self._restore_spent(now)  # before any extra read: the API's clock is known
            state, transitions, meta = await self._detect(sight, now, began)
            # optional reads only, each within its share of what is left: ends by `until`
            transitions = await self.observer.with_details(transitions, reads)
            # Extra reads (reports, schedules) have a share of the deadline and end there on
            # their own: they never fail the cycle, nor hold its alerts back for long.
            loop = asyncio.get_running_loop()
            share = self.settings.deadline.total_seconds() * EXTRA_READS_SHARE
            extra_until = min(until, loop.time() + share)
            if self.extras is not None:  # the schedules compete with the reads they know
                await self.extras.load()
            transitions = await self.kb_watch.with_reports(transitions, extra_until)
            judged = await self.kb_watch.judge(sight.kbs, _by_kb(sight), now, extra_until)
            transitions = tolerate(transitions, self.settings.tolerances)  # needs the details
            if self.extras is not None:
                transitions = tuple(with_facts(transitions, self.extras.kb_facts()))
        except (SourceError, TimeoutError) as exc:
            return await self._fetch_failed(cycle_id, exc)
        self._seen = sight.kbs
        busy = len({s.kb_uuid for s in state.jobs.values() if not s.done})
        self.next_poll = next_poll_cost(len(sight.account), busy, self.observer.per_page)
        transitions, cost_meta = await self._costs(sight.kbs, transitions, until)
        if self.remedies is not None:  # the intents go with the stall, before any write call
            cost_meta |= await self.remedies.plan(transitions)
        transitions += judged.transitions
        meta = {**meta, **judged.meta}
        deliveries = route(transitions, self.settings.rules)
        deliveries = keep_spikes(deliveries, transitions, self.settings.route_spike_factors)
        rules, opened = self.settings.incident_rules, sight.previous.incidents
        tracked = track(opened, transitions, deliveries, rules, now)
        # `api_recovered` first, so that its alert comes before the news it lets through.
        health_moved = await self._api_outcome(cycle_id, now, None)
        kbs, jobs = changed(sight.previous, state)
        change = Change(
            cycle_id,
            now.wall,
            kbs,
            jobs,
            tracked.transitions,
            tracked.deliveries,
            incidents=tracked.incidents,
        )
        await self._record(change, sight.previous, state, meta | cost_meta)
        self.kb_watch.committed(judged)
        incidents = {i.kb_uuid: i for i in tracked.incidents}
        moved = not sight.list_only or health_moved or bool(kbs or jobs or meta or cost_meta)
        moved = moved or bool(tracked.transitions or tracked.incidents or judged.watches)
        self._left = Left(state, {**sight.previous.incidents, **incidents}.values(), moved)
        if self.remedies is not None:
            await self.remedies.act(cycle_id, now.wall, now.api, until)
        for t in tracked.transitions:
            about = "incident" if t.kind in INCIDENT_EVENTS else "job"
            name = t.kind.value if t.kind in KB_EVENTS else f"{about}_{t.kind.value}"
            log.info(name, kb=t.kb_uuid, job=t.job_uuid, event_id=t.event_id)
        return CycleReport(
            cycle_id=cycle_id,
            ok=True,
            knowledge_bases=len(sight.kbs),
            active_jobs=sum(1 for s in state.jobs.values() if not s.done),
            events=tuple(t.kind for t in tracked.transitions),
        )

    async def _detect(
        self, sight: Sight, now: Instant, began: Elapsed
    ) -> tuple[WatchState, tuple[Transition, ...], dict[str, str | None]]:
        """The new state and the transitions, the setup's (watched KBs missing or found)
        first; with the meta the setup check records."""
        took = now.elapsed.since(began) or timedelta(0)
        observation = Observation(now.wall, sight.kbs, sight.jobs, api_began=now.api - took)
        routes_meta = await self.account_check.check_routes(sight.account)
        setup, setup_meta = await self.account_check.presence(
            sight.account, sight.previous, now.wall
        )
        policy, previous = self.settings.policy, sight.previous
        # done jobs left unchanged last cycle on the very same inputs: not judged again
        judged = self.unmoved.to_judge(sight.jobs, sight.kbs, previous, policy)
        state, transitions = detect(previous, replace(observation, jobs=judged), now, policy)
        self.unmoved.remember(sight.jobs, sight.kbs, previous, state, transitions)
        return state, setup + transitions, routes_meta | setup_meta

    async def _costs(
        self, kbs: Sequence[KnowledgeBase], transitions: tuple[Transition, ...], until: float
    ) -> tuple[tuple[Transition, ...], dict[str, str | None]]:
        """The transitions with their jobs' costs (and any `cost_spike`), and the meta values
        to record with them: the KBs' recent costs and, when they changed, their prices."""
        if self.prices is None:
            return transitions, {}
        try:
            async with asyncio.timeout_at(until):
                await self.prices.refresh_if_due()
        except TimeoutError:
            log.warning("model_prices_unread", error="the cycle's deadline passed")
        prices = self.prices.prices(kbs)
        meta: dict[str, str | None] = {}
        # Encoding 1,000 prices (asdict + JSON) costs more than comparing them: only encode
        # what differs from the prices last encoded (equal prices encode equally).
        if prices and prices != self._prices_seen:
            self._prices_seen = prices
            if (encoded := encode_prices(prices)) != self._prices_written:
                meta[PRICES_KEY] = self._prices_written = encoded
        if not any(t.kind.is_terminal for t in transitions):
            return transitions, meta
        recent = decode_recent(await self.meta.get_meta(COSTS_KEY))
        priced, costs = annotate(transitions, prices, recent, self.settings.spike_rule)
        if costs != recent:
            meta[COSTS_KEY] = encode_recent(costs)
        return priced, meta

    async def _fetch_failed(self, cycle_id: str, exc: SourceError | TimeoutError) -> CycleReport:
        """The API could not be read (or not within the deadline): a failed API read."""
        if isinstance(exc, TimeoutError):
            seconds = self.settings.deadline.total_seconds()
            error = text = f"the API was not read within the cycle deadline ({seconds:g}s)"
            log.warning("cycle_deadline_passed", deadline_s=seconds)
        else:
            error, text = _describe(exc), str(exc)
            log.warning("cycle_fetch_failed", error=text, retryable=exc.retryable)
        await self._api_outcome(cycle_id, self.now(), error)
        return CycleReport(cycle_id=cycle_id, ok=False, error=text)

    async def _record(
        self, change: Change, previous: WatchState, state: WatchState, meta: dict[str, str | None]
    ) -> None:
        """Write the cycle's change in one transaction; the first run's baseline goes with it."""
        meta = dict(meta)
        if state.baseline is not None and state.baseline != previous.baseline:
            meta[BASELINE_KEY] = state.baseline.isoformat()  # with the first run's state
        await self.store.record(change, meta=meta)
        self.observer.baseline = state.baseline

    async def _api_outcome(self, cycle_id: str, now: Instant, error: str | None) -> bool:
        """Track the API's health; record `api_unreachable` / `api_recovered` with it when due.
        Whether the health changed."""
        previous = ApiHealth.decode(await self.meta.get_meta(API_HEALTH_KEY))
        after = self.settings.api_unreachable_after
        health, transitions = api_health(previous, error, now, after)
        if health == previous:
            return False
        change = Change(
            cycle_id=cycle_id,
            at=now.wall,
            transitions=transitions,
            deliveries=route(transitions, self.settings.rules),
        )
        await self.store.record(change, meta={API_HEALTH_KEY: health.encode()})
        for t in transitions:
            log.warning(t.kind.value, event_id=t.event_id, detail=t.detail)
        return True

    async def _extra_reads(self, report: CycleReport) -> CycleReport:
        """The extra reads the share allows now (after a poll that read the API), within the
        cycle's deadline of their own; their failures are logged, never the cycle's."""
        if self.extras is None or not report.ok:
            return report
        before = self.extras.source.requests_sent
        try:
            async with asyncio.timeout(self.settings.deadline.total_seconds()):
                await self.extras.run(self._seen, self.elapsed(), self.clock())
        except (SourceError, TimeoutError) as exc:
            log.warning("extra_reads_stopped", error=str(exc) or type(exc).__name__)
        return replace(report, extra_requests=self.extras.source.requests_sent - before)

    async def _restore_spent(self, now: Instant) -> None:
        """On this cycle object's first poll that read the API: go on from the hour of extra
        reads the store keeps (another process's, or the cycle a reload replaced)."""
        budget, extras = self.budget, self.settings.extras
        if budget is None or extras is None or budget.restored:
            return
        budget.restore(await self.meta.get_meta(extras.spent_key), now.api, now.elapsed)

    async def _keep_spent(self) -> None:
        """Store what the budget spent in the last hour, when it changed (one write at the
        end of a cycle, on the API's clock: see `watcher.service.budget`)."""
        budget, extras = self.budget, self.settings.extras
        if budget is None or extras is None:
            return
        now = self.now()
        if (text := budget.unsaved(now.api, now.elapsed)) is not None:
            await self.meta.set_meta(extras.spent_key, text)

    async def _record_events(self, transitions: tuple[Transition, ...]) -> None:
        """Record events the extra reads found (database health), routed like any other."""
        change = Change(
            cycle_id=self.current_id or "",
            at=self.clock(),
            transitions=transitions,
            deliveries=route(transitions, self.settings.rules),
        )
        await self.store.record(change)
        for t in transitions:
            log.warning(t.kind.value, kb=t.kb_uuid, status=t.database_status, event_id=t.event_id)

    async def deliver(self) -> tuple[tuple[str, SettleReason], ...]:
        """Send what is due from the outbox (see `watcher.service.dispatch`); routes in parallel."""
        return await self.dispatcher.deliver()


def _by_kb(sight: Sight) -> dict[str, list[Job]]:
    """The jobs seen this cycle, by their KB."""
    found: dict[str, list[Job]] = {}
    for job in sight.jobs:
        if job.knowledge_base_uuid is not None:
            found.setdefault(job.knowledge_base_uuid, []).append(job)
    return found


def _describe(exc: SourceError) -> str:
    if isinstance(exc, Unauthorized | Forbidden) and exc.hint:  # which token: from where
        hint = exc.hint.removeprefix(f"HTTP {exc.status}: ")
        return f"HTTP {exc.status} {exc.api_id or ''}".strip() + f": {hint}"
    if isinstance(exc, ApiStatusError):
        return f"HTTP {exc.status} {exc.api_id or ''}".strip()
    return str(exc)

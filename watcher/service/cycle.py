"""One poll cycle, top to bottom: fetch, detect, record, decide, deliver.

This is the only orchestrator. It talks to the edges through the Protocols of
`watcher.core.ports`, calls the pure core, and is the boundary where a failure of one knowledge
base or one delivery is logged and survived.

A cycle has a deadline (`CycleSettings.deadline`, on the event loop's monotonic clock): its
API reads end there and the cycle counts as a failed API read (towards `api_unreachable`).
Delivery waits for its rounds a bounded time too (`watcher.service.dispatch`: a slow route goes on
in the background). So a cycle always ends, and the daemon's next one starts on time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from watcher.core.account import RouteRefs
from watcher.core.apihealth import ApiHealth, api_health
from watcher.core.clocks import Elapsed, Instant
from watcher.core.decide import RetryPolicy, RouteRule, route
from watcher.core.detect import detect
from watcher.core.errors import ApiStatusError, SourceError
from watcher.core.history import is_new_kb
from watcher.core.model import EventKind, Job, KnowledgeBase, WatchedKb
from watcher.core.outbox import SettleReason
from watcher.core.ports import MetaStore, Notifier, Outbox, Source, StateStore
from watcher.core.render import DASHBOARD
from watcher.core.state import Change, Observation, Policy, Transition, WatchState
from watcher.edges.hostclock import elapsed_now
from watcher.service.accountcheck import AccountCheck
from watcher.service.dispatch import Dispatcher, DispatchSettings

log = structlog.get_logger(__name__)

_NEEDS_DETAILS = frozenset({EventKind.FAILED, EventKind.PARTIAL})
_KB_JOB_WINDOW = 15  # DigitalOcean keeps the latest 15 jobs of a KB, in every list
_API_HEALTH_KEY = "api_health"
BASELINE_KEY = "api_baseline"
"""The meta key of the first run's baseline (the API's time, ISO 8601): see `history`."""


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
    ) -> None:
        self.source, self.store, self.meta = source, store, meta
        self.settings, self.clock, self.elapsed = settings, clock, elapsed
        self.dispatcher = Dispatcher(
            outbox,
            store,
            meta,
            notifier,
            settings.dispatch(),
            clock,
            monotonic=monotonic,
            sleep=sleep,
        )
        self._unknown_seen: set[str] = set()
        self.current_id: str | None = None  # the id of the cycle running (or last run)
        self._baseline: datetime | None = None
        self.account_check = AccountCheck(meta, settings.watched, settings.route_refs)

    @property
    def outbox(self) -> Outbox:
        """The outbox deliveries are claimed from and settled in."""
        return self.dispatcher.outbox

    @outbox.setter
    def outbox(self, outbox: Outbox) -> None:
        self.dispatcher.outbox = outbox

    @property
    def notifier(self) -> Notifier:
        """The notifier alerts are sent through."""
        return self.dispatcher.notifier

    @notifier.setter
    def notifier(self, notifier: Notifier) -> None:
        self.dispatcher.notifier = notifier

    async def run(self) -> CycleReport:
        """Poll once, record what changed, deliver what is due; raises only on store failure."""
        cycle_id = self.current_id = uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(cycle_id=cycle_id)
        try:
            report = await self._poll(cycle_id)
            delivered = await self.deliver()
            return replace(report, deliveries=delivered)
        finally:
            structlog.contextvars.unbind_contextvars("cycle_id")

    def now(self) -> Instant:
        """This moment on the three clocks: the wall's, the API's (from its answers), elapsed."""
        return Instant(wall=self.clock(), api=self.source.api_now(), elapsed=self.elapsed())

    async def _poll(self, cycle_id: str) -> CycleReport:
        loop = asyncio.get_running_loop()
        until = loop.time() + self.settings.deadline.total_seconds()
        began = self.elapsed()
        try:
            async with asyncio.timeout_at(until):
                kbs, jobs, previous, account = await self._observe()
            now = self.now()
            took = now.elapsed.since(began) or timedelta(0)
            observation = Observation(now.wall, kbs, jobs, api_began=now.api - took)
            self._log_unknown_values(observation)
            routes_meta = await self.account_check.check_routes(account)
            setup, setup_meta = await self.account_check.presence(account, previous, now.wall)
            state, transitions = detect(previous, observation, now, self.settings.policy)
            async with asyncio.timeout_at(until):
                transitions = setup + await self._with_details(transitions)
        except (SourceError, TimeoutError) as exc:
            return await self._fetch_failed(cycle_id, exc)
        # `api_recovered` first, so that its alert comes before the news it lets through.
        await self._api_outcome(cycle_id, now, None)
        meta = routes_meta | setup_meta
        await self._record(cycle_id, now.wall, previous, state, transitions, meta)
        active = sum(1 for s in state.jobs.values() if not s.done)
        for t in transitions:
            log.info(f"job_{t.kind.value}", kb=t.kb_uuid, job=t.job_uuid, event_id=t.event_id)
        return CycleReport(
            cycle_id=cycle_id,
            ok=True,
            knowledge_bases=len(observation.kbs),
            active_jobs=active,
            events=tuple(t.kind for t in transitions),
        )

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

    def _log_unknown_values(self, observation: Observation) -> None:
        """Enum values the API added after us: kept on the job, never alerted, logged once each."""
        for job in observation.jobs:
            for value in sorted(job.unknown_values - self._unknown_seen):
                self._unknown_seen.add(value)
                log.warning(
                    "api_unknown_value", value=value, kb=job.knowledge_base_uuid, job=job.uuid
                )

    # --- fetch -----------------------------------------------------------------------------

    async def _observe(
        self,
    ) -> tuple[tuple[KnowledgeBase, ...], tuple[Job, ...], WatchState, list[KnowledgeBase]]:
        """What the API shows of the watched KBs (their jobs), what the store knew, and the
        account's whole listing."""
        account = await self.source.list_knowledge_bases()
        kbs = self._watched(account)
        known = replace(await self.store.load(()), baseline=await self._load_baseline())
        fresh = [kb for kb in kbs if _has_new_job(kb, known)]
        fresh_uuids = {kb.uuid for kb in fresh}
        recent = await self._recent_jobs(fresh, len(account))
        jobs: list[Job] = []
        observed: list[KnowledgeBase] = []
        for kb in kbs:
            latest = [_owned(kb.last_indexing_job, kb.uuid)] if kb.last_indexing_job else []
            if kb.uuid in fresh_uuids and kb.uuid not in recent:
                continue  # its list could not be read: the KB sits this cycle out
            observed.append(kb)
            jobs.extend(latest + recent.get(kb.uuid, []))
        jobs.extend(await self._missing_jobs(known, observed, jobs))
        previous = await self.store.load({job.uuid for job in jobs})
        return tuple(observed), tuple(jobs), replace(previous, baseline=known.baseline), account

    async def _load_baseline(self) -> datetime | None:
        """The first run's baseline (never changes once set: read from the store once)."""
        if self._baseline is None:
            raw = await self.meta.get_meta(BASELINE_KEY)
            self._baseline = datetime.fromisoformat(raw) if raw else None
        return self._baseline

    def _watched(self, kbs: Sequence[KnowledgeBase]) -> list[KnowledgeBase]:
        """The KBs the config names (with their configured names), or every KB of the account.

        A configured KB the account lacks is left out here; `AccountCheck` says so.
        """
        if not self.settings.watched:
            return list(kbs)
        by_uuid = {kb.uuid: kb for kb in kbs}
        return [
            replace(by_uuid[wanted.uuid], name=wanted.name or by_uuid[wanted.uuid].name)
            for wanted in self.settings.watched
            if wanted.uuid in by_uuid
        ]

    async def _recent_jobs(
        self, fresh: Sequence[KnowledgeBase], account_kbs: int
    ) -> dict[str, list[Job]]:
        """The latest jobs of each KB whose latest job is new, so nothing between polls is missed.

        One latest-15 list per such KB, or, when that would cost more requests, the
        account-wide job list once (it holds at most 15 jobs per KB). A KB whose jobs could
        not be read is absent from the answer and sits this cycle out: its new job is still
        "new" next cycle.
        """
        if not fresh:
            return {}
        account_pages = -(-_KB_JOB_WINDOW * account_kbs // self.settings.per_page)
        if len(fresh) > account_pages:
            try:
                everything = await self.source.list_jobs()
            except SourceError as exc:
                log.warning("account_jobs_fetch_failed", error=str(exc))
                return {}
            wanted: dict[str, list[Job]] = {kb.uuid: [] for kb in fresh}
            for job in everything:
                if job.knowledge_base_uuid in wanted:
                    wanted[job.knowledge_base_uuid].append(job)
            return wanted
        found: dict[str, list[Job]] = {}
        for kb in fresh:
            try:
                found[kb.uuid] = [
                    _owned(j, kb.uuid) for j in await self.source.list_kb_jobs(kb.uuid)
                ]
            except SourceError as exc:
                log.warning("kb_jobs_fetch_failed", kb=kb.uuid, error=str(exc))
        return found

    async def _missing_jobs(
        self, known: WatchState, kbs: Sequence[KnowledgeBase], seen: Sequence[Job]
    ) -> list[Job]:
        """Jobs we follow that no list showed this time (pushed out of the window): ask for each."""
        visible = {kb.uuid for kb in kbs}
        seen_uuids = {job.uuid for job in seen}
        found = []
        for state in known.jobs.values():
            if state.done or state.uuid in seen_uuids or state.kb_uuid not in visible:
                continue
            try:
                found.append(_owned(await self.source.get_job(state.uuid), state.kb_uuid))
            except SourceError as exc:
                log.warning("job_fetch_failed", kb=state.kb_uuid, job=state.uuid, error=str(exc))
        return found

    async def _with_details(self, transitions: tuple[Transition, ...]) -> tuple[Transition, ...]:
        """Failed and partial jobs get their data sources' error details (one request each)."""
        enriched = []
        for t in transitions:
            job = t.job
            if t.kind in _NEEDS_DETAILS and job is not None and not _has_errors(job):
                try:
                    sources = await self.source.list_job_data_sources(job.uuid)
                    t = replace(t, job=replace(job, data_source_jobs=tuple(sources)))
                except SourceError as exc:
                    log.warning("job_details_failed", kb=t.kb_uuid, job=job.uuid, error=str(exc))
            enriched.append(t)
        return tuple(enriched)

    # --- record ----------------------------------------------------------------------------

    async def _record(
        self,
        cycle_id: str,
        now: datetime,
        previous: WatchState,
        state: WatchState,
        transitions: tuple[Transition, ...],
        meta: dict[str, str | None] | None = None,
    ) -> None:
        change = Change(
            cycle_id=cycle_id,
            at=now,
            kbs=tuple(kb for u, kb in state.kbs.items() if previous.kbs.get(u) != kb),
            jobs=tuple(job for u, job in state.jobs.items() if previous.jobs.get(u) != job),
            transitions=transitions,
            deliveries=route(transitions, self.settings.rules),
        )
        meta = dict(meta or {})
        if state.baseline is not None and state.baseline != previous.baseline:
            meta[BASELINE_KEY] = state.baseline.isoformat()  # with the first run's state
        await self.store.record(change, meta=meta)
        self._baseline = state.baseline

    async def _api_outcome(self, cycle_id: str, now: Instant, error: str | None) -> None:
        """Track the API's health; record `api_unreachable` / `api_recovered` with it when due."""
        previous = ApiHealth.decode(await self.meta.get_meta(_API_HEALTH_KEY))
        after = self.settings.api_unreachable_after
        health, transitions = api_health(previous, error, now, after)
        if health == previous:
            return
        change = Change(
            cycle_id=cycle_id,
            at=now.wall,
            transitions=transitions,
            deliveries=route(transitions, self.settings.rules),
        )
        await self.store.record(change, meta={_API_HEALTH_KEY: health.encode()})
        for t in transitions:
            log.warning(t.kind.value, event_id=t.event_id, detail=t.detail)

    # --- deliver ---------------------------------------------------------------------------

    async def deliver(self) -> tuple[tuple[str, SettleReason], ...]:
        """Send what is due from the outbox (see `watcher.service.dispatch`); routes in parallel."""
        return await self.dispatcher.deliver()


def _has_new_job(kb: KnowledgeBase, known: WatchState) -> bool:
    """Whether a KB seen before reports a latest job other than the one we knew, or a KB
    created since the first run has jobs (all of them news). First sight of any other KB is
    not: its history is recorded silently, and only its latest job matters."""
    prior = known.kbs.get(kb.uuid)
    latest = kb.last_indexing_job
    if latest is None:
        return False
    if prior is None:
        return is_new_kb(kb, known)
    return prior.last_job_uuid != latest.uuid


def _owned(job: Job, kb_uuid: str) -> Job:
    """The KB a job was listed under, when the job object itself does not say."""
    return job if job.knowledge_base_uuid else replace(job, knowledge_base_uuid=kb_uuid)


def _has_errors(job: Job) -> bool:
    return any(ds.error_msg or ds.error_details for ds in job.data_source_jobs)


def _describe(exc: SourceError) -> str:
    if isinstance(exc, ApiStatusError):
        return f"HTTP {exc.status} {exc.api_id or ''}".strip()
    return str(exc)

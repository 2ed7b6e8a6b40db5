"""One poll cycle, top to bottom: fetch, detect, record, decide, deliver.

This is the only orchestrator. It talks to the edges through the Protocols of
`watcher.ports`, calls the pure core, and is the boundary where a failure of one knowledge
base or one delivery is logged and survived.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from watcher.apihealth import ApiHealth, api_health
from watcher.decide import (
    RetryPolicy,
    RouteRule,
    Send,
    SettleReason,
    earlier_targets,
    failed_targets,
    hold,
    plan,
    route,
    settle,
)
from watcher.detect import detect
from watcher.errors import ApiStatusError, SourceError
from watcher.model import EventKind, Job, KnowledgeBase, WatchedKb
from watcher.ports import MetaStore, Notifier, Outbox, Source, StateStore
from watcher.render import DASHBOARD
from watcher.state import (
    Change,
    DeliveryState,
    Observation,
    Policy,
    SendResult,
    Settlement,
    Transition,
    WatchState,
)

log = structlog.get_logger(__name__)

_NEEDS_DETAILS = frozenset({EventKind.FAILED, EventKind.PARTIAL})
_KB_JOB_WINDOW = 15  # DigitalOcean keeps the latest 15 jobs of a KB, in every list
_API_HEALTH_KEY = "api_health"


@dataclass(frozen=True, slots=True)
class CycleSettings:
    """What a cycle needs from the configuration."""

    watched: tuple[WatchedKb, ...] = ()
    policy: Policy = field(default_factory=Policy)
    rules: tuple[RouteRule, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    storm_threshold: int = 5
    api_unreachable_after: timedelta = timedelta(minutes=10)
    dashboard: str = DASHBOARD
    delivery_batch: int = 200
    per_page: int = 200


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
    ) -> None:
        self.source, self.store, self.outbox, self.meta = source, store, outbox, meta
        self.notifier, self.settings, self.clock = notifier, settings, clock
        self._unknown_seen: set[str] = set()

    async def run(self) -> CycleReport:
        """Poll once, record what changed, deliver what is due; raises only on store failure."""
        cycle_id = uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(cycle_id=cycle_id)
        try:
            report = await self._poll(cycle_id)
            delivered = await self.deliver()
            return replace(report, deliveries=delivered)
        finally:
            structlog.contextvars.unbind_contextvars("cycle_id")

    async def _poll(self, cycle_id: str) -> CycleReport:
        now = self.clock()
        try:
            observation, previous = await self._observe(now)
        except SourceError as exc:
            await self._api_outcome(cycle_id, now, _describe(exc))
            log.warning("cycle_fetch_failed", error=str(exc), retryable=exc.retryable)
            return CycleReport(cycle_id=cycle_id, ok=False, error=str(exc))
        self._log_unknown_values(observation)
        state, transitions = detect(previous, observation, now, self.settings.policy)
        transitions = await self._with_details(transitions)
        # `api_recovered` first, so that its alert comes before the news it lets through.
        await self._api_outcome(cycle_id, now, None)
        await self._record(cycle_id, now, previous, state, transitions)
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

    def _log_unknown_values(self, observation: Observation) -> None:
        """Enum values the API added after us: kept on the job, never alerted, logged once each."""
        for job in observation.jobs:
            for value in sorted(job.unknown_values - self._unknown_seen):
                self._unknown_seen.add(value)
                log.warning(
                    "api_unknown_value", value=value, kb=job.knowledge_base_uuid, job=job.uuid
                )

    # --- fetch -----------------------------------------------------------------------------

    async def _observe(self, now: datetime) -> tuple[Observation, WatchState]:
        account = await self.source.list_knowledge_bases()
        kbs = self._watched(account)
        known = await self.store.load(())
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
        return Observation(at=now, kbs=tuple(observed), jobs=tuple(jobs)), previous

    def _watched(self, kbs: Sequence[KnowledgeBase]) -> list[KnowledgeBase]:
        """The KBs the config names (with their configured names), or every KB of the account."""
        if not self.settings.watched:
            return list(kbs)
        by_uuid = {kb.uuid: kb for kb in kbs}
        watched = []
        for wanted in self.settings.watched:
            kb = by_uuid.get(wanted.uuid)
            if kb is None:
                log.warning("knowledge_base_not_found", kb=wanted.uuid)
                continue
            watched.append(replace(kb, name=wanted.name or kb.name))
        return watched

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
    ) -> None:
        change = Change(
            cycle_id=cycle_id,
            at=now,
            kbs=tuple(kb for u, kb in state.kbs.items() if previous.kbs.get(u) != kb),
            jobs=tuple(job for u, job in state.jobs.items() if previous.jobs.get(u) != job),
            transitions=transitions,
            deliveries=route(transitions, self.settings.rules),
        )
        await self.store.record(change)

    async def _api_outcome(self, cycle_id: str, now: datetime, error: str | None) -> None:
        """Track the API's health; record `api_unreachable` / `api_recovered` with it when due."""
        previous = _decode_health(await self.meta.get_meta(_API_HEALTH_KEY))
        after = self.settings.api_unreachable_after
        health, transitions = api_health(previous, error, now, after)
        if health == previous:
            return
        change = Change(
            cycle_id=cycle_id,
            at=now,
            transitions=transitions,
            deliveries=route(transitions, self.settings.rules),
        )
        await self.store.record(change, meta={_API_HEALTH_KEY: _encode_health(health)})
        for t in transitions:
            log.warning(t.kind.value, event_id=t.event_id, detail=t.detail)

    # --- deliver ---------------------------------------------------------------------------

    async def deliver(self) -> tuple[tuple[str, SettleReason], ...]:
        """Send what is due from the outbox; routes are served in parallel, each in order."""
        now = self.clock()
        items = await self.outbox.claim_due(now, self.settings.delivery_batch)
        if not items:
            return ()
        sends = plan(items, self.settings.storm_threshold, self.settings.dashboard)
        by_route: dict[str, list[Send]] = {}
        for send in sends:
            by_route.setdefault(send.route, []).append(send)
        results = await asyncio.gather(*(self._deliver_route(s) for s in by_route.values()))
        return tuple(outcome for per_route in results for outcome in per_route)

    async def _deliver_route(self, sends: list[Send]) -> list[tuple[str, SettleReason]]:
        """Send a route's rows in order. After a retryable failure the URLs that failed are
        left out of the rest of this cycle (the others still get their alerts, once); when
        the route failed as a whole, its other rows wait for the backoff, unspent."""
        outcomes: list[tuple[str, SettleReason]] = []
        down: frozenset[int] = frozenset()
        failure: Settlement | None = None
        for index, send in enumerate(sends):
            if failure is not None and not down:
                await self._postpone(sends[index:], failure)
                break
            send = replace(send, skip=send.skip | down)
            result = await self._send(send)
            if failure is not None and (result.ok or not result.targets):
                settled = hold(send, result, failure)  # reached all it tried; not the down URLs
            else:
                settled = settle(send, result, self.clock(), self.settings.retry)
            await self.outbox.settle([s for s, _ in settled])
            outcomes.extend((send.route, reason) for _, reason in settled)
            _log_delivery(send, result, settled)
            if not result.ok and not result.permanent:
                failure = failure or settled[0][0]
                down = down | failed_targets(result)
        return outcomes

    async def _send(self, send: Send) -> SendResult:
        try:
            return await self.notifier.send(send.route, send.message, send.skip)
        except Exception as exc:  # a notifier bug must not lose the row: retry it later
            log.exception("delivery_crashed", route=send.route)
            return SendResult(ok=False, error=f"notifier error: {type(exc).__name__}")

    async def _postpone(self, sends: Sequence[Send], failed: Settlement) -> None:
        """The route is failing: put the rest of its rows back without spending an attempt."""
        later = [
            Settlement(
                outbox_id=item.id,
                state=DeliveryState.PENDING,
                at=failed.at,
                attempts=item.attempts,
                next_attempt_at=failed.next_attempt_at,
                error=item.last_error,
                targets=earlier_targets(item),
            )
            for send in sends
            for item in send.items
        ]
        if later:
            await self.outbox.settle(later)


def _has_new_job(kb: KnowledgeBase, known: WatchState) -> bool:
    """Whether a KB seen before reports a latest job other than the one we knew (first sight
    of a KB is not: its history is recorded silently, and only its latest job matters)."""
    prior = known.kbs.get(kb.uuid)
    latest = kb.last_indexing_job
    return latest is not None and prior is not None and prior.last_job_uuid != latest.uuid


def _owned(job: Job, kb_uuid: str) -> Job:
    """The KB a job was listed under, when the job object itself does not say."""
    return job if job.knowledge_base_uuid else replace(job, knowledge_base_uuid=kb_uuid)


def _has_errors(job: Job) -> bool:
    return any(ds.error_msg or ds.error_details for ds in job.data_source_jobs)


def _describe(exc: SourceError) -> str:
    if isinstance(exc, ApiStatusError):
        return f"HTTP {exc.status} {exc.api_id or ''}".strip()
    return str(exc)


def _log_delivery(
    send: Send, result: SendResult, settled: Sequence[tuple[Settlement, SettleReason]]
) -> None:
    event_ids = [item.transition.event_id for item in send.items]
    reason = settled[0][1] if settled else None
    if reason is SettleReason.HELD:
        log.info(
            "alert_partly_delivered", route=send.route, events=event_ids, skipped=sorted(send.skip)
        )
    elif result.ok:
        log.info("alert_delivered", route=send.route, events=event_ids)
    elif reason in (SettleReason.EXPIRED, SettleReason.PERMANENT_FAILURE):
        log.error(
            "alert_dead_lettered",
            route=send.route,
            events=event_ids,
            reason=reason,
            error=result.error,
        )
    else:
        log.warning("alert_failed", route=send.route, events=event_ids, error=result.error)


def _encode_health(health: ApiHealth) -> str:
    return json.dumps(
        {
            "failing_since": health.failing_since.isoformat() if health.failing_since else None,
            "alerted": health.alerted,
            "last_error": health.last_error,
        }
    )


def _decode_health(raw: str | None) -> ApiHealth:
    if not raw:
        return ApiHealth()
    data = json.loads(raw)
    since = data.get("failing_since")
    return ApiHealth(
        failing_since=datetime.fromisoformat(since) if since else None,
        alerted=bool(data.get("alerted")),
        last_error=data.get("last_error"),
    )

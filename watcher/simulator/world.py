"""The simulated account: knowledge bases, their jobs, and the rules DigitalOcean applies.

Rules kept here: one active (pending or running) job per knowledge base, a start while one
is active is skipped; only the 15 most recent jobs of a knowledge base are kept (older ones
vanish from every list and answer 404); lists are newest first. A deleted knowledge base and
its jobs vanish from every list and answer 404 from then on; a hidden job does the same for
a while, then comes back as if nothing happened (an eventually consistent read). Every view
is rendered from the job plans at the instant asked for, so views are exact at any instant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watcher.simulator.clock import rfc3339
from watcher.simulator.lifecycle import JobPlan, Moment, SourcePlan
from watcher.simulator.scenario import (
    DataSourceSpec,
    JobSpec,
    KbSpec,
    Scenario,
    ScheduleSpec,
    StartDefaults,
)
from watcher.simulator.wire import job_at, sources_at

JsonObject = dict[str, Any]
NAMESPACE = uuid.UUID("0b6f3e52-5c1d-4d0e-9a53-1f5d7a0c2b9e")
RETENTION = 15


class NotFound(LookupError):
    """No knowledge base or (retained) job has that uuid."""


class KbBusy(RuntimeError):
    """The knowledge base already has a pending or running job; the new one was skipped."""

    def __init__(self, kb_uuid: str, job_uuid: str) -> None:
        self.kb_uuid = kb_uuid
        self.job_uuid = job_uuid
        super().__init__(f"knowledge base {kb_uuid} already runs indexing job {job_uuid}")


class NotCancellable(RuntimeError):
    """The job is already over."""


@dataclass(frozen=True, slots=True)
class Kb:
    """A knowledge base with its data sources (by key) and stable identifiers."""

    uuid: str
    key: str
    name: str
    region: str
    created_at: datetime
    sources: dict[str, SourcePlan]
    project_id: str
    database_id: str


@dataclass(frozen=True, slots=True)
class JobMoment:
    """One lifecycle moment of one job, in simulated time."""

    job_uuid: str
    kb_uuid: str
    moment: Moment
    at: datetime


class World:
    """Every knowledge base and job of the account, and the DigitalOcean rules over them."""

    def __init__(self, scenario: Scenario, t0: datetime, retention: int = RETENTION) -> None:
        self.name = scenario.name
        self.t0 = t0
        self.retention = retention
        self._kbs: dict[str, Kb] = {}
        self._kb_keys: dict[str, str] = {}
        self._jobs: dict[str, JobPlan] = {}
        self._by_kb: dict[str, list[JobPlan]] = {}
        self._cancels: dict[str, datetime] = {}
        self.job_keys: dict[str, str] = {}
        self._shifts = 0
        self._deleted: dict[str, datetime] = {}
        self._hidden: dict[str, list[tuple[datetime, datetime | None]]] = {}
        self.schedules: dict[str, ScheduleSpec] = {}  # by KB uuid (see `simulator.extras`)
        self.schedules_off: dict[str, datetime] = {}
        for spec in scenario.knowledge_bases:
            self._add_kb(spec)

    def _uuid(self, *parts: object) -> str:
        return str(uuid.uuid5(NAMESPACE, "/".join([self.name, *map(str, parts)])))

    def _add_kb(self, spec: KbSpec) -> Kb:
        sources = {
            ds.key: SourcePlan(ds.uuid or self._uuid("ds", spec.key, ds.key), ds.items)
            for ds in spec.data_sources
        }
        kb = Kb(
            uuid=spec.uuid or self._uuid("kb", spec.key),
            key=spec.key,
            name=spec.name,
            region=spec.region,
            created_at=self.t0 + timedelta(seconds=spec.created),
            sources=sources,
            project_id=self._uuid("project"),
            database_id=self._uuid("database", spec.region),
        )
        self._kbs[kb.uuid] = kb
        self._kb_keys[kb.key] = kb.uuid
        if spec.schedule is not None:
            self.schedules[kb.uuid] = spec.schedule
        self._by_kb[kb.uuid] = []
        return kb

    def kb_uuid(self, key: str) -> str:
        """The uuid of the knowledge base with scenario key `key`."""
        return self._kb_keys[key]

    def active_job(self, kb_uuid: str, at: datetime) -> JobPlan | None:
        """The job of the knowledge base that is pending or running at `at`, if any."""
        for plan in reversed(self._by_kb[kb_uuid]):
            if plan.is_active(at, self._cancels.get(plan.uuid)):
                return plan
        return None

    def start_job(self, spec: JobSpec, at: datetime) -> JobPlan:
        """Create the job `spec` describes at `at`; raises KbBusy if one is already active."""
        kb = self._kbs[self._kb_keys[spec.kb]]
        if (busy := self.active_job(kb.uuid, at)) is not None:
            raise KbBusy(kb.uuid, busy.uuid)
        keys = spec.data_sources or tuple(kb.sources)
        seq = len(self._jobs)
        plan = JobPlan(
            uuid=self._uuid("job", seq),
            kb_uuid=kb.uuid,
            seq=seq,
            created_at=at,
            sources=tuple(kb.sources[k] for k in keys),
            pending_s=spec.pending,
            run_s=spec.run,
            outcome=spec.outcome,
            stalls=spec.stalls,
            tokens_per_item=spec.tokens_per_item,
            error_msg=spec.error_msg,
            error_details=spec.error_details,
        )
        self._jobs[plan.uuid] = plan
        self._by_kb[kb.uuid].append(plan)
        if spec.id is not None:
            self.job_keys[spec.id] = plan.uuid
        return plan

    def start_by_api(
        self, kb_uuid: str, source_uuids: list[str], at: datetime, defaults: StartDefaults
    ) -> JobPlan:
        """Start a job as `POST /v2/gen-ai/indexing_jobs` does (empty list: every source)."""
        kb = self._kbs.get(kb_uuid)
        if kb is None:
            raise NotFound(kb_uuid)
        by_uuid = {source.uuid: key for key, source in kb.sources.items()}
        if unknown := [u for u in source_uuids if u not in by_uuid]:
            raise ValueError(f"unknown data source uuids for this knowledge base: {unknown}")
        spec = JobSpec(
            kb=kb.key,
            data_sources=tuple(by_uuid[u] for u in source_uuids),
            pending=defaults.pending,
            run=defaults.run,
            outcome=defaults.outcome,
        )
        return self.start_job(spec, at)

    def cancel(self, job_uuid: str, at: datetime) -> None:
        """Cancel a pending or running job at `at`."""
        plan = self._retained(job_uuid, at)
        if not plan.is_active(at, self._cancels.get(job_uuid)):
            raise NotCancellable(f"indexing job {job_uuid} is not pending or running")
        self._cancels[job_uuid] = at

    def delete_kb(self, key: str, at: datetime) -> None:
        """Delete the knowledge base `key` at `at`: it and its jobs are gone from then on."""
        self._deleted.setdefault(self._kb_keys[key], at)

    def disable_schedule(self, key: str, at: datetime) -> None:
        """Turn the schedule of the knowledge base `key` off at `at`."""
        self.schedules_off.setdefault(self._kb_keys[key], at)

    def schedule_uuid(self, kb_uuid: str) -> str:
        """The stable uuid of a knowledge base's schedule."""
        return self._uuid("schedule", kb_uuid)

    def exists(self, kb_uuid: str, now: datetime) -> bool:
        """Whether the knowledge base exists at `now` (created, not deleted)."""
        kb = self._kbs.get(kb_uuid)
        return kb is not None and kb.created_at <= now and self._exists(kb_uuid, now)

    def hide_job(self, job_uuid: str, at: datetime, until: datetime | None) -> None:
        """Make a job vanish from every answer from `at` until `until` (None: for good)."""
        if job_uuid not in self._jobs:
            raise NotFound(job_uuid)
        self._hidden.setdefault(job_uuid, []).append((at, until))

    def _exists(self, kb_uuid: str, now: datetime) -> bool:
        deleted = self._deleted.get(kb_uuid)
        return deleted is None or now < deleted

    def _is_hidden(self, job_uuid: str, now: datetime) -> bool:
        return any(
            start <= now and (end is None or now < end)
            for start, end in self._hidden.get(job_uuid, ())
        )

    def shift_lists(self, at: datetime) -> str:
        """Insert a new knowledge base with a fresh job at the head of both lists."""
        self._shifts += 1
        key = f"late-arrival-{self._shifts}"
        pages = (DataSourceSpec("pages", 20),)
        kb = self._add_kb(KbSpec(key, key, pages, created=(at - self.t0).total_seconds()))
        self.start_job(JobSpec(kb=key, pending=1.0, run=10.0), at)
        return kb.uuid

    def _visible(self, kb_uuid: str, now: datetime) -> list[JobPlan]:
        """The KB's retained jobs that exist at `now`, newest first."""
        if not self._exists(kb_uuid, now):
            return []
        existing = [
            p
            for p in self._by_kb[kb_uuid]
            if p.created_at <= now and not self._is_hidden(p.uuid, now)
        ]
        existing.sort(key=lambda p: (p.created_at, p.seq), reverse=True)
        return existing[: self.retention]

    def _retained(self, job_uuid: str, now: datetime) -> JobPlan:
        plan = self._jobs.get(job_uuid)
        if plan is None or plan not in self._visible(plan.kb_uuid, now):
            raise NotFound(job_uuid)
        return plan

    def _render(self, plan: JobPlan, now: datetime) -> JsonObject:
        return job_at(plan, now, self._cancels.get(plan.uuid))

    def _render_kb(self, kb: Kb, now: datetime) -> JsonObject:
        jobs = self._visible(kb.uuid, now)
        body: JsonObject = {
            "uuid": kb.uuid,
            "name": kb.name,
            "region": kb.region,
            "project_id": kb.project_id,
            "database_id": kb.database_id,
            "embedding_model_uuid": "22653204-79ed-11ef-bf8f-4e013e2ddde4",
            "created_at": rfc3339(kb.created_at),
            "updated_at": rfc3339(max([kb.created_at, *(j.created_at for j in jobs[:1])])),
            "tags": [],
            "is_public": False,
            "user_id": "18293",
        }
        if jobs:
            body["last_indexing_job"] = self._render(jobs[0], now)
        return body

    def knowledge_bases(self, now: datetime) -> list[JsonObject]:
        """Every knowledge base that exists at `now`, newest first."""
        return self.kb_page(now, slice(None))[1]

    def kb_page(self, now: datetime, window: slice) -> tuple[int, list[JsonObject]]:
        """How many knowledge bases exist at `now`, and those in `window` (newest first)."""
        kbs = [
            kb for kb in self._kbs.values() if kb.created_at <= now and self._exists(kb.uuid, now)
        ]
        kbs.sort(key=lambda kb: (kb.created_at, kb.key), reverse=True)
        return len(kbs), [self._render_kb(kb, now) for kb in kbs[window]]

    def knowledge_base(self, kb_uuid: str, now: datetime) -> JsonObject:
        kb = self._kbs.get(kb_uuid)
        if kb is None or kb.created_at > now or not self._exists(kb_uuid, now):
            raise NotFound(kb_uuid)
        return self._render_kb(kb, now)

    def kb_jobs(self, kb_uuid: str, now: datetime) -> list[JsonObject]:
        """The latest (at most 15) jobs of one knowledge base, newest first."""
        self.knowledge_base(kb_uuid, now)
        return [self._render(plan, now) for plan in self._visible(kb_uuid, now)]

    def jobs(self, now: datetime) -> list[JsonObject]:
        """Every retained job of the account, newest first."""
        return self.job_page(now, slice(None))[1]

    def job_page(self, now: datetime, window: slice) -> tuple[int, list[JsonObject]]:
        """How many jobs the account retains at `now`, and those in `window` (newest first)."""
        plans = [p for kb in self._kbs for p in self._visible(kb, now)]
        plans.sort(key=lambda p: (p.created_at, p.seq), reverse=True)
        return len(plans), [self._render(plan, now) for plan in plans[window]]

    def job(self, job_uuid: str, now: datetime) -> JsonObject:
        return self._render(self._retained(job_uuid, now), now)

    def job_sources(self, job_uuid: str, now: datetime) -> list[JsonObject]:
        plan = self._retained(job_uuid, now)
        return sources_at(plan, now, self._cancels.get(job_uuid))

    def moments(self, now: datetime) -> list[JobMoment]:
        """Every lifecycle moment reached by `now`, in time order (none after a KB's deletion)."""
        found = [
            JobMoment(plan.uuid, plan.kb_uuid, moment, at)
            for plan in self._jobs.values()
            for moment, at in plan.moments(self._cancels.get(plan.uuid))
            if at <= now and self._exists(plan.kb_uuid, at)
        ]
        found.sort(key=lambda m: m.at)
        return found

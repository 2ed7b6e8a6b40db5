"""Remediation in the shell: record the intent with the stall, then cancel and reindex, report.

`Remedies.plan` runs inside the cycle before it records: it returns the meta value that records
this cycle's intents (and dry runs, give-ups), so they are written in the same transaction as
the stall. `Remedies.act` runs after that record: the write calls for each intent, then one
record of the `remediated` events, their outbox rows and the settled intents. A watcher that
stopped between the two records leaves an intent open: its successor reports it as unknown
(`watcher.core.remedy.dangling`) and never repeats the calls. `cancel_call` / `start_call`
turn the client's answers into `Call` values, for the CLI too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

import structlog

from watcher.core import remedy
from watcher.core.decide import RouteRule, route
from watcher.core.errors import ApiStatusError, Forbidden, SourceError
from watcher.core.model import EventKind, Job
from watcher.core.ports import MetaStore, StateStore
from watcher.core.remedy import Call, CallResult, OnStalled, RemedyPolicy, RemedyRecord, Step
from watcher.core.state import Change, Transition

log = structlog.get_logger(__name__)


class JobWriter(Protocol):
    """The two write operations (`watcher.edges.api.client.ApiClient`): `Forbidden` when the
    token lacks `genai:update` (cancel) or `genai:create` (start), other `SourceError`s."""

    async def cancel_job(self, job_uuid: str) -> Job:
        """`PUT /v2/gen-ai/indexing_jobs/{uuid}/cancel`; the job as the API then reports it."""
        ...

    async def create_job(self, kb_uuid: str, data_source_uuids: Iterable[str] = ()) -> Job:
        """`POST /v2/gen-ai/indexing_jobs`; the job started (never sent twice)."""
        ...


async def cancel_call(writer: JobWriter, job_uuid: str) -> Call:
    """Cancel `job_uuid`; the result as a `Call` (a finished job's refusal is `ENDED`)."""
    try:
        job = await writer.cancel_job(job_uuid)
    except Forbidden as exc:
        return Call(CallResult.FORBIDDEN, str(exc))
    except ApiStatusError as exc:
        if exc.status == 404:
            return Call(CallResult.FAILED, _unknown(f"indexing job {job_uuid}", exc))
        ended = exc.status in (409, 422)
        return Call(CallResult.ENDED if ended else CallResult.FAILED, str(exc))
    except SourceError as exc:
        return Call(CallResult.FAILED, str(exc))
    return Call(CallResult.OK, job.status_text, job.uuid)


def _unknown(what: str, exc: ApiStatusError) -> str:
    """A 404 said as what it means to a person: this account has no such thing (a typo, a
    uuid of another account or team, or one deleted since), with the API's own words after."""
    return f"DigitalOcean knows no {what} on this token's account (HTTP 404); {exc}"


async def start_call(
    writer: JobWriter, kb_uuid: str, sources: Sequence[str] = (), running: str | None = None
) -> Call:
    """Start a job on `kb_uuid`; DigitalOcean's skip (409, or the answer naming the job
    `running` that is still going) is `SKIPPED`."""
    try:
        job = await writer.create_job(kb_uuid, sources)
    except Forbidden as exc:
        return Call(CallResult.FORBIDDEN, str(exc))
    except ApiStatusError as exc:
        if exc.status == 409:
            return Call(CallResult.SKIPPED, exc.api_message or str(exc))
        if exc.status == 404:
            what = f"knowledge base {kb_uuid}"
            if sources:
                what += f" or data source {', '.join(sources)} of it"
            return Call(CallResult.FAILED, _unknown(what, exc))
        return Call(CallResult.FAILED, str(exc))
    except SourceError as exc:
        return Call(CallResult.FAILED, str(exc))
    if running is not None and job.uuid == running:
        return Call(CallResult.SKIPPED, f"the answer named the running job {running}", job.uuid)
    return Call(CallResult.OK, job.status_text, job.uuid)


class Remedies:
    """Cancel-and-reindex of stalled jobs under `policy`, recorded in the store's meta."""

    def __init__(
        self,
        writer: JobWriter,
        store: StateStore,
        meta: MetaStore,
        policy: RemedyPolicy,
        rules: Sequence[RouteRule],
    ) -> None:
        self.writer, self.store, self.meta = writer, store, meta
        self.policy, self.rules = policy, tuple(rules)
        self._pending: tuple[RemedyRecord, ...] = ()
        self._sources: dict[str, tuple[str, ...]] = {}
        self._checked = False  # dangling intents are looked for once per process

    @property
    def on(self) -> bool:
        return self.policy.on_stalled is not OnStalled.NOTHING

    @property
    def may_have_work(self) -> bool:
        """Whether the next cycle may plan or make a call without a new stall: intents
        left dangling by an earlier process are looked for once, on the first cycle."""
        return self.on and (not self._checked or bool(self._pending))

    async def plan(self, transitions: Sequence[Transition]) -> dict[str, str | None]:
        """The meta value recording this cycle's decisions (empty: nothing to record)."""
        self._pending = ()
        stalls = [t for t in transitions if t.kind is EventKind.STALLED]
        if not self.on or (self._checked and not stalls):
            return {}
        records = remedy.decode(await self.meta.get_meta(remedy.REMEDIES_KEY))
        dangling = () if self._checked else remedy.dangling(records)
        self._checked = True
        added = remedy.plan(stalls, self.policy, records)
        self._sources = {t.job.uuid: t.job.data_source_uuids for t in stalls if t.job}
        self._pending = dangling + added
        if not added:
            return {}
        return {remedy.REMEDIES_KEY: remedy.encode(remedy.merge(records, added))}

    async def act(
        self, cycle_id: str, at: datetime, api_at: datetime | None, until: float | None = None
    ) -> int:
        """Make the calls of the intents planned, then record the `remediated` events; the
        number of events recorded. `until` (the event loop's clock, the cycle's deadline) ends
        the calls: one cut short is said unknown, those not yet sent are not sent."""
        if not self._pending:
            return 0
        done = [await self._settle(record, until) for record in self._pending]
        self._pending = ()
        records = remedy.merge(remedy.decode(await self.meta.get_meta(remedy.REMEDIES_KEY)), done)
        transitions = tuple(remedy.remediated(r, at, api_at) for r in done)
        change = Change(
            cycle_id, at, transitions=transitions, deliveries=route(transitions, self.rules)
        )
        try:
            await self.store.record(change, meta={remedy.REMEDIES_KEY: remedy.encode(records)})
        except BaseException:
            self._checked = False  # the intents stay open: the next cycle reports them unknown
            raise
        for r in done:
            log.warning("job_remediated", kb=r.kb_uuid, job=r.stalled_job, step=r.step.value)
        return len(transitions)

    async def _settle(self, record: RemedyRecord, until: float | None) -> RemedyRecord:
        if record.step is not Step.INTENT:
            return record  # dry run, give-up, unknown: said, not done
        if until is not None and asyncio.get_running_loop().time() >= until:
            return replace(record, step=Step.FAILED, detail=remedy.NOT_SENT)
        try:
            async with asyncio.timeout_at(until):
                cancel = await cancel_call(self.writer, record.stalled_job)
                start = None
                if cancel.result is CallResult.OK:
                    sources = self._sources.get(record.stalled_job, ())
                    start = await start_call(
                        self.writer, record.kb_uuid, sources, record.stalled_job
                    )
        except TimeoutError:
            return replace(record, step=Step.UNKNOWN, detail=remedy.LATE)
        return remedy.settle(record, cancel, start)


RemediesFactory = Callable[[StateStore, MetaStore], Remedies]

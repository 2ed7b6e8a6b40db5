"""The cycle's look past the jobs: each KB's schedule and freshness, and finished jobs' reports.

- `with_reports`: a finished job whose `is_report_available` is true gets its per-file report
  read (`ExtraSource.get_report`) and kept under the state directory (`ReportShelf`); failed
  and partial alerts carry a note of it (`watcher.core.report`). A report that cannot be read
  or kept is logged (never its URL) and the alert says so: it never holds the alert back.
- `judge`: the schedules due a read are read, then every observed KB is judged
  (`watcher.core.schedules`). What it remembers per KB goes into the store's meta table
  (`kb_watch/<uuid>`) in the cycle's own transaction, and into this object's memory once the
  cycle recorded it (`committed`).

A schedule that cannot be read is logged and read again at the next due time; its KB is still
judged on what was known.

Both are inside the cycle's `ReadsBudget` (`watcher.service.budget`): the schedules are
candidates of the share's plan next to the reads after the poll (never-read KBs first, then the
oldest reads; none at share 0); a report is charged to the share and needs the API's
reserve and the next poll's room: without them it is not kept, and the alert says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from watcher.core.clocks import Elapsed, Instant
from watcher.core.errors import SourceError, StoreError
from watcher.core.extras import (
    Candidate,
    Priority,
    ReadSpec,
    Scope,
    schedule_candidates,
    schedule_reads_due,
    targets_of,
)
from watcher.core.model import EventKind, Job, KnowledgeBase, WatchedKb
from watcher.core.nextdue import Deadline, DueKind, reads_deadline
from watcher.core.ports import ExtraSource, MetaStore
from watcher.core.report import ErrorSummary, ReportFate, report_note, summarise
from watcher.core.schedules import (
    KbWatch,
    Schedule,
    ScheduleRules,
    judge,
    quiet_until,
    read_schedule,
)
from watcher.core.state import Transition
from watcher.edges.hostclock import elapsed_now
from watcher.edges.reports import ReportShelf
from watcher.service.budget import REPORT, SCHEDULE, ReadsBudget

log = structlog.get_logger(__name__)

WATCH_KEY = "kb_watch/{uuid}"
_NOTED = frozenset({EventKind.FAILED, EventKind.PARTIAL})
KB_EVENTS = frozenset(
    {EventKind.SCHEDULE_MISSED, EventKind.SCHEDULE_DISABLED, EventKind.STALE, EventKind.FRESH}
)
"""The events this module adds: about a knowledge base, logged under their own names."""


@dataclass(frozen=True, slots=True)
class KbWatchSettings:
    """Schedules and freshness (`[schedules]`, `fresh_within`), and where reports are kept
    (None: reports are not fetched)."""

    rules: ScheduleRules = field(default_factory=ScheduleRules)
    read_every: timedelta = timedelta(hours=1)
    reports: ReportShelf | None = None


@dataclass(frozen=True, slots=True)
class Judged:
    """One cycle's judgement: its transitions, and the meta values to record with them."""

    transitions: tuple[Transition, ...] = ()
    meta: Mapping[str, str | None] = field(default_factory=dict)
    watches: Mapping[str, KbWatch] = field(default_factory=dict)


def _log_not_kept(why: str, jobs: Sequence[tuple[str | None, str]]) -> None:
    """One warning for the reports not kept this cycle for one reason (a storm of finished
    jobs under a full minute, or past the time for extra reads, is hundreds: one line)."""
    if len(jobs) == 1:
        ((kb, job),) = jobs
        log.warning("job_report_not_kept", kb=kb, job=job, error=why)
        return
    uuids = [job for _, job in jobs]
    log.warning("job_report_not_kept", jobs=len(uuids), first=uuids[:5], error=why)


class KbWatcher:
    """Schedules, freshness and reports of the watched KBs, for one cycle object."""

    def __init__(
        self,
        extra: ExtraSource | None,
        meta: MetaStore,
        settings: KbWatchSettings,
        watched: Sequence[WatchedKb] = (),
        *,
        budget: ReadsBudget | None = None,
        others: Callable[[Sequence[KnowledgeBase], Elapsed], list[Candidate]] | None = None,
        elapsed: Callable[[], Elapsed] = elapsed_now,
    ) -> None:
        """`budget`: the cycle's (None: schedules at their own cadence, reports unbounded);
        `others`: the candidates of the reads after the poll, that the schedules compete with."""
        self.extra, self.meta, self.settings = extra, meta, settings
        self.budget, self.others, self.elapsed = budget, others, elapsed
        self.names = {kb.uuid: kb.name for kb in watched if kb.name}
        self._watches: dict[str, KbWatch] = {}
        self._read_at: dict[str, Elapsed] = {}
        # per KB, a watch `judge` left unchanged, its jobs, and until when (API clock): see
        # `watcher.core.schedules.quiet_until`
        self._quiet: dict[str, tuple[KbWatch, tuple[Job, ...], datetime | None]] = {}
        self.quiet_skips = 0  # KB judgements left out so (for tests and profiles)

    async def with_reports(
        self, transitions: Sequence[Transition], until: float
    ) -> tuple[Transition, ...]:
        """Finished jobs with a report get it kept; failed and partial ones say so. Reads
        end by `until` (the event loop's clock): a report not kept by then is told as such."""
        shelf = self.settings.reports
        if self.extra is None or shelf is None:
            return tuple(transitions)
        out = []
        not_kept: dict[str, list[tuple[str | None, str]]] = {}  # why -> (kb, job)
        for t in transitions:
            job = t.job
            if job is not None and t.kind.is_terminal and job.is_report_available:
                fate, summary, why = await self._keep(job.uuid, t.kb_uuid, shelf, until)
                if why is not None:
                    not_kept.setdefault(why, []).append((t.kb_uuid, job.uuid))
                if t.kind in _NOTED:
                    t = replace(t, report=report_note(job.uuid, fate, summary))
            out.append(t)
        for why, jobs in not_kept.items():
            _log_not_kept(why, jobs)
        return tuple(out)

    async def _keep(
        self, job_uuid: str, kb_uuid: str | None, shelf: ReportShelf, until: float
    ) -> tuple[ReportFate, ErrorSummary | None, str | None]:
        """The report's fate, its summary when kept, and why it was not (logged once a cycle
        for every report not kept for that reason: `_log_not_kept`)."""
        assert self.extra is not None
        now = self.elapsed()
        if self.budget is not None and not self.budget.allowed(REPORT, now):
            why = self.budget.last_wait.get(REPORT)
            return ReportFate.NO_ROOM, None, f"no room in the API budget ({why})"
        try:
            async with asyncio.timeout_at(until):
                if self.budget is None:
                    data = await self.extra.get_report(job_uuid)
                else:
                    with self.budget.measure(REPORT, now):
                        data = await self.extra.get_report(job_uuid)
            await shelf.keep(job_uuid, data)
        except TimeoutError:
            return ReportFate.NOT_KEPT, None, "time for extra reads over"
        except (SourceError, StoreError, ValueError) as exc:
            return ReportFate.NOT_KEPT, None, str(exc)
        log.info("job_report_kept", kb=kb_uuid, job=job_uuid, bytes=len(data))
        # Up to 32 MiB of CSV: seconds of parsing, off the event loop (leases, health, delivery).
        return ReportFate.KEPT, await asyncio.to_thread(summarise, data), None

    async def judge(
        self,
        kbs: Sequence[KnowledgeBase],
        jobs_by_kb: Mapping[str, Sequence[Job]],
        now: Instant,
        until: float,
    ) -> Judged:
        """Read the schedules due, judge every KB of `kbs`; nothing is remembered until
        `committed` is called with the result."""
        transitions: list[Transition] = []
        meta: dict[str, str | None] = {}
        watches: dict[str, KbWatch] = {}
        known = self._watches
        befores = {kb.uuid: known.get(kb.uuid) or await self._watch(kb.uuid, now) for kb in kbs}
        read = await self._read_due(kbs, now, until)
        rules = self.settings.rules
        for kb in kbs:
            name = kb.name or self.names.get(kb.uuid)
            before = watch = befores[kb.uuid]
            jobs = jobs_by_kb.get(kb.uuid, ())
            if kb.uuid not in read and kb.uuid in known and self._still_quiet(watch, jobs, now):
                self.quiet_skips += 1
                continue  # judged on the same watch and jobs, and no deadline of it came
            if kb.uuid in read:
                watch, found = read_schedule(watch, read[kb.uuid], now, name)
                transitions += found
            watch, found = judge(watch, jobs, now, rules, name)
            transitions += found
            if watch is before and not found:
                self._quiet[kb.uuid] = (watch, tuple(jobs), quiet_until(watch, rules))
            if watch != before or kb.uuid not in self._watches:
                meta[WATCH_KEY.format(uuid=kb.uuid)] = watch.encode()
                watches[kb.uuid] = watch
        return Judged(tuple(transitions), meta, watches)

    def _still_quiet(self, watch: KbWatch, jobs: Sequence[Job], now: Instant) -> bool:
        """Whether `judge` left this very watch unchanged on these very jobs (identity: a
        changed byte of the API's answer is a new object), and its deadline has not come
        (on the API's clock, as `judge` measures it)."""
        quiet = self._quiet.get(watch.kb_uuid)
        if quiet is None or quiet[0] is not watch or len(quiet[1]) != len(jobs):
            return False
        if any(a is not b for a, b in zip(quiet[1], jobs, strict=True)):
            return False
        return quiet[2] is None or now.api <= quiet[2]

    def deadlines(self, kbs: Sequence[KnowledgeBase], now: Instant) -> tuple[Deadline, ...]:
        """When judging `kbs` again may find something (a KB not left quiet by its last
        judgement: now; else its run's grace or freshness window ends, on the API's clock),
        and when the first schedule read comes due (elapsed clock)."""
        found: list[Deadline] = []
        ends: list[datetime] = []
        for kb in kbs:
            quiet = self._quiet.get(kb.uuid)
            if quiet is None:
                return (Deadline(DueKind.SCHEDULE),)
            if quiet[2] is not None:
                ends.append(quiet[2])
        if ends:
            found.append(Deadline(DueKind.SCHEDULE, api=min(ends)))
        if self.extra is not None:
            spec = ReadSpec(SCHEDULE, Scope.KB, self.settings.read_every, Priority.NORMAL)
            mine = schedule_candidates(spec, [kb.uuid for kb in kbs], self._read_at, now.elapsed)
            found += reads_deadline(mine, now.elapsed, needs_room=self.budget is not None)
        return tuple(found)

    def committed(self, judged: Judged) -> None:
        """The cycle recorded `judged`: remember its watches."""
        self._watches.update(judged.watches)

    async def _due(self, kbs: Sequence[KnowledgeBase], now: Instant) -> tuple[str, ...]:
        if self.extra is None:
            return ()
        uuids = [kb.uuid for kb in kbs]
        if self.budget is None:
            return schedule_reads_due(uuids, self._read_at, now.elapsed, self.settings.read_every)
        if self.budget.blocked(now.elapsed) is not None:
            return ()  # no schedule could be chosen: none is planned
        spec = ReadSpec(SCHEDULE, Scope.KB, self.settings.read_every, Priority.NORMAL)
        mine = schedule_candidates(spec, uuids, self._read_at, now.elapsed)
        others = self.others(kbs, now.elapsed) if self.others is not None else []
        return targets_of(self.budget.plan(mine + others, now.elapsed), SCHEDULE)

    async def _read_due(
        self, kbs: Sequence[KnowledgeBase], now: Instant, until: float
    ) -> dict[str, Schedule | None]:
        """The schedules due, read one by one until `until` (the event loop's clock); the
        first read that fails ends this cycle's reads (the API is struggling: the polling
        comes first). A KB not reached is due again next cycle; one tried is due again at
        its next turn, failed or not."""
        found: dict[str, Schedule | None] = {}
        loop = asyncio.get_running_loop()
        for kb_uuid in await self._due(kbs, now):
            if loop.time() >= until or self.extra is None:
                break
            self._read_at[kb_uuid] = now.elapsed
            try:
                async with asyncio.timeout_at(until):
                    found[kb_uuid] = await self._get_schedule(kb_uuid, now.elapsed)
            except TimeoutError:
                log.warning("schedule_read_failed", kb=kb_uuid, error="time for extra reads over")
                break
            except SourceError as exc:
                log.warning("schedule_read_failed", kb=kb_uuid, error=str(exc))
                break
        return found

    async def _get_schedule(self, kb_uuid: str, now: Elapsed) -> Schedule | None:
        assert self.extra is not None
        if self.budget is None:
            return await self.extra.get_schedule(kb_uuid)
        with self.budget.measure(SCHEDULE, now):
            return await self.extra.get_schedule(kb_uuid)

    def _seed_read_at(self, stored: KbWatch, now: Instant) -> None:
        """A schedule another process (or boot) read is due at its turn, not at once: its
        read time (the API's clock) becomes a reading of this process's elapsed clock."""
        if stored.read_at is None or stored.kb_uuid in self._read_at:
            return
        age = now.api - stored.read_at
        if age >= timedelta(0):
            self._read_at[stored.kb_uuid] = now.elapsed.minus(age)

    async def _watch(self, kb_uuid: str, now: Instant) -> KbWatch:
        """What is remembered of the KB: memory, else the store, else a fresh start now."""
        known = self._watches.get(kb_uuid)
        if known is not None:
            return known
        raw = await self.meta.get_meta(WATCH_KEY.format(uuid=kb_uuid))
        if raw:
            try:
                stored = KbWatch.decode(raw)
            except ValueError as exc:
                log.warning("kb_watch_unreadable", kb=kb_uuid, error=str(exc))
            else:
                self._seed_read_at(stored, now)
                return stored
        return KbWatch(kb_uuid=kb_uuid, since=now.api.replace(microsecond=0))

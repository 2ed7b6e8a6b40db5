"""The fetch step of a cycle: what the API shows of the watched KBs, and what the store knew.

The rules of what to read are pure (`watcher.core.reads`); this module makes the requests
and is the boundary where one KB's or one job's failed read is logged and survived: that KB
sits the cycle out (its new job is still new next cycle), that job is read again next cycle.
Only the account's KB list is essential: its failure is the cycle's (`SourceError`).

Given the cycle's `ReadDeadline`, each optional read (the job lists, a followed job, a failed
job's details) must end within its share of what is left of it (`reads.read_share`): one
endpoint that never answers costs that read, never the cycle. A read cut at its share is a
failed read like any other (logged with the share, the KB or job read again next cycle).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TypeVar, assert_never

import structlog

from watcher.core.errors import RetryableSourceError, SourceError
from watcher.core.model import Job, KnowledgeBase, WatchedKb
from watcher.core.ports import MetaStore, Source, StateStore
from watcher.core.reads import (
    JobLists,
    has_news,
    job_lists,
    needs_details,
    owned,
    read_share,
    unseen_followed,
    watched,
)
from watcher.core.state import JobState, Transition, WatchState

log = structlog.get_logger(__name__)

BASELINE_KEY = "api_baseline"
"""The meta key of the first run's baseline (the API's time, ISO 8601): see `history`."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReadDeadline:
    """When a cycle's reads must have ended: `until`, on the event loop's (monotonic) clock;
    `reserve` seconds of it the fetch's optional reads leave for what follows them."""

    until: float
    reserve: float = 0.0

    def share(self, reads: int, *, reserve: bool = True) -> float:
        """Seconds the next of `reads` optional reads may take (`reads.read_share`)."""
        left = self.until - asyncio.get_running_loop().time()
        return read_share(left, reads, self.reserve if reserve else 0.0)


async def within(
    deadline: ReadDeadline | None, reads: int, read: Callable[[], Awaitable[T]], *, reserve: bool
) -> T:
    """`read()` within its share of `deadline` (unbounded without one); a read cut there, or
    with no time left to start, raises `RetryableSourceError` naming the share."""
    if deadline is None:
        return await read()
    share = deadline.share(reads, reserve=reserve)
    cut = RetryableSourceError(f"no answer within its share ({share:.1f}s) of the cycle deadline")
    if share <= 0:
        raise cut
    try:
        async with asyncio.timeout(share):
            return await read()
    except TimeoutError:
        raise cut from None


@dataclass(frozen=True, slots=True)
class Sight:
    """What one fetch saw.

    `kbs` are the watched KBs whose jobs were read (a KB whose job list could not be read is
    left out: it sits the cycle out); `jobs` every job seen for them: each KB's latest, its
    listed jobs when it had news, and followed jobs asked for one by one; `previous` what the
    store knew of those jobs, with the first run's baseline; `account` the account's whole
    KB listing (for the setup check); `list_only` whether the KB list was all that was read.
    """

    kbs: tuple[KnowledgeBase, ...]
    jobs: tuple[Job, ...]
    previous: WatchState
    account: tuple[KnowledgeBase, ...]
    list_only: bool = True  # nothing but the KB list was read (no KB had news, no job followed)


class Observer:
    """Reads one source for the KBs `wanted` (all of the account's when empty)."""

    def __init__(
        self,
        source: Source,
        store: StateStore,
        meta: MetaStore,
        wanted: Sequence[WatchedKb] = (),
        per_page: int = 200,
    ) -> None:
        self.source, self.store, self.meta = source, store, meta
        self.wanted, self.per_page = tuple(wanted), per_page
        self.baseline: datetime | None = None  # set once read, or once the cycle records it
        self._unknown_seen: set[str] = set()
        self._deadline: ReadDeadline | None = None  # the running fetch's

    async def account(self) -> tuple[KnowledgeBase, ...]:
        """The account's KB list: the poll itself, made every cycle (quiet or full); raises
        `SourceError` when it cannot be read."""
        return tuple(await self.source.list_knowledge_bases())

    async def observe(
        self, account: tuple[KnowledgeBase, ...], deadline: ReadDeadline | None = None
    ) -> Sight:
        """Given the KB list (`account`), read the job lists of the KBs with news and the
        followed jobs no list showed. The optional reads end within their shares of
        `deadline`, `deadline.reserve` before its end."""
        kbs = watched(account, self.wanted)
        known = replace(await self.store.load(()), baseline=await self._load_baseline())
        fresh = [kb for kb in kbs if has_news(kb, known)]
        self._deadline = deadline
        listed = await self._listed_jobs(fresh, len(account))
        unread = {kb.uuid for kb in fresh} - listed.keys()
        jobs: list[Job] = []
        observed: list[KnowledgeBase] = []
        for kb in kbs:
            if kb.uuid in unread:
                continue  # its list could not be read: the KB sits this cycle out
            observed.append(kb)
            latest = [owned(kb.last_indexing_job, kb.uuid)] if kb.last_indexing_job else []
            jobs += latest + listed.get(kb.uuid, [])
        missing = unseen_followed(known, {kb.uuid for kb in observed}, {job.uuid for job in jobs})
        jobs += await self._followed(missing)
        previous = await self.store.load({job.uuid for job in jobs})
        self._log_unknown_values(jobs)
        previous = replace(previous, baseline=known.baseline)
        return Sight(tuple(observed), tuple(jobs), previous, account, not fresh and not missing)

    async def with_details(
        self, transitions: Sequence[Transition], deadline: ReadDeadline | None = None
    ) -> tuple[Transition, ...]:
        """Failed and partial jobs get their data sources' error details (one request each,
        each within its share of what is left of `deadline`); a job whose details could
        not be read is alerted without them."""
        enriched = []
        reads = sum(1 for t in transitions if t.job is not None and needs_details(t))
        for t in transitions:
            job = t.job
            if job is not None and needs_details(t):
                try:
                    sources = await within(
                        deadline,
                        reads,
                        partial(self.source.list_job_data_sources, job.uuid),
                        reserve=False,
                    )
                    t = replace(t, job=replace(job, data_source_jobs=tuple(sources)))
                except SourceError as exc:
                    log.warning("job_details_failed", kb=t.kb_uuid, job=job.uuid, error=str(exc))
                reads -= 1
            enriched.append(t)
        return tuple(enriched)

    async def _load_baseline(self) -> datetime | None:
        """The first run's baseline (never changes once set: read from the store once)."""
        if self.baseline is None:
            raw = await self.meta.get_meta(BASELINE_KEY)
            self.baseline = datetime.fromisoformat(raw) if raw else None
        return self.baseline

    async def _listed_jobs(
        self, fresh: Sequence[KnowledgeBase], account_kbs: int
    ) -> dict[str, list[Job]]:
        """The latest jobs of each KB with news, by KB, read the cheaper way (`job_lists`).
        A KB whose jobs could not be read is absent from the answer."""
        lists = job_lists(len(fresh), account_kbs, self.per_page)
        match lists:
            case JobLists.NONE:
                return {}
            case JobLists.ACCOUNT:
                return await self._account_jobs(fresh)
            case JobLists.PER_KB:
                return await self._kb_jobs(fresh)
            case _:
                assert_never(lists)

    async def _account_jobs(self, fresh: Sequence[KnowledgeBase]) -> dict[str, list[Job]]:
        """The account-wide job list once, sorted by KB (none when it cannot be read)."""
        try:
            everything = await within(self._deadline, 1, self.source.list_jobs, reserve=True)
        except SourceError as exc:
            log.warning("account_jobs_fetch_failed", error=str(exc))
            return {}
        found: dict[str, list[Job]] = {kb.uuid: [] for kb in fresh}
        for job in everything:
            if job.knowledge_base_uuid in found:
                found[job.knowledge_base_uuid].append(job)
        return found

    async def _kb_jobs(self, fresh: Sequence[KnowledgeBase]) -> dict[str, list[Job]]:
        """Each KB's latest-15 list (a KB whose list cannot be read is left out)."""
        found: dict[str, list[Job]] = {}
        for n, kb in enumerate(fresh):
            try:
                listed = await within(
                    self._deadline,
                    len(fresh) - n,
                    partial(self.source.list_kb_jobs, kb.uuid),
                    reserve=True,
                )
            except SourceError as exc:
                log.warning("kb_jobs_fetch_failed", kb=kb.uuid, error=str(exc))
                continue
            found[kb.uuid] = [owned(job, kb.uuid) for job in listed]
        return found

    async def _followed(self, missing: Sequence[JobState]) -> list[Job]:
        """Jobs we follow that no list showed this time (pushed out of the window)."""
        found = []
        for n, state in enumerate(missing):
            try:
                read = await within(
                    self._deadline,
                    len(missing) - n,
                    partial(self.source.get_job, state.uuid),
                    reserve=True,
                )
                found.append(owned(read, state.kb_uuid))
            except SourceError as exc:
                log.warning("job_fetch_failed", kb=state.kb_uuid, job=state.uuid, error=str(exc))
        return found

    def _log_unknown_values(self, jobs: Sequence[Job]) -> None:
        """Enum values the API added after us: kept on the job, never alerted, logged once each."""
        for job in jobs:
            if not job.unknown_values:  # nearly every job: no set made for it
                continue
            for value in sorted(job.unknown_values - self._unknown_seen):
                self._unknown_seen.add(value)
                log.warning(
                    "api_unknown_value", value=value, kb=job.knowledge_base_uuid, job=job.uuid
                )

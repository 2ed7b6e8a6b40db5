"""Done jobs whose detection is already known: what `detect` would say of them again.

`detect` is pure: the same prior state, the same copy from the API, the same KB state and
the same policy give the same answer. An idle account shows each KB's latest job, done long
ago, every cycle: the page memo (`watcher.edges.api.memo.PageMemo`) hands back the very
same `Job` and `KnowledgeBase` objects for unchanged bytes, and the store's job cache
(`watcher.edges.store.rows.JobCache`) the very same `JobState` for an unchanged row. A done
job whose four inputs are the very objects of a cycle where `detect` left it as it was (no
transition, its state unchanged) needs no judging again: it would be left as it was.

What keys the memo changes with every writer: a byte of the job or of its KB in the API's
answer (a new object from the page memo), a write of the job's row by anyone (this process,
`watcher once` beside it, another replica on PostgreSQL: the store decodes a changed row
into a new object), its KB's stored state (compared by value: the store builds it afresh on
each load). A job that is not done is never skipped: its stall deadlines are judged every
cycle, whether or not a byte changed. Identity, never a hash or a clock: nothing here can
be stale, only missed (a miss costs one `detect` of that job, as before).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from watcher.core.model import Job, KnowledgeBase
from watcher.core.state import JobState, KbState, Policy, Transition, WatchState


@dataclass(frozen=True, slots=True)
class _Kept:
    job: Job  # the API's copy (compared by identity)
    state: JobState  # the stored state it left unchanged (by identity)
    kb_state: KbState  # its KB's stored state (by value)
    kb: KnowledgeBase  # its KB as the API showed it (by identity)


class Unmoved:
    """Remembers, per done job, the inputs on which `detect` left it unchanged last cycle."""

    def __init__(self) -> None:
        self._kept: dict[str, _Kept] = {}
        self._policy: Policy | None = None
        self._skipped: set[str] = set()  # this cycle's, by `to_judge`
        self.skipped = 0  # jobs left out of `detect` (for tests and profiles)

    def to_judge(
        self,
        jobs: Sequence[Job],
        kbs: Sequence[KnowledgeBase],
        previous: WatchState,
        policy: Policy,
    ) -> tuple[Job, ...]:
        """The jobs of `jobs` that `detect` must see: all but those it left unchanged last
        cycle on the very same inputs."""
        self._skipped = set()
        if policy is not self._policy:
            self._kept, self._policy = {}, policy
        if not self._kept:
            return tuple(jobs)
        by_uuid = {kb.uuid: kb for kb in kbs}
        judged, skipped = [], self._skipped
        for job in jobs:
            kept = self._kept.get(job.uuid)
            if (
                kept is not None
                and kept.job is job
                and previous.jobs.get(job.uuid) is kept.state
                and by_uuid.get(kept.state.kb_uuid) is kept.kb
                and previous.kbs.get(kept.state.kb_uuid) == kept.kb_state
            ):
                skipped.add(job.uuid)
                continue
            judged.append(job)
        # a job seen twice (its KB's latest and a list) is judged on all of its copies
        again = skipped.intersection(job.uuid for job in judged)
        if again:
            skipped -= again
            judged = [job for job in jobs if job.uuid not in skipped]
        self.skipped += len(skipped)
        return tuple(judged)

    def remember(
        self,
        jobs: Sequence[Job],
        kbs: Sequence[KnowledgeBase],
        previous: WatchState,
        state: WatchState,
        transitions: Sequence[Transition],
    ) -> None:
        """After `detect`: keep the done jobs it left as they were (one copy seen, no event)."""
        copies = Counter(job.uuid for job in jobs)
        touched = {t.job_uuid for t in transitions}
        by_uuid = {kb.uuid: kb for kb in kbs}
        kept: dict[str, _Kept] = {}
        before = self._kept
        for job in jobs:
            prior = previous.jobs.get(job.uuid)
            if prior is None or not prior.done or copies[job.uuid] != 1 or job.uuid in touched:
                continue
            if job.uuid in self._skipped and state.jobs.get(job.uuid) is prior:
                kept[job.uuid] = before[job.uuid]  # skipped: the very same inputs again
                continue
            kb_state, kb = previous.kbs.get(prior.kb_uuid), by_uuid.get(prior.kb_uuid)
            if state.jobs.get(job.uuid) is prior and kb_state is not None and kb is not None:
                kept[job.uuid] = _Kept(job, prior, kb_state, kb)
        self._kept = kept

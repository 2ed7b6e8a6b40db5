"""Copies of one job within one answer: the same copy twice is one job; copies that disagree
are no news. Pure.

One answer is one moment of the API's state, so two copies of one job uuid in it that differ
(a running copy and a "completed" one, as a broken cache or a proxy can serve) cannot both be
true, and the answer does not say which is. Such a job is left out of that answer: the
watcher keeps what it last trusted, and judges the job by the next answer that agrees with
itself (another list, a later cycle, or `GET /indexing_jobs/{uuid}` for a job it follows).
A knowledge base whose `last_indexing_job` is such a job keeps its place in the listing, only
without that job. Across answers, copies may differ honestly (the job moved between two
requests): `watcher.core.detect` takes the freshest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from watcher.core.model import Job, KnowledgeBase

Conflicts = dict[str, tuple[Job, ...]]
"""Job uuid to its distinct copies in one answer, for those whose copies disagree."""


def conflicting(jobs: Iterable[Job | None]) -> Conflicts:
    """The jobs of one answer whose copies disagree, each with its distinct copies."""
    copies: dict[str, list[Job]] = {}
    for job in jobs:
        if job is not None:
            copies.setdefault(job.uuid, []).append(job)
    found: Conflicts = {}
    for uuid, seen in copies.items():
        # nearly every job has one copy: only several copies are told apart (hashing a job
        # and its data sources, 1,000 a cycle, cost more than the whole rest of this)
        if len(seen) > 1 and len(distinct := tuple(dict.fromkeys(seen))) > 1:
            found[uuid] = distinct
    return found


def settle_jobs(jobs: Sequence[Job]) -> tuple[list[Job], Conflicts]:
    """One copy of each job of an answer, without the jobs whose copies disagree."""
    conflicts = conflicting(jobs)
    kept: dict[str, Job] = {}
    for job in jobs:
        if job.uuid not in conflicts:
            kept.setdefault(job.uuid, job)
    return list(kept.values()), conflicts


def settle_kbs(kbs: Sequence[KnowledgeBase]) -> tuple[list[KnowledgeBase], Conflicts]:
    """The knowledge bases of an answer, without a latest job whose copies disagree."""
    conflicts = conflicting(kb.last_indexing_job for kb in kbs)
    if not conflicts:
        return list(kbs), conflicts
    return [_without(kb, conflicts) for kb in kbs], conflicts


def _without(kb: KnowledgeBase, conflicts: Conflicts) -> KnowledgeBase:
    job = kb.last_indexing_job
    return replace(kb, last_indexing_job=None) if job and job.uuid in conflicts else kb


def states(copies: Sequence[Job]) -> list[str]:
    """Each copy's state as the API wrote it (`phase/status`), for the log."""
    return [f"{job.phase_text}/{job.status_text}" for job in copies]

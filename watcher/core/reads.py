"""What a cycle reads from the API, decided from what the watcher already knows. Pure.

A cycle reads the account's KB list (each KB carries its latest job). Then, for news only:

- A KB "has news" when its latest job is not the one the watcher knew, or when the KB was
  created since the first run and has a job (all of its jobs are news, see `history`).
  First sight of any other KB is history: only its latest job matters, no list is read.
- The jobs of the KBs with news come from one latest-15 list per KB, or from the account-wide
  job list once, whichever takes fewer requests (`job_lists`).
- A job the watcher follows that no list showed (pushed out of the 15-job window) is asked
  for by itself (`unseen_followed`).
- A failed or partial job whose data sources' errors are not known yet gets them, one
  request each (`needs_details`).

Only the KB list is mandatory; every other read is optional (its failure costs that KB a
cycle, or that alert its details). The cycle has one deadline; each optional read gets its
own share of what is left of it (`read_share`), so one read that never ends costs its share
and never the other reads, the mandatory work, or the cycle. Shares are seconds on the
monotonic clock: the wall clock never enters them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from enum import StrEnum

from watcher.core.history import is_new_kb
from watcher.core.model import EventKind, Job, KnowledgeBase, WatchedKb
from watcher.core.state import JobState, Transition, WatchState

KB_JOB_WINDOW = 15
"""DigitalOcean keeps the latest 15 jobs of a KB, in every list (per KB and account-wide)."""

DETAILS_RESERVE = 0.25
"""The part of a cycle's deadline the job and per-KB lists leave for what follows them: the
store's load, detection, and the failed jobs' details."""

_NEEDS_DETAILS = frozenset({EventKind.FAILED, EventKind.PARTIAL})


class JobLists(StrEnum):
    """Which job lists a cycle reads for the KBs with news."""

    NONE = "none"  # no KB has news: no job list at all
    PER_KB = "per_kb"  # each such KB's latest-15 list, one request each
    ACCOUNT = "account"  # the account-wide job list once (every page of it)


def job_lists(with_news: int, account_kbs: int, per_page: int) -> JobLists:
    """The cheaper way to read the jobs of `with_news` KBs out of the account's `account_kbs`.

    One KB's list is one request (its 15 jobs fit a page). The account-wide list holds up to
    15 jobs of every KB of the account: ceil(15 × account_kbs / per_page) requests. The
    account-wide list wins only when it takes fewer requests; a tie reads the KBs' own lists.
    """
    if with_news <= 0:
        return JobLists.NONE
    account_pages = -(-KB_JOB_WINDOW * account_kbs // max(per_page, 1))
    return JobLists.ACCOUNT if with_news > account_pages else JobLists.PER_KB


def next_poll_cost(account_kbs: int, busy_kbs: int, per_page: int) -> int:
    """The requests the next poll may take when each of the `busy_kbs` KBs (with a job not
    finished) has news: the KB list's pages, and the cheaper way to list their jobs
    (`job_lists`). What the extra reads leave room for beside the polls: a poll that only
    recorded the first run's history (the KB list alone) says nothing of the next one's."""
    per_page = max(per_page, 1)
    pages = max(1, -(-account_kbs // per_page))
    if busy_kbs <= 0:
        return pages
    account_pages = -(-KB_JOB_WINDOW * account_kbs // per_page)
    return pages + min(busy_kbs, account_pages)


def watched(account: Sequence[KnowledgeBase], wanted: Sequence[WatchedKb]) -> list[KnowledgeBase]:
    """The KBs the config names, in its order and with its names where it gives one, or every
    KB of the account when it names none. A configured KB the account lacks is left out
    (`watcher.core.account` says so)."""
    if not wanted:
        return list(account)
    by_uuid = {kb.uuid: kb for kb in account}
    return [
        replace(by_uuid[w.uuid], name=w.name or by_uuid[w.uuid].name)
        for w in wanted
        if w.uuid in by_uuid
    ]


def has_news(kb: KnowledgeBase, known: WatchState) -> bool:
    """Whether a KB's jobs must be listed: a KB seen before reports a latest job other than
    the one we knew, or a KB created since the first run has jobs."""
    latest = kb.last_indexing_job
    if latest is None:
        return False
    prior = known.kbs.get(kb.uuid)
    if prior is None:
        return is_new_kb(kb, known)
    return prior.last_job_uuid != latest.uuid


def owned(job: Job, kb_uuid: str) -> Job:
    """The job, with the KB it was listed under when the job object itself does not say."""
    return job if job.knowledge_base_uuid else replace(job, knowledge_base_uuid=kb_uuid)


def unseen_followed(
    known: WatchState, visible_kbs: Collection[str], seen_jobs: Collection[str]
) -> list[JobState]:
    """The jobs we follow (not done) of the KBs read this cycle that no list showed."""
    return [
        state
        for state in known.jobs.values()
        if not state.done and state.uuid not in seen_jobs and state.kb_uuid in visible_kbs
    ]


def needs_details(transition: Transition) -> bool:
    """Whether a transition's job should get its data sources' error details before it is
    recorded: a failed or partial outcome whose errors are not known yet."""
    job = transition.job
    if transition.kind not in _NEEDS_DETAILS or job is None:
        return False
    return not any(ds.error_msg or ds.error_details for ds in job.data_source_jobs)


def read_share(left: float, reads: int, reserve: float = 0.0) -> float:
    """Seconds the next optional read may take: an equal part of what is left of the cycle's
    deadline (`left` seconds, monotonic) after `reserve` seconds kept for what follows, among
    the `reads` optional reads still to make, this one included; 0 when nothing is left.

    Reads that finish early leave their rest to the later ones; a read that never ends takes
    its share and no more, so each of N reads gets at least (left − reserve) / N of what was
    left before the first, and the reads end `reserve` seconds before the deadline.
    """
    if reads <= 0:
        return 0.0
    return max(left - reserve, 0.0) / reads

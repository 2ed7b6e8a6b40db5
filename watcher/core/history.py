"""History or news: whether a job the watcher sees for the first time is worth an alert. Pure.

Decided without the local clock, on the API's clock alone (its timestamps are whole seconds):

- The first run sets a baseline: where its first read began, on the API's clock.
- A knowledge base first seen later but created at or after the baseline is new: all of its
  jobs are news (creating a KB starts a job; its failure is exactly what people want to hear).
- Any other knowledge base's news begins where the watcher's first read of it began
  (`KbState.news_since`): a job created before that is old history, which the latest-15 list
  keeps returning; a job created at or after it is news. One second of margin keeps a job
  created in the same second as a read on the news side.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from watcher.core.clocks import whole_second
from watcher.core.model import Job, KnowledgeBase
from watcher.core.state import KbState, WatchState

WATERMARK_MARGIN = timedelta(seconds=1)
"""How far before a read's start news begins: the API's clock is known to within a second."""


def watermark(api_began: datetime) -> datetime:
    """Where news begins for a read that began at `api_began` (API's clock): the whole second,
    less the margin, so that a job created in the same second as the read is never history."""
    return whole_second(api_began) - WATERMARK_MARGIN


def is_new_kb(kb: KnowledgeBase, state: WatchState) -> bool:
    """Whether a KB not seen before was created since the first run (its jobs are all news)."""
    if kb.uuid in state.kbs or state.baseline is None or kb.created_at is None:
        return False
    return whole_second(kb.created_at) >= state.baseline


def is_history(job: Job, kb: KbState | None) -> bool | None:
    """Whether a job not seen before was created before its KB's news began (old history).

    Without `created_at` the job's earliest other time stands in for it. A finished job with
    no time at all cannot be told from old history (the per-KB list returns up to 15 old
    jobs): None, so that a broken answer never turns old history into fresh alerts.
    """
    if kb is None:
        return False
    born = job.created_at or job.started_at or job.finished_at or job.updated_at
    if born is None:
        return None if job.is_terminal else False
    since = kb.news_since if kb.news_since is not None else kb.first_seen_at
    return whole_second(born) < since


def baseline_for(previous: WatchState, began: datetime) -> datetime:
    """The first run's baseline; a store written before baselines existed has KBs already,
    and the first of their wall-clock sightings is the best account of when it began."""
    if previous.kbs:
        return min(kb.first_seen_at for kb in previous.kbs.values())
    return watermark(began)

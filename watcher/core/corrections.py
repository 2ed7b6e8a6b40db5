"""Corrections: an alerted outcome that a newer answer contradicts. Pure.

A job is done once its outcome was alerted (or it was recorded silently as history), and the
watcher then keeps the copy that outcome was judged on. A later answer can still disagree
with it: a "completed" that came from a broken cache while the job ran on, and later failed.
Keeping the first verdict would lose the failure; believing every copy would turn a lagging
replica into news. So `review` decides, for a done job seen again:

- `SAME`: the answer gives the same outcome (its `updated_at` may have moved): nothing to say.
- `KEPT`: the answer does not contradict the verdict in a way that counts: a state nobody
  knows (enums grow), an outcome read from less than the verdict was (a copy without the
  `status` that told a partial from a completed run), a copy that is not newer than the
  verdict's (on the API's `updated_at`: a lagging copy, or one without a time, corrects
  nothing), an outcome that was never alerted (history told nobody anything), or a job
  corrected `MAX_CORRECTIONS` times already (an API that flips a job back and forth does not
  flood the routes: the last verdict stands).
- `OTHER_OUTCOME`: a newer answer ends the job otherwise: `corrected`, then that outcome.
- `RUNNING_AGAIN`: a newer answer shows the job pending or running: `corrected`, and the job
  is followed again (stalls, then its outcome).

An outcome alerted after a correction carries the verdict's number in its event id
(`job/failed/2`), so it is never taken for the earlier one; `corrected` carries the outcome it
corrects (`Transition.corrects`), so that routing can send it to the routes that heard that.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from watcher.core.history import is_history
from watcher.core.model import EventKind, Job
from watcher.core.state import JobState, KbState, Transition

MAX_CORRECTIONS = 3
"""Corrections alerted for one job at most."""


class Review(StrEnum):
    """What a done job's new copy means for its verdict."""

    SAME = "same"
    KEPT = "kept"
    OTHER_OUTCOME = "other_outcome"
    RUNNING_AGAIN = "running_again"


def review(prior: JobState, job: Job, kb: KbState | None) -> Review:
    """Judge a new copy `job` of the done job `prior` (see the module's rules)."""
    verdict = prior.job
    if job.is_terminal and job.outcome == verdict.outcome:
        return Review.SAME
    if not (job.is_pending or job.is_running or job.is_terminal):
        return Review.KEPT  # unknown states say nothing
    if job.is_terminal and verdict.status.is_terminal and not job.status.is_terminal:
        return Review.KEPT  # its outcome rests on the phase alone: less than the verdict knew
    if not _newer(job, verdict) or not outcome_alerted(prior, kb):
        return Review.KEPT
    if prior.corrections >= MAX_CORRECTIONS:
        return Review.KEPT
    return Review.OTHER_OUTCOME if job.is_terminal else Review.RUNNING_AGAIN


def outcome_alerted(state: JobState, kb: KbState | None) -> bool:
    """Whether a done job's outcome was alerted (not recorded silently as history): it was
    followed from pending or running, or first seen finished on the news side of its KB."""
    return state.started_alerted or is_history(state.job, kb) is False


def verdict_number(state: JobState) -> int | None:
    """The number an outcome event of this job carries: None for the first verdict, 2 for the
    one after a correction, and so on."""
    return state.corrections + 1 if state.corrections else None


def correction(prior: JobState, job: Job, at: datetime, number: int) -> Transition:
    """The `corrected` event: the outcome alerted for `prior`, and what the API says now."""
    before = prior.job.outcome
    said = before.value if before is not None else "finished"
    now = (
        job.outcome.value
        if job.outcome is not None
        else ("pending" if job.is_pending else "running")
    )
    return Transition(
        event_id=f"{job.uuid}/{EventKind.CORRECTED.value}/{number}",
        kind=EventKind.CORRECTED,
        at=at,
        kb_uuid=prior.kb_uuid,
        job=job,
        detail=(
            f"This job was reported {said}; the API now reports it {now} "
            f"(updated {_stamp(job.updated_at)}, after the answer it was judged on, updated "
            f"{_stamp(prior.job.updated_at)})."
        ),
        corrects=before,
    )


def _newer(job: Job, than: Job) -> bool:
    return (
        job.updated_at is not None
        and than.updated_at is not None
        and job.updated_at > than.updated_at
    )


def _stamp(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "at an unknown time"

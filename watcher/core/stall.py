"""Stall timing: how long until a stall rule fires for a job, on the right clock. Pure.

- Pending too long: since `created_at`, on the API's clock.
- Running too long: since `started_at` (else `created_at`), on the API's clock.
- No progress: since the watcher last saw a progress signal move, on its elapsed clock.

When the answer gives no time, the watcher's own first sighting (elapsed clock) stands in. A
sighting that cannot be compared with now (another boot, an older store) is re-seeded from
the API's `updated_at`, as on first sight: a stall may come late, never falsely.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from watcher.core.clocks import Instant
from watcher.core.model import Job
from watcher.core.state import JobState, Policy, Sighting, StallReason


def first_sighting(job: Job, now: Instant) -> Sighting:
    """A job seen for the first time: its last movement is seeded from `updated_at`."""
    quiet = api_age(job.updated_at, now) or timedelta(0)
    return Sighting(first=now.elapsed, moved=now.elapsed.minus(quiet))


def rebased(prior: JobState, now: Instant) -> JobState:
    """A job whose sighting cannot be compared with `now` (another boot, or an older store)
    is seen afresh, its last movement seeded from the API's `updated_at` as on first sight."""
    sighting = prior.sighting
    if prior.done:
        return prior
    if (
        sighting is not None
        and now.elapsed.since(sighting.first) is not None
        and now.elapsed.since(sighting.moved) is not None
    ):
        return prior
    return replace(prior, sighting=first_sighting(prior.job, now))


def sighting_of(state: JobState, now: Instant) -> Sighting:
    return state.sighting or Sighting(now.elapsed, now.elapsed)


def can_recover(prior: JobState, job: Job) -> bool:
    """A stall over the maximum runtime ends only with the job; the others end when it moves."""
    if prior.stalled is StallReason.MAX_RUNTIME:
        return False
    if prior.stalled is StallReason.PENDING_TOO_LONG:
        return not job.is_pending
    return True


def stall_due(
    state: JobState, now: Instant, policy: Policy
) -> tuple[timedelta, StallReason] | None:
    """How long until the first stall rule fires for this job (zero or less: it has), and which
    rule; None when none applies. Pending and maximum runtime are measured on the API's clock
    from `created_at` / `started_at` (on the watcher's own sightings when the answer gives no
    time); no progress on the watcher's sightings, always."""
    job = state.job
    if state.done or job.is_terminal:
        return None
    sighting = sighting_of(state, now)
    since_first = now.elapsed.since(sighting.first) or timedelta(0)
    if job.is_pending:
        waited = api_age(job.created_at, now)
        left = policy.pending_after - (since_first if waited is None else waited)
        return left, StallReason.PENDING_TOO_LONG
    if job.is_running:
        still = now.elapsed.since(sighting.moved) or timedelta(0)
        ran = api_age(job.started_at or job.created_at, now)
        no_progress = policy.no_progress_after - still
        runtime = policy.max_runtime - (since_first if ran is None else ran)
        if runtime <= no_progress:
            return runtime, StallReason.MAX_RUNTIME
        return no_progress, StallReason.NO_PROGRESS
    return None


def api_age(moment: datetime | None, now: Instant) -> timedelta | None:
    """How long ago an API timestamp was, on the API's clock (a future one: zero)."""
    if moment is None:
        return None
    return max(now.api - moment, timedelta(0))

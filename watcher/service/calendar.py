"""Wall-clock (calendar) work of the daemon, on APScheduler 3: pruning history by retention.

Only what belongs to the wall clock runs here: the poll schedule is the daemon's monotonic
loop, because APScheduler 3 schedules on wall-clock datetimes and a step of the clock back by
N seconds would stop a job for N seconds. Pruning can wait out such a step. It runs at start
and then hourly at minute `PRUNE_MINUTE`, late rather than never (`misfire_grace_time`),
never twice at once; APScheduler's own news of an error, a missed or a skipped run is logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

log = structlog.get_logger(__name__)

PRUNE_MINUTE = 17  # minute of the hour, wall clock (UTC)


class Calendar:
    """The daemon's calendar jobs on one AsyncIOScheduler (needs a running event loop)."""

    def __init__(self) -> None:
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    def start(self, prune: Callable[[], Awaitable[None]]) -> None:
        """Start the scheduler with the pruning job, which runs now and then hourly."""
        self.scheduler.add_listener(
            _trouble, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self.scheduler.start()
        self.scheduler.add_job(
            prune,
            CronTrigger(minute=PRUNE_MINUTE, timezone=UTC),
            id="prune",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
            next_run_time=datetime.now(UTC),
        )

    def pause(self) -> None:
        if self.scheduler.running:
            self.scheduler.pause()

    def shutdown(self) -> None:
        """Stop without waiting (a pruning run in flight is cancelled: it is one transaction)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)


def _trouble(event: object) -> None:
    job, code = getattr(event, "job_id", None), getattr(event, "code", None)
    log.warning("calendar_job_trouble", job=job, code=code)

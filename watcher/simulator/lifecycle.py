"""One indexing job's life as a pure function of simulated time.

A `JobPlan` fixes everything about a job up front (when it was created, how long it stays
pending, how many seconds of progress it needs, when it stalls, how it ends), so its state
at any instant is a calculation (`watcher.simulator.wire` renders it as DigitalOcean's JSON).
A cancel is the only thing decided later; it is passed in.

Progress: data sources are indexed one after another, each taking a share of the run
proportional to its item count. While a stall window is open the counters and `updated_at`
freeze and the job stays RUNNING; the run then needs as many extra seconds as it lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Outcome(StrEnum):
    """How a job ends when nobody cancels it."""

    COMPLETED = "completed"
    NO_CHANGES = "no_changes"
    PARTIAL = "partial"
    FAILED = "failed"
    ERROR = "error"


class Moment(StrEnum):
    """The lifecycle moments the simulator reports for latency measurements."""

    CREATED = "created"
    RUNNING = "running"
    STALLED = "stalled"
    RECOVERED = "recovered"
    COMPLETED = "completed"
    NO_CHANGES = "no_changes"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"


_END_MOMENT = {
    Outcome.COMPLETED: Moment.COMPLETED,
    Outcome.NO_CHANGES: Moment.NO_CHANGES,
    Outcome.PARTIAL: Moment.PARTIAL,
    Outcome.FAILED: Moment.FAILED,
    Outcome.ERROR: Moment.FAILED,
}
_DEFAULT_ERRORS = {
    Outcome.PARTIAL: ("file_parse_error", "some files could not be parsed and were skipped"),
    Outcome.FAILED: ("data_source_unreachable", "could not list objects: access denied"),
    Outcome.ERROR: ("internal_error", "the embedding service did not answer"),
}


class Stage(StrEnum):
    """Where a job is in its life at one instant."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def is_over(self) -> bool:
        return self in (Stage.DONE, Stage.CANCELLED)


@dataclass(frozen=True, slots=True)
class SourcePlan:
    """One data source of a job: its uuid and how many items (files) it holds."""

    uuid: str
    items: int
    bytes_per_item: int = 24_000


@dataclass(frozen=True, slots=True)
class Stall:
    """A window `after` seconds into the run when nothing moves (`duration` None: forever)."""

    after: float
    duration: float | None


@dataclass(frozen=True, slots=True)
class SourceEnd:
    """What one data source looks like when the job is over."""

    status: str
    indexed: int
    failed: int
    skipped: int
    error_msg: str | None = None
    error_details: str | None = None


@dataclass(frozen=True, slots=True)
class JobPlan:
    """Everything about a job's life except a later cancel."""

    uuid: str
    kb_uuid: str
    seq: int
    created_at: datetime
    sources: tuple[SourcePlan, ...]
    pending_s: float | None
    run_s: float
    outcome: Outcome
    stalls: tuple[Stall, ...] = ()
    tokens_per_item: int = 40
    error_msg: str | None = None
    error_details: str | None = None

    @property
    def run_start(self) -> datetime | None:
        if self.pending_s is None:
            return None
        return self.created_at + timedelta(seconds=self.pending_s)

    def progress_at(self, moment: datetime) -> float:
        """Seconds of real progress made by `moment` (stall time does not count)."""
        start = self.run_start
        if start is None or moment <= start:
            return 0.0
        elapsed = (moment - start).total_seconds()
        lost = 0.0
        for stall in self.stalls:
            if elapsed <= stall.after:
                break
            frozen_until = math.inf if stall.duration is None else stall.after + stall.duration
            lost += min(elapsed, frozen_until) - stall.after
        return min(self.run_s, elapsed - lost)

    def time_of_progress(self, progress: float) -> datetime | None:
        """The instant at which `progress` seconds of progress are reached (None: never)."""
        start = self.run_start
        if start is None:
            return None
        offset = progress
        for stall in self.stalls:
            if offset <= stall.after:
                break
            if stall.duration is None:
                return None
            offset += stall.duration
        return start + timedelta(seconds=offset)

    @property
    def natural_end(self) -> datetime | None:
        return self.time_of_progress(self.run_s)

    def end(self, cancelled_at: datetime | None) -> datetime | None:
        """When the job becomes terminal, by its own course or by the cancel."""
        natural = self.natural_end
        if cancelled_at is None:
            return natural
        return cancelled_at if natural is None else min(natural, cancelled_at)

    def stage_at(self, moment: datetime, cancelled_at: datetime | None) -> Stage:
        """The job's stage at `moment` (a job is over from its end instant on)."""
        end = self.end(cancelled_at)
        if end is not None and moment >= end:
            return Stage.CANCELLED if end == cancelled_at else Stage.DONE
        start = self.run_start
        return Stage.RUNNING if start is not None and moment >= start else Stage.PENDING

    def is_active(self, moment: datetime, cancelled_at: datetime | None) -> bool:
        """Whether the job exists and is pending or running at `moment`."""
        end = self.end(cancelled_at)
        return self.created_at <= moment and (end is None or moment < end)

    def stalled_at(self, moment: datetime) -> datetime | None:
        """The start of the stall window open at `moment`, if any."""
        start = self.run_start
        if start is None or moment < start:
            return None
        elapsed = (moment - start).total_seconds()
        for stall in self.stalls:
            closes = math.inf if stall.duration is None else stall.after + stall.duration
            if stall.after <= elapsed < closes:
                return start + timedelta(seconds=stall.after)
        return None

    def source_ends(self) -> tuple[SourceEnd, ...]:
        return tuple(self._source_end(i) for i in range(len(self.sources)))

    def _source_end(self, index: int) -> SourceEnd:
        items = self.sources[index].items
        last = len(self.sources) - 1
        default_msg, default_details = _DEFAULT_ERRORS.get(self.outcome, (None, None))
        msg = self.error_msg or default_msg
        details = self.error_details or default_details
        match self.outcome:
            case Outcome.COMPLETED:
                return SourceEnd("DATA_SOURCE_STATUS_UPDATED", items, 0, 0)
            case Outcome.NO_CHANGES:
                return SourceEnd("DATA_SOURCE_STATUS_NOT_UPDATED", 0, 0, items)
            case Outcome.PARTIAL if index == last:
                failed = max(1, items // 10)
                status = "DATA_SOURCE_STATUS_PARTIALLY_UPDATED"
                return SourceEnd(status, items - failed, failed, 0, msg, details)
            case Outcome.PARTIAL if index == last - 1 and last >= 2:
                return SourceEnd("DATA_SOURCE_STATUS_FAILED", 0, items, 0, msg, details)
            case Outcome.PARTIAL:
                return SourceEnd("DATA_SOURCE_STATUS_UPDATED", items, 0, 0)
            case Outcome.FAILED | Outcome.ERROR:
                return SourceEnd("DATA_SOURCE_STATUS_FAILED", 0, items, 0, msg, details)

    def moments(self, cancelled_at: datetime | None) -> list[tuple[Moment, datetime]]:
        """Every lifecycle moment of the job, known in advance, in time order."""
        end = self.end(cancelled_at)
        found = [(Moment.CREATED, self.created_at)]
        start = self.run_start
        if start is not None and (end is None or start < end):
            found.append((Moment.RUNNING, start))
            for stall in self.stalls:
                begins = start + timedelta(seconds=stall.after)
                if end is not None and begins >= end:
                    break
                found.append((Moment.STALLED, begins))
                if stall.duration is not None:
                    recovers = begins + timedelta(seconds=stall.duration)
                    if end is None or recovers <= end:
                        found.append((Moment.RECOVERED, recovers))
        if end is not None:
            cancelled = cancelled_at is not None and end == cancelled_at
            found.append((Moment.CANCELLED if cancelled else _END_MOMENT[self.outcome], end))
        return found

"""A job plan rendered at an instant as DigitalOcean's wire objects.

`job_at` gives `apiIndexingJob`, `sources_at` gives the `apiIndexedDataSource` list (also
used as the job's `data_source_jobs`). Counters are JSON strings, timestamps RFC 3339 with
`Z`, and an unset timestamp is Go's zero time, as DigitalOcean sends them.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, assert_never

from watcher.simulator.clock import rfc3339
from watcher.simulator.lifecycle import JobPlan, Outcome, SourceEnd, SourcePlan, Stage

JsonObject = dict[str, Any]

_END_STATE = {
    Outcome.COMPLETED: ("BATCH_JOB_PHASE_SUCCEEDED", "INDEX_JOB_STATUS_COMPLETED"),
    Outcome.NO_CHANGES: ("BATCH_JOB_PHASE_SUCCEEDED", "INDEX_JOB_STATUS_NO_CHANGES"),
    Outcome.PARTIAL: ("BATCH_JOB_PHASE_SUCCEEDED", "INDEX_JOB_STATUS_PARTIAL"),
    Outcome.FAILED: ("BATCH_JOB_PHASE_FAILED", "INDEX_JOB_STATUS_FAILED"),
    Outcome.ERROR: ("BATCH_JOB_PHASE_ERROR", "INDEX_JOB_STATUS_FAILED"),
}
_UPDATED_LIKE = frozenset(
    {
        "DATA_SOURCE_STATUS_UPDATED",
        "DATA_SOURCE_STATUS_PARTIALLY_UPDATED",
        "DATA_SOURCE_STATUS_NOT_UPDATED",
    }
)


def _shares(plan: JobPlan) -> list[tuple[float, float]]:
    """Each source's slice of the run, as fractions [begin, end) of the total progress."""
    total = sum(s.items for s in plan.sources) or 1
    slices, begin = [], 0.0
    for source in plan.sources:
        end = begin + source.items / total
        slices.append((begin, end))
        begin = end
    return slices


def sources_at(plan: JobPlan, moment: datetime, cancelled_at: datetime | None) -> list[JsonObject]:
    """The job's `apiIndexedDataSource` objects as they read at `moment`."""
    stage = plan.stage_at(moment, cancelled_at)
    end = plan.end(cancelled_at)
    fraction = plan.progress_at(end if stage.is_over and end is not None else moment) / plan.run_s
    rendered = []
    for source, finish, (begin, stop) in zip(
        plan.sources, plan.source_ends(), _shares(plan), strict=True
    ):
        share = (
            1.0 if stage is Stage.DONE else min(1.0, max(0.0, (fraction - begin) / (stop - begin)))
        )
        started = plan.time_of_progress(begin * plan.run_s) if share > 0 else None
        completed = plan.time_of_progress(stop * plan.run_s) if share >= 1.0 else None
        item = _source(source, finish, share, _source_status(finish, share, stage))
        item["started_at"] = rfc3339(started)
        item["completed_at"] = rfc3339(completed)
        rendered.append(item)
    return rendered


def _source_status(finish: SourceEnd, share: float, stage: Stage) -> str:
    if share >= 1.0:
        return finish.status
    if stage is Stage.CANCELLED:
        return "DATA_SOURCE_STATUS_CANCELLED"
    return "DATA_SOURCE_STATUS_IN_PROGRESS" if share > 0 else "DATA_SOURCE_STATUS_UNKNOWN"


def _source(source: SourcePlan, finish: SourceEnd, share: float, status: str) -> JsonObject:
    """One data source's counters at `share` of its way to `finish`."""
    indexed = math.floor(share * finish.indexed)
    item: JsonObject = {
        "data_source_uuid": source.uuid,
        "status": status,
        "indexed_item_count": str(indexed),
        "failed_item_count": str(math.floor(share * finish.failed)),
        "skipped_item_count": str(math.floor(share * finish.skipped)),
        "removed_item_count": "0",
        "indexed_file_count": str(indexed),
        "total_file_count": str(source.items),
        "total_bytes": str(source.items * source.bytes_per_item),
        "total_bytes_indexed": str(indexed * source.bytes_per_item),
    }
    if share >= 1.0 and finish.error_msg:
        item["error_msg"] = finish.error_msg
        item["error_details"] = finish.error_details or ""
    return item


def _phase_status(plan: JobPlan, stage: Stage) -> tuple[str, str]:
    match stage:
        case Stage.PENDING:
            return "BATCH_JOB_PHASE_PENDING", "INDEX_JOB_STATUS_PENDING"
        case Stage.RUNNING:
            return "BATCH_JOB_PHASE_RUNNING", "INDEX_JOB_STATUS_IN_PROGRESS"
        case Stage.CANCELLED:
            return "BATCH_JOB_PHASE_CANCELLED", "INDEX_JOB_STATUS_CANCELLED"
        case Stage.DONE:
            return _END_STATE[plan.outcome]
        case _:
            assert_never(stage)


def _updated_at(plan: JobPlan, stage: Stage, moment: datetime, end: datetime | None) -> datetime:
    """The last instant anything moved: frozen while pending, stalled or over."""
    if stage is Stage.PENDING:
        return plan.created_at
    if stage is Stage.RUNNING:
        return plan.stalled_at(moment) or moment
    return end or moment


def job_at(plan: JobPlan, moment: datetime, cancelled_at: datetime | None) -> JsonObject:
    """The job's `apiIndexingJob` object as it reads at `moment` (which must be >= created_at)."""
    stage = plan.stage_at(moment, cancelled_at)
    end = plan.end(cancelled_at)
    sources = sources_at(plan, moment, cancelled_at)
    phase, status = _phase_status(plan, stage)
    if stage is Stage.RUNNING:
        completed = sum(1 for s in sources if s["completed_at"] != rfc3339(None))
    else:
        completed = sum(1 for s in sources if s["status"] in _UPDATED_LIKE)
    ran = plan.run_start is not None and (end is None or plan.run_start < end)
    tokens = sum(int(s["indexed_item_count"]) for s in sources) * plan.tokens_per_item
    return {
        "uuid": plan.uuid,
        "knowledge_base_uuid": plan.kb_uuid,
        "phase": phase,
        "status": status,
        "created_at": rfc3339(plan.created_at),
        "started_at": rfc3339(plan.run_start if ran and stage is not Stage.PENDING else None),
        "finished_at": rfc3339(end if stage.is_over else None),
        "updated_at": rfc3339(_updated_at(plan, stage, moment, end)),
        "completed_datasources": completed,
        "total_datasources": len(plan.sources),
        "total_tokens": str(tokens),
        "data_source_uuids": [s.uuid for s in plan.sources],
        "data_source_jobs": sources,
        "is_report_available": stage is Stage.DONE,
    }

"""`job_condition`: the one word for where a job stands, shared by the store's snapshot,
`watcher status` and the `gradient_watcher_jobs{state}` metric. Table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watcher.core.model import Job, Phase, Status
from watcher.core.state import JobCondition, JobState, StallReason, job_condition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
C = JobCondition


def state(phase: Phase, status: Status, **fields: object) -> JobState:
    job = Job("job-1", "kb-1", phase=phase, status=status)
    return JobState(job=job, kb_uuid="kb-1", first_seen_at=NOW, progress_at=NOW, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("phase", "status", "fields", "expected"),
    [
        # the API's two fields agree on waiting
        (Phase.PENDING, Status.PENDING, {}, C.PENDING),
        # the status says it runs while the phase still says pending: running
        (Phase.PENDING, Status.IN_PROGRESS, {}, C.RUNNING),
        (Phase.RUNNING, Status.IN_PROGRESS, {}, C.RUNNING),
        # only the phase is known
        (Phase.RUNNING, Status.UNKNOWN, {}, C.RUNNING),
        # a stall outranks running
        (Phase.RUNNING, Status.IN_PROGRESS, {"stalled": StallReason.NO_PROGRESS}, C.STALLED),
        # values this version does not know: not over, never alerted
        (Phase.UNKNOWN, Status.UNKNOWN, {}, C.UNKNOWN),
        # over, by the watcher's bookkeeping or by the API's answer
        (Phase.SUCCEEDED, Status.COMPLETED, {"done": True}, C.DONE),
        (Phase.FAILED, Status.FAILED, {}, C.DONE),
    ],
)
def test_each_job_has_one_condition(
    phase: Phase, status: Status, fields: dict[str, object], expected: JobCondition
) -> None:
    assert job_condition(state(phase, status, **fields)) is expected

"""Cost and time in `watcher status`, table-driven: each KB's latest job -> what is said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.cost import ModelPrice
from watcher.core.costview import cost_and_time
from watcher.core.snapshot import KbSnapshot

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # the API's clock
PRICES = {"kb-1": ModelPrice("m", "GTE", 0.09)}


def kb(status: str | None, **fields: object) -> KbSnapshot:
    return KbSnapshot(
        uuid="kb-1",
        name="docs",
        first_seen_at=NOW,
        job_uuid="job-1" if status else None,
        status=f"INDEX_JOB_STATUS_{status}" if status else None,
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("snapshot", "api_now", "expected"),
    [
        # a finished job with a price: its cost
        (kb("COMPLETED", total_tokens=2_000_000), NOW, "0.1800 (2,000,000 tokens at 0.09"),
        # a running job, 1 of 4 data sources in 10 minutes: 30 minutes left
        (
            kb(
                "IN_PROGRESS",
                started_at=NOW - timedelta(minutes=10),
                completed_datasources=1,
                total_datasources=4,
            ),
            NOW,
            "ETA about 30m 00s (25% of data sources done)",
        ),
        # a running job with nothing done yet: unknown, not a guess
        (
            kb(
                "IN_PROGRESS",
                started_at=NOW - timedelta(minutes=10),
                completed_datasources=0,
                total_datasources=4,
            ),
            NOW,
            "ETA unknown (no progress counted yet)",
        ),
        # the API's clock was never read: no ETA at all
        (kb("IN_PROGRESS", started_at=NOW - timedelta(minutes=10)), None, None),
        # no job yet: nothing said
        (kb(None), NOW, None),
    ],
)
def test_status_tells_a_finished_jobs_cost_or_a_running_jobs_eta(
    snapshot: KbSnapshot, api_now: datetime | None, expected: str | None
) -> None:
    found = cost_and_time(snapshot, PRICES, api_now)
    text = None if found is None else (found.get("cost_text") or found.get("eta_text"))
    assert (text or "").startswith(expected or "") and (text is None) == (expected is None)


def test_a_finished_job_of_a_kb_without_a_price_has_no_cost() -> None:
    assert cost_and_time(kb("FAILED", total_tokens=10), {}, NOW) is None

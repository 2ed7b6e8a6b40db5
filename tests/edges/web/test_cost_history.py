"""The history points of `/api/v1/knowledge_bases/UUID/history` carry each finished job's cost
at the knowledge base's model price as last read (a number: the API names no currency)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watcher.core.cost import ModelPrice
from watcher.core.model import EventKind
from watcher.core.records import JobPoint
from watcher.core.state import JobCondition
from watcher.edges.web.views import point_view

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PRICE = ModelPrice("m", "GTE", 0.09)


def point(outcome: EventKind | None, tokens: int | None) -> JobPoint:
    condition = JobCondition.DONE if outcome else JobCondition.RUNNING
    return JobPoint("job-1", NOW, NOW, NOW if outcome else None, outcome, condition, tokens)


@pytest.mark.parametrize(
    ("the_point", "price", "cost"),
    [
        # a finished job with tokens and a price: its cost
        (point(EventKind.COMPLETED, 2_000_000), PRICE, pytest.approx(0.18)),
        # a running job has no cost yet
        (point(None, 2_000_000), PRICE, None),
        # no tokens, or no price read: no cost
        (point(EventKind.FAILED, None), PRICE, None),
        (point(EventKind.COMPLETED, 2_000_000), None, None),
    ],
)
def test_a_history_point_carries_a_finished_jobs_cost(
    the_point: JobPoint, price: ModelPrice | None, cost: object
) -> None:
    assert point_view(the_point, price)["cost"] == cost

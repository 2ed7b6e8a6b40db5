"""Where a knowledge base stands, how the overview filters and orders them, and its cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.browse import (
    Filter,
    Order,
    Standing,
    decode_cursor,
    encode_cursor,
    last_moved,
    point_state,
    select_kbs,
    standing,
)
from watcher.core.model import Job, Phase, Status
from watcher.core.records import JobPoint, KbRecord
from watcher.core.state import JobCondition, JobState, StallReason

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def kb(
    name: str | None,
    phase: Phase | None = None,
    status: Status = Status.UNKNOWN,
    *,
    uuid: str | None = None,
    moved: datetime | None = None,
    stalled: bool = False,
    done: bool = False,
    phase_raw: str | None = None,
) -> KbRecord:
    """A knowledge base whose latest job has these states (no job when `phase` is None)."""
    key = uuid or f"{name}-uuid"
    if phase is None:
        return KbRecord(key, name, NOW)
    job = Job(
        uuid=f"{key}-job", phase=phase, phase_raw=phase_raw, status=status, updated_at=moved or NOW
    )
    state = JobState(
        job, key, NOW, NOW, stalled=StallReason.NO_PROGRESS if stalled else None, done=done
    )
    return KbRecord(key, name, NOW, latest=state)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # No job at all.
        (kb("a"), Standing.NO_JOBS),
        # The outcome of a finished job: status decides, phase ERROR is a failure.
        (kb("a", Phase.SUCCEEDED, Status.COMPLETED, done=True), Standing.COMPLETED),
        (kb("a", Phase.SUCCEEDED, Status.NO_CHANGES, done=True), Standing.NO_CHANGES),
        (kb("a", Phase.SUCCEEDED, Status.PARTIAL, done=True), Standing.PARTIAL),
        (kb("a", Phase.ERROR, Status.UNKNOWN, done=True), Standing.FAILED),
        (kb("a", Phase.CANCELLED, Status.IN_PROGRESS, done=True), Standing.CANCELLED),
        # Under way.
        (kb("a", Phase.PENDING, Status.PENDING), Standing.PENDING),
        (kb("a", Phase.RUNNING, Status.IN_PROGRESS), Standing.RUNNING),
        # A stall comes before everything while the job is not done.
        (kb("a", Phase.RUNNING, Status.IN_PROGRESS, stalled=True), Standing.STALLED),
        # A value this watcher does not know is unknown, never an outcome.
        (kb("a", Phase.UNKNOWN, phase_raw="BATCH_JOB_PHASE_NEW"), Standing.UNKNOWN),
    ],
)
def test_standing_is_the_latest_jobs_state_in_one_word(
    record: KbRecord, expected: Standing
) -> None:
    assert standing(record) is expected


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        (JobPoint("j", None, None, None, None, JobCondition.RUNNING), "running"),
        (JobPoint("j", None, None, None, None, JobCondition.PENDING), "pending"),
        (
            JobPoint(
                "j", None, None, None, None, JobCondition.RUNNING, stalled=StallReason.MAX_RUNTIME
            ),
            "stalled",
        ),
        # Finished without an outcome this watcher knows.
        (JobPoint("j", None, None, None, None, JobCondition.DONE), "unknown"),
    ],
)
def test_a_chart_point_is_coloured_by_outcome_else_by_where_it_stands(
    point: JobPoint, expected: str
) -> None:
    assert point_state(point) == expected


KBS = [
    kb("beta", Phase.SUCCEEDED, Status.COMPLETED, moved=NOW - timedelta(hours=2), done=True),
    kb("Alpha", Phase.FAILED, Status.FAILED, moved=NOW - timedelta(hours=5), done=True),
    kb("gamma", Phase.RUNNING, Status.IN_PROGRESS, moved=NOW - timedelta(minutes=1)),
    kb(None, uuid="0000-nameless"),
    kb("delta", Phase.RUNNING, Status.IN_PROGRESS, moved=NOW - timedelta(hours=1), stalled=True),
]


@pytest.mark.parametrize(
    ("where", "order", "labels"),
    [
        # By name, case-blind; a nameless one by its uuid.
        (Filter.ALL, Order.NAME, ["0000-nameless", "Alpha", "beta", "delta", "gamma"]),
        (Filter.ALL, Order.NAME_DESC, ["gamma", "delta", "beta", "Alpha", "0000-nameless"]),
        # By age: most recently moved first; without a job last.
        (Filter.ALL, Order.AGE, ["gamma", "delta", "beta", "Alpha", "0000-nameless"]),
        (Filter.ALL, Order.AGE_DESC, ["0000-nameless", "Alpha", "beta", "delta", "gamma"]),
        # Groups of standings.
        (Filter.PROBLEMS, Order.NAME, ["Alpha", "delta"]),
        (Filter.ACTIVE, Order.NAME, ["delta", "gamma"]),
        (Filter.NO_JOBS, Order.NAME, ["0000-nameless"]),
        (Filter.PARTIAL, Order.NAME, []),
    ],
)
def test_the_overview_filters_and_orders(where: Filter, order: Order, labels: list[str]) -> None:
    page = select_kbs(KBS, where=where, order=order)
    assert [k.label for k in page.items] == labels and page.next is None


@pytest.mark.parametrize("order", list(Order))
def test_paging_in_any_order_gives_every_knowledge_base_once(order: Order) -> None:
    seen, cursor = [], None
    for _ in range(10):
        page = select_kbs(KBS, order=order, limit=2, after=cursor)
        seen += [k.uuid for k in page.items]
        cursor = page.next
        if cursor is None:
            break
    assert seen == [k.uuid for k in select_kbs(KBS, order=order).items]


def test_a_page_after_a_vanished_item_starts_where_it_would_have_been() -> None:
    first = select_kbs(KBS, order=Order.NAME, limit=2)
    rest = [k for k in KBS if k.label != "Alpha"]  # the page's last item is gone
    assert [k.label for k in select_kbs(rest, order=Order.NAME, after=first.next).items] == [
        "beta",
        "delta",
        "gamma",
    ]


@pytest.mark.parametrize("cursor", ["", "!!!", encode_cursor("jobs", ["x"]), "bnVsbA"])
def test_a_cursor_of_another_list_or_none_at_all_is_refused(cursor: str) -> None:
    with pytest.raises(ValueError, match="not a cursor of this list"):
        decode_cursor(cursor, "name")


def test_last_moved_is_the_latest_of_the_jobs_own_times() -> None:
    record = kb("a", Phase.RUNNING, Status.IN_PROGRESS, moved=NOW - timedelta(minutes=3))
    assert last_moved(record) == NOW - timedelta(minutes=3)
    assert last_moved(kb("a")) is None

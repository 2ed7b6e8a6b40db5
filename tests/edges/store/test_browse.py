"""The store's reads for the page agree with what was recorded, page stably, and are cheap."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.edges.web.history import NOW, KbPlan, job_uuid, make_job, settle, write_history
from tests.stores import Engine
from watcher.core.outbox import DeliveryState
from watcher.core.records import JobPoint
from watcher.edges.store.sqlite import SqliteStore

A = "aaaaaaaa-0000-4000-8000-000000000001"
PLAN = KbPlan(A, "alpha", ["completed", "failed", "partial", "unknown", "running"])


@pytest.fixture
async def store(engine: Engine) -> AsyncIterator[SqliteStore]:
    opened = await engine.open_held(NOW)
    try:
        yield opened
    finally:
        await opened.close()


async def test_chart_points_read_from_the_json_agree_with_the_decoded_jobs(
    store: SqliteStore,
) -> None:
    await write_history(store, [PLAN])
    points = await store.job_points(A)
    decoded = [await store.job(job_uuid(A, n)) for n in range(len(PLAN.jobs))]
    assert [p.uuid for p in points] == [job_uuid(A, n) for n in range(5)]  # oldest first
    for point, record in zip(points, decoded, strict=True):
        assert record is not None
        full = JobPoint.of(record.state)
        assert point == full


async def test_sparklines_hold_the_last_jobs_newest_first_with_their_state_words(
    store: SqliteStore,
) -> None:
    await write_history(store, [PLAN])
    [kb] = await store.knowledge_bases(recent=4)
    assert [m.state for m in kb.recent] == ["running", "unknown", "partial", "failed"]
    assert kb.latest is not None and kb.latest.job == make_job(PLAN, 4)


async def test_jobs_page_newest_first_through_their_cursor(store: SqliteStore) -> None:
    await write_history(store, [PLAN])
    first = await store.jobs(A, limit=2, after=None)
    second = await store.jobs(A, limit=2, after=first.next)
    third = await store.jobs(A, limit=2, after=second.next)
    seen = [s.uuid for page in (first, second, third) for s in page.items]
    assert seen == [job_uuid(A, n) for n in (4, 3, 2, 1, 0)] and third.next is None
    with pytest.raises(ValueError):
        await store.jobs(A, limit=2, after="bm9wZQ")


async def test_deliveries_and_counts_follow_the_outbox(store: SqliteStore) -> None:
    await write_history(store, [PLAN], routes=("ops", "mail"))  # 3 finished jobs x 2 routes
    sent = await settle(store, DeliveryState.SENT, limit=2)
    dead = await settle(store, DeliveryState.DEAD, limit=1, error="refused")
    counts = await store.outbox_counts()
    assert counts.by_state[DeliveryState.SENT] == 2 and counts.by_state[DeliveryState.DEAD] == 1
    assert counts.undelivered == 3 and counts.oldest_undelivered_at == NOW
    page = await store.deliveries([DeliveryState.SENT, DeliveryState.DEAD], limit=10, after=None)
    assert [d.id for d in page.items] == sorted([*sent, *dead], reverse=True)
    [gone] = [d for d in page.items if d.state is DeliveryState.DEAD]
    assert gone.last_error == "refused" and gone.kb_name == "alpha" and gone.targets[0].ok is False

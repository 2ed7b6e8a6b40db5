"""The shortcuts that keep an idle cycle cheap must never change what the watcher concludes.

Each test states the behaviour a shortcut preserves: an unchanged item reuses its parsed
value, a changed one never does; a cached decoded row is never served after the row changed;
an unchanged finished job is skipped by detection without losing a later change.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stores import open_held
from watcher.core.clocks import Instant
from watcher.core.detect import detect
from watcher.core.model import Job, KnowledgeBase, Phase, Status
from watcher.core.state import Change, JobState, KbState, Observation, Policy, WatchState
from watcher.edges.api import wire
from watcher.edges.api.client import ApiClient, ApiSettings
from watcher.edges.api.memo import ParseMemo
from watcher.edges.store.rows import JobCache, load_rows

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TOKEN = "dop_v1_" + "ab" * 32
KB = "11111111-1111-4111-8111-111111111111"


def _kb_json(uuid: str, name: str, status: str = "INDEX_JOB_STATUS_COMPLETED") -> dict[str, Any]:
    return {
        "uuid": uuid,
        "name": name,
        "last_indexing_job": {
            "uuid": uuid.replace("1", "2"),
            "knowledge_base_uuid": uuid,
            "phase": "BATCH_JOB_PHASE_SUCCEEDED",
            "status": status,
            "created_at": "2026-11-28T10:00:00Z",
            "updated_at": "2026-11-28T10:05:00Z",
            "data_source_jobs": [{"data_source_uuid": "ds-1", "indexed_item_count": "7"}],
        },
    }


def test_parse_memo_reuses_the_value_of_an_item_equal_to_the_last_read() -> None:
    memo = ParseMemo(wire.parse_knowledge_base)
    first = memo(_kb_json(KB, "docs"))
    memo.complete()
    again = memo(copy.deepcopy(_kb_json(KB, "docs")))
    assert again is first
    assert memo.hits == 1


def test_parse_memo_parses_a_changed_item_again() -> None:
    memo = ParseMemo(wire.parse_knowledge_base)
    memo(_kb_json(KB, "docs"))
    memo.complete()
    changed = memo(_kb_json(KB, "docs", status="INDEX_JOB_STATUS_PARTIAL"))
    assert changed.last_indexing_job is not None
    assert changed.last_indexing_job.status is Status.PARTIAL
    assert memo.hits == 0


def test_parse_memo_forgets_what_the_last_complete_read_did_not_see() -> None:
    memo = ParseMemo(wire.parse_knowledge_base)
    first = memo(_kb_json(KB, "docs"))
    memo.complete()
    memo.complete()  # a read that did not list the KB
    assert memo(_kb_json(KB, "docs")) is not first


def test_parse_memo_keeps_the_last_complete_read_when_a_read_fails() -> None:
    memo = ParseMemo(wire.parse_knowledge_base)
    first = memo(_kb_json(KB, "docs"))
    memo.complete()
    memo(_kb_json(KB, "renamed"))
    memo.abandon()
    assert memo(_kb_json(KB, "docs")) is first


async def test_api_client_returns_fresh_values_only_for_knowledge_bases_that_changed() -> None:
    other = "33333333-3333-4333-8333-333333333333"
    names = {"value": "docs"}

    def handler(request: httpx.Request) -> httpx.Response:
        kbs = [_kb_json(KB, names["value"]), _kb_json(other, "other")]
        return httpx.Response(200, json={"knowledge_bases": kbs, "meta": {"total": 2}})

    transport = httpx.MockTransport(handler)
    async with ApiClient(
        ApiSettings("https://api.test"), TOKEN, token_source="t", transport=transport
    ) as c:
        first = {kb.uuid: kb for kb in await c.list_knowledge_bases()}
        names["value"] = "renamed docs"
        second = {kb.uuid: kb for kb in await c.list_knowledge_bases()}
    assert second[other] is first[other]
    assert second[KB].name == "renamed docs"


def _state(job: Job, done: bool = True) -> JobState:
    return JobState(job=job, kb_uuid=KB, first_seen_at=NOW, progress_at=NOW, done=done)


def _job(uuid: str, updated: datetime) -> Job:
    return Job(
        uuid=uuid,
        knowledge_base_uuid=KB,
        phase=Phase.SUCCEEDED,
        status=Status.COMPLETED,
        created_at=NOW - timedelta(hours=2),
        updated_at=updated,
    )


def test_detect_keeps_the_very_same_state_for_an_unchanged_finished_job() -> None:
    job = _job("j1", NOW - timedelta(hours=1))
    previous = WatchState(kbs={KB: KbState(KB, "docs", NOW, "j1")}, jobs={"j1": _state(job)})
    kb = KnowledgeBase(uuid=KB, name="docs", last_indexing_job=job)
    observation = Observation(at=NOW, kbs=(kb,), jobs=(replace(job),))
    state, transitions = detect(previous, observation, Instant.aligned(NOW), Policy())
    assert transitions == ()
    assert state.jobs["j1"] is previous.jobs["j1"]
    assert state.kbs[KB] is previous.kbs[KB]


def test_detect_still_records_a_finished_job_whose_observation_moved() -> None:
    job = _job("j1", NOW - timedelta(hours=1))
    previous = WatchState(kbs={KB: KbState(KB, "docs", NOW, "j1")}, jobs={"j1": _state(job)})
    later = replace(job, updated_at=NOW - timedelta(minutes=1))
    kb = KnowledgeBase(uuid=KB, name="docs", last_indexing_job=later)
    observation = Observation(NOW, (kb,), (later,))
    state, transitions = detect(previous, observation, Instant.aligned(NOW), Policy())
    assert transitions == ()
    assert state.jobs["j1"].job == later


async def test_store_load_serves_the_new_state_after_a_job_row_changed(tmp_path: Path) -> None:
    job = _job("j1", NOW - timedelta(hours=1))
    async with await open_held(tmp_path / "w.db", NOW) as store:
        await store.record(Change("c1", NOW, jobs=(_state(job, done=False),)))
        first = await store.load({"j1"})
        assert await store.load({"j1"}) == first
        moved = replace(job, updated_at=NOW)
        await store.record(Change("c2", NOW, jobs=(_state(moved),)))
        after = await store.load({"j1"})
    assert after.jobs["j1"].job.updated_at == NOW
    assert after.jobs["j1"].done


def test_job_cache_starts_over_when_full() -> None:
    cache = JobCache(limit=2)
    path = Path("w.db")
    for n in range(3):
        row = (f"j{n}", KB, json.dumps({"uuid": f"j{n}"}), *_times(), None, 0, 0, 1)
        cache.decode(row, path)
    assert len(cache) == 1


def test_job_cache_knows_a_row_again_without_holding_its_json() -> None:
    cache = JobCache()
    path = Path("w.db")
    text = json.dumps({"uuid": "j1", "total_tokens": 10})
    row = ("j1", KB, text, *_times(), None, 0, 0, 1)
    first = cache.decode(row, path)
    assert cache.decode(tuple(row), path) is first  # the same row: decoded once
    kept = [value for entry in cache._rows.values() for value in entry[0]]
    assert not any(isinstance(value, str) and value == text for value in kept)
    changed = ("j1", KB, json.dumps({"uuid": "j1", "total_tokens": 11}), *row[3:])
    assert cache.decode(changed, path).job.total_tokens == 11  # only its JSON moved


async def test_a_load_larger_than_the_job_cache_decodes_each_row_once(tmp_path: Path) -> None:
    """10,000 KBs' latest jobs in a cache of 4,096 were decoded again at every load."""
    path = tmp_path / "w.db"
    opened = tuple(_state(_job(f"j{n}", NOW), done=False) for n in range(5))
    async with await open_held(path, NOW) as store:
        await store.record(Change("c1", NOW, jobs=opened))
    cache = JobCache(limit=2)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        first = load_rows(conn, path, [], cache)
        again = load_rows(conn, path, [], cache)
    assert len(first.jobs) == 5
    assert all(again.jobs[uuid] is state for uuid, state in first.jobs.items())


def test_job_cache_keeps_one_digest_a_row_and_no_column_of_it() -> None:
    """A kept row weighs 16 bytes beside its decoded state: none of its text is held."""
    cache = JobCache()
    path = Path("w.db")
    first_seen, progress, _ = _times()
    row = ("j1", KB, json.dumps({"uuid": "j1"}), first_seen, progress, None, None, 0, 0, 1)
    first = cache.decode(row, path)
    kept = [entry[0] for entry in cache._rows.values()]
    assert all(isinstance(key, bytes) and len(key) == 16 for key in kept)
    assert cache.decode(tuple(row), path) is first


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (3, "2026-01-02T03:04:05.000000Z"),  # first_seen_at
        (4, "2026-01-02T03:04:05.000000Z"),  # progress_at
        (5, "2026-01-02T03:04:05.000000Z"),  # deadline, set
        (6, "no_progress"),  # stalled
        (7, 1),  # stall_count
        (10, "{}"),  # sighting
    ],
)
def test_job_cache_decodes_a_row_again_when_any_column_changed(column: int, value: object) -> None:
    cache = JobCache()
    path = Path("w.db")
    first_seen, progress, _ = _times()
    row = ["j1", KB, json.dumps({"uuid": "j1"}), first_seen, progress, None, None, 0, 0, 0, None]
    first = cache.decode(tuple(row), path)
    row[column] = value
    assert cache.decode(tuple(row), path) is not first


def _times() -> tuple[str, str, None]:
    text = NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return text, text, None


async def test_store_reads_open_and_named_jobs_by_index_even_with_stale_statistics(
    tmp_path: Path,
) -> None:
    """Statistics from a small, all-finished table must not turn each load into a scan."""
    path = tmp_path / "w.db"
    async with await open_held(path, NOW) as store:
        done = tuple(_state(_job(f"old{n}", NOW)) for n in range(50))
        await store.record(Change("c1", NOW, jobs=done))
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")  # what `PRAGMA optimize` leaves behind on a young store
    async with await open_held(path, NOW) as store:
        await store.record(Change("c2", NOW, jobs=(_state(_job("live", NOW), done=False),)))
        state = await store.load({"old3", "old7"})
    assert set(state.jobs) == {"live", "old3", "old7"}
    from watcher.edges.store import rows as store_rows

    with sqlite3.connect(path) as conn:
        plans = [
            " ".join(str(step[3]) for step in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
            for sql, args in (
                (store_rows._OPEN_JOBS, ()),
                (f"{store_rows._JOBS_BY_UUID} (?, ?) AND done = 1", ("old3", "old7")),
            )
        ]
    assert all("USING INDEX" in plan and "SCAN" not in plan for plan in plans), plans


async def test_snapshot_without_detail_counts_jobs_and_outbox_but_reads_no_kbs(
    tmp_path: Path,
) -> None:
    async with await open_held(tmp_path / "w.db", NOW) as store:
        kb = KbState(KB, "docs", NOW, "j1")
        running = replace(_job("j2", NOW), phase=Phase.RUNNING, status=Status.IN_PROGRESS)
        jobs = (_state(_job("j1", NOW)), _state(running, done=False))
        await store.record(Change("c1", NOW, kbs=(kb,), jobs=jobs))
        full = await store.snapshot(NOW)
        counts = await store.snapshot(NOW, detail=False)
    assert counts.kbs == () and counts.events_by_kind == {}
    assert counts.jobs_by_state == full.jobs_by_state
    assert full.jobs_by_state == {"pending": 0, "running": 1, "stalled": 0, "unknown": 0, "done": 1}
    assert counts.outbox_by_state == full.outbox_by_state

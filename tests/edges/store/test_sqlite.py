"""The SQLite store's contract: record/load, the outbox queue, the read side, retention."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest

from tests.stores import Engine
from watcher.core.clocks import Elapsed
from watcher.core.errors import StoreError
from watcher.core.lease import LeaseTime
from watcher.core.model import EventKind, Job, Phase, Status
from watcher.core.outbox import DeliveryState, Settlement, TargetResult
from watcher.core.snapshot import StoreSnapshot
from watcher.core.state import (
    Change,
    Delivery,
    JobCondition,
    JobState,
    KbState,
    Sighting,
    StallReason,
    Transition,
    WatchState,
)
from watcher.edges import host
from watcher.edges.store import sqlite as sqlite_module
from watcher.edges.store.postgres import PostgresStore
from watcher.edges.store.schema import SCHEMA_VERSION
from watcher.edges.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)
KB = "kb-1"


def job(uuid: str = "job-1", kb: str = KB, **fields: object) -> Job:
    base = Job(
        uuid=uuid,
        knowledge_base_uuid=kb,
        phase=Phase.RUNNING,
        status=Status.IN_PROGRESS,
        created_at=NOW - timedelta(minutes=5),
        started_at=NOW - timedelta(minutes=4),
        updated_at=NOW - timedelta(minutes=1),
        completed_datasources=1,
        total_datasources=3,
        tokens=50,
        total_tokens=100,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def state(j: Job, **fields: object) -> JobState:
    base = JobState(
        job=j,
        kb_uuid=j.knowledge_base_uuid or KB,
        first_seen_at=NOW - timedelta(hours=1),
        progress_at=NOW - timedelta(minutes=1),
        deadline=NOW + timedelta(minutes=29),
        started_alerted=True,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def event(j: Job, kind: EventKind = EventKind.FAILED, n: int = 1) -> Transition:
    return Transition(
        event_id=f"{j.uuid}/{kind.value}/{n}", kind=kind, at=NOW, kb_uuid=KB, kb_name="docs", job=j
    )


def change(
    *transitions: Transition,
    routes: tuple[str, ...] = ("ops",),
    at: datetime = NOW,
    jobs: tuple[JobState, ...] = (),
) -> Change:
    """A cycle recording the KB, the jobs of the transitions, and one delivery per route."""
    states = jobs or tuple(state(t.job, done=True) for t in transitions if t.job)
    return Change(
        cycle_id=f"cycle-{at.isoformat()}",
        at=at,
        kbs=(KbState(KB, "docs", NOW - timedelta(days=1), last_job_uuid="job-1"),),
        jobs=states,
        transitions=transitions,
        deliveries=tuple(Delivery(t.event_id, r) for t in transitions for r in routes),
    )


ENGINES: dict[int, Engine] = {}
"""The engine each open test store is on (by id): the contract below runs on both."""


@pytest.fixture
async def store(engine: Engine) -> AsyncIterator[SqliteStore]:
    opened = await engine.open_held(NOW, lease=LEASE)
    ENGINES[id(opened)] = engine
    try:
        yield opened
    finally:
        ENGINES.pop(id(opened), None)
        await opened.close()


def on(store: SqliteStore) -> Engine:
    return ENGINES[id(store)]


async def another(store: SqliteStore) -> SqliteStore:
    """A second store on the same file or schema (another process, another replica)."""
    return await on(store).open(NOW, lease=LEASE)


def wal_size(store: SqliteStore) -> int:
    return Path(f"{store.path}-wal").stat().st_size


def count(store: SqliteStore, table: str, where: str = "1 = 1") -> int:
    """Count rows straight from the file or schema, through a separate connection."""
    return on(store).count(table, where)


REFUSE_OUTBOX: Final = {
    "sqlite": [
        "CREATE TRIGGER refuse BEFORE INSERT ON outbox"
        " BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$",
        "CREATE TRIGGER refuse BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}


# --- record and load -------------------------------------------------------------------------


async def test_recorded_kbs_and_jobs_load_back_exactly(store: SqliteStore) -> None:
    running = state(job("job-1"), stalled=StallReason.NO_PROGRESS, stall_count=1, deadline=None)
    await store.record(change(jobs=(running,)))
    loaded = await store.load([])
    assert loaded == WatchState(
        kbs={KB: KbState(KB, "docs", NOW - timedelta(days=1), last_job_uuid="job-1")},
        jobs={"job-1": running},
    )


async def test_sightings_news_watermarks_and_their_boot_load_back_exactly(
    store: SqliteStore,
) -> None:
    seen = Sighting(first=Elapsed(1000.5, "boot-a"), moved=Elapsed(1090.25, "boot-a"))
    running = state(job("job-1"), sighting=seen)
    kb = KbState(KB, "docs", NOW, last_job_uuid="job-1", news_since=NOW - timedelta(seconds=1))
    await store.record(replace(change(jobs=(running,)), kbs=(kb,)))
    loaded = await store.load([])
    assert loaded.jobs["job-1"].sighting == seen
    assert loaded.kbs[KB] == kb


async def test_load_returns_jobs_not_done_and_the_named_done_jobs_only(store: SqliteStore) -> None:
    jobs = (
        state(job("open")),
        state(job("done-named"), done=True),
        state(job("done-other"), done=True),
    )
    await store.record(change(jobs=jobs))
    loaded = await store.load(["done-named", "never-seen"])
    assert sorted(loaded.jobs) == ["done-named", "open"]


async def test_a_later_record_replaces_the_job_state(store: SqliteStore) -> None:
    await store.record(change(jobs=(state(job()),)))
    finished = state(job(phase=Phase.SUCCEEDED, status=Status.COMPLETED), done=True, deadline=None)
    await store.record(change(jobs=(finished,), at=NOW + timedelta(minutes=1)))
    assert (await store.load(["job-1"])).jobs["job-1"] == finished


async def test_a_delivery_without_its_event_fails_the_record_and_keeps_nothing(
    store: SqliteStore,
) -> None:
    bad = replace(change(event(job())), deliveries=(Delivery("no-such-event", "ops"),))
    with pytest.raises(StoreError, match="constraint"):
        await store.record(bad)
    assert await store.load([]) == WatchState()
    assert count(store, "events") == 0
    assert count(store, "outbox") == 0


async def test_a_failing_outbox_insert_rolls_back_the_whole_cycle(store: SqliteStore) -> None:
    for statement in REFUSE_OUTBOX[on(store).name]:
        on(store).rows(statement)
    with pytest.raises(StoreError, match="outbox refused"):
        await store.record(change(event(job())), meta={"api_first_failure_at": "x"})
    assert await store.load([]) == WatchState()
    assert count(store, "events") == 0
    assert await store.get_meta("api_first_failure_at") is None


async def test_recording_the_same_cycle_twice_adds_no_event_and_no_delivery(
    store: SqliteStore,
) -> None:
    cycle = change(event(job()), routes=("ops", "email"))
    await store.record(cycle)
    await store.record(cycle)
    assert count(store, "events") == 1
    assert count(store, "outbox") == 2


async def test_meta_given_to_record_is_written_with_the_change(store: SqliteStore) -> None:
    await store.record(change(), meta={"api_unreachable_alerted": "1"})
    assert await store.get_meta("api_unreachable_alerted") == "1"
    await store.record(change(), meta={"api_unreachable_alerted": None})
    assert await store.get_meta("api_unreachable_alerted") is None


async def test_a_naive_datetime_is_refused_before_anything_is_written(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.record(change(at=datetime(2026, 11, 28, 12, 0)))
    assert count(store, "knowledge_bases") == 0


async def test_load_with_20000_historical_jobs_reads_only_open_and_named_jobs(
    store: SqliteStore,
) -> None:
    """The plan checked is the plan of each statement `load` ran (traced on the store's own
    connection), never a query written here. (SQLite's planner hints only.)"""
    if on(store).is_pg:
        pytest.skip("SQLite's query plans")
    history = tuple(state(job(f"old-{i:05}"), done=True, deadline=None) for i in range(20_000))
    await store.record(change(jobs=(*history, state(job("open-1")), state(job("open-2")))))
    ran: list[str] = []
    await store._run("tracing", lambda conn: conn.set_trace_callback(ran.append))
    try:
        loaded = await store.load(["old-00007", "old-19999"])
    finally:
        await store._run("tracing", lambda conn: conn.set_trace_callback(None))
    assert sorted(loaded.jobs) == ["old-00007", "old-19999", "open-1", "open-2"]
    reads = [sql for sql in ran if "FROM jobs" in sql]
    assert reads, ran
    plans = await store._run("explaining", lambda conn: [query_plan(conn, sql) for sql in reads])
    for sql, plan in zip(reads, plans, strict=True):
        assert "USING INDEX" in plan and "SCAN" not in plan, (sql, plan)  # no whole-table scan


def query_plan(conn: sqlite3.Connection, sql: str) -> str:
    """What SQLite will do for `sql` (with its values inlined, as traced)."""
    return " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))


# --- the outbox ------------------------------------------------------------------------------


async def test_due_rows_are_claimed_oldest_first_with_their_transition(store: SqliteStore) -> None:
    first, second = event(job("job-1")), event(job("job-2"), EventKind.COMPLETED)
    await store.record(change(first))
    await store.record(change(second, at=NOW + timedelta(seconds=1)))
    items = await store.claim_due(NOW + timedelta(seconds=1), limit=10)
    assert [(i.transition, i.route) for i in items] == [(first, "ops"), (second, "ops")]
    assert items[0].cycle_id == f"cycle-{NOW.isoformat()}"
    assert items[0].created_at == NOW
    assert await store.claim_due(NOW + timedelta(seconds=1), limit=10) == []


async def test_rows_over_the_limit_wait(store: SqliteStore) -> None:
    """(Rows not yet due: `test_a_retry_time_within_the_longest_backoff_waits_...`; a row
    created after `now` can only come from a step back, and is due at once.)"""
    await store.record(change(event(job()), routes=("a", "b", "c"), at=NOW))
    assert len(await store.claim_due(NOW, limit=2)) == 2
    assert len(await store.claim_due(NOW, limit=2)) == 1


async def test_a_retry_time_further_ahead_than_the_longest_backoff_is_due_now(
    store: SqliteStore,
) -> None:
    """The wall clock was two hours ahead when the retry was set, then NTP fixed it."""
    await store.record(change(event(job())))
    (item,) = await store.claim_due(NOW, limit=10)
    jumped = NOW + timedelta(hours=2)
    retry = Settlement(item.id, DeliveryState.PENDING, jumped, 1, next_attempt_at=jumped)
    await store.settle([retry])
    longest = timedelta(minutes=30)
    (again,) = await store.claim_due(NOW + timedelta(seconds=5), 10, longest)
    assert again.id == item.id


async def test_a_retry_time_within_the_longest_backoff_waits_while_the_wall_clock_holds(
    store: SqliteStore,
) -> None:
    """Set at NOW for NOW + 20 min: not due at NOW + 5 s, due at NOW + 20 min."""
    await store.record(change(event(job())))
    (item,) = await store.claim_due(NOW, limit=10)
    due = NOW + timedelta(minutes=20)
    await store.settle([Settlement(item.id, DeliveryState.PENDING, NOW, 1, next_attempt_at=due)])
    longest = timedelta(minutes=30)
    assert await store.claim_due(NOW + timedelta(seconds=5), 10, longest) == []
    (again,) = await store.claim_due(due, 10, longest)
    assert again.id == item.id


@pytest.mark.parametrize("step", [timedelta(seconds=-60), timedelta(minutes=-20)])
async def test_a_step_back_of_the_wall_clock_never_holds_a_retry_nor_a_new_row_late(
    store: SqliteStore, step: timedelta
) -> None:
    """A backoff is an interval: measured on the wall clock across a step back, a 30 s retry
    (or a row written just before the step) would wait the step's size on top, up to the
    longest backoff (30 min by default) after its receiver is back. Written after `now`, it
    is due at once; its next backoff is measured from that attempt."""
    longest = timedelta(minutes=30)
    await store.record(change(event(job())))
    (item,) = await store.claim_due(NOW, limit=10)
    retry = NOW + timedelta(seconds=30)
    await store.settle([Settlement(item.id, DeliveryState.PENDING, NOW, 1, next_attempt_at=retry)])
    await store.record(change(event(job("job-2"))))  # a new row, created at NOW
    stepped = NOW + timedelta(seconds=31) + step  # the backoff has passed; the wall went back
    claimed = await store.claim_due(stepped, 10, longest)
    assert [c.id for c in claimed] == [item.id, item.id + 1]
    again = stepped + timedelta(seconds=30)
    back = [
        Settlement(c.id, DeliveryState.PENDING, stepped, 2, next_attempt_at=again) for c in claimed
    ]
    await store.settle(back)
    assert await store.claim_due(stepped + timedelta(seconds=5), 10, longest) == []  # backoff kept
    assert len(await store.claim_due(again, 10, longest)) == 2


async def test_rows_go_out_in_the_order_they_were_written_whatever_their_clock_said(
    store: SqliteStore,
) -> None:
    """A row written while the wall clock was hours ahead still goes before a later one."""
    during_jump = event(job("job-1"))
    after_fix = event(job("job-2"), EventKind.COMPLETED)
    await store.record(change(during_jump, at=NOW + timedelta(hours=2)))
    await store.record(change(after_fix, at=NOW))
    items = await store.claim_due(NOW + timedelta(hours=3), limit=10)
    assert [i.transition.event_id for i in items] == [during_jump.event_id, after_fix.event_id]


async def test_two_stores_on_one_file_never_claim_the_same_row(store: SqliteStore) -> None:
    transitions = [event(job(f"job-{i}")) for i in range(30)]
    await store.record(change(*transitions, routes=("ops", "email")))
    other = await another(store)
    try:
        claims = await asyncio.gather(
            *(s.claim_due(NOW, limit=7) for _ in range(6) for s in (store, other))
        )
    finally:
        await other.close()
    ids = [item.id for batch in claims for item in batch]
    assert len(ids) == 60
    assert len(set(ids)) == 60


def lease_clock_ahead(store: SqliteStore, seconds: float) -> None:
    """Move `store`'s view of the lease clock (boot time, which claims expire on) ahead."""
    clock = store._db_clock if isinstance(store, PostgresStore) else host.lease_time

    def ahead() -> LeaseTime:
        now = clock()
        return LeaseTime(now.clock, now.seconds + seconds)

    store.lease_clock = ahead


async def test_a_claim_older_than_the_lease_goes_back_to_the_queue(store: SqliteStore) -> None:
    await store.record(change(event(job())))
    (claimed,) = await store.claim_due(NOW, limit=10)
    lease_clock_ahead(store, LEASE.total_seconds() - 5)
    assert await store.claim_due(NOW, limit=10) == []
    lease_clock_ahead(store, LEASE.total_seconds() + 1)
    (again,) = await store.claim_due(NOW, limit=10)
    assert again.id == claimed.id
    assert again.last_error is not None and "claim expired" in again.last_error


async def test_a_step_of_the_wall_clock_never_expires_a_claim(store: SqliteStore) -> None:
    """A claim lasts on the boot-time clock: the wall clock a day ahead finds it still held,
    so a send in flight across an NTP step is never handed out twice."""
    await store.record(change(event(job())))
    (claimed,) = await store.claim_due(NOW, limit=10)
    assert await store.claim_due(NOW + timedelta(days=1), limit=10) == []
    await store.settle([Settlement(claimed.id, DeliveryState.SENT, NOW + timedelta(days=1), 1)])
    assert count(store, "outbox", "state = 'sent'") == 1


async def test_a_claim_taken_on_another_boot_goes_back_to_the_queue_at_once(
    store: SqliteStore,
) -> None:
    await store.record(change(event(job())))
    (claimed,) = await store.claim_due(NOW, limit=10)
    store.lease_clock = lambda: LeaseTime("boot:another-boot", 1.0)
    (again,) = await store.claim_due(NOW, limit=10)
    assert again.id == claimed.id


async def test_a_sent_row_is_never_claimed_again(store: SqliteStore) -> None:
    await store.record(change(event(job())))
    (item,) = await store.claim_due(NOW, limit=10)
    target = TargetResult(name="JSON", url="json://127.0.0.1/", ok=True)
    await store.settle([Settlement(item.id, DeliveryState.SENT, NOW, 1, targets=(target,))])
    assert await store.claim_due(NOW + timedelta(days=1), limit=10) == []
    assert count(store, "outbox", "state = 'sent' AND sent_at IS NOT NULL") == 1
    assert count(store, "outbox", "targets LIKE '%json://127.0.0.1/%'") == 1


async def test_a_retry_comes_back_when_due_with_its_attempts_and_error(store: SqliteStore) -> None:
    await store.record(change(event(job())))
    (item,) = await store.claim_due(NOW, limit=10)
    retry_at = NOW + timedelta(seconds=30)
    await store.settle(
        [Settlement(item.id, DeliveryState.PENDING, NOW, 1, next_attempt_at=retry_at, error="503")]
    )
    assert await store.claim_due(retry_at - timedelta(seconds=1), limit=10) == []
    (again,) = await store.claim_due(retry_at, limit=10)
    assert (again.id, again.attempts, again.last_error) == (item.id, 1, "503")


async def test_a_retry_keeps_its_first_failures_elapsed_reading_through_its_claims(
    store: SqliteStore,
) -> None:
    """`dead_after` is measured from the first failure on the elapsed clock: the reading
    goes back with the retry and comes out with the next claim, whatever the wall clock did,
    and a claim kept until its lease ends (its sender stopped) loses it."""
    await store.record(change(event(job())))
    (item,) = await store.claim_due(NOW, limit=10)
    assert item.failing_for is None  # never failed
    first = Elapsed(1234.5, "boot-1")
    due = NOW - timedelta(hours=2)
    retry = Settlement(item.id, DeliveryState.PENDING, NOW, 1, due, "503", failing_for=first)
    await store.settle([retry])
    (again,) = await store.claim_due(NOW - timedelta(hours=1), limit=10)  # stepped back 1 h
    assert again.failing_for == first
    await store.settle([replace(retry, attempts=2)])
    (third,) = await store.claim_due(NOW, limit=10)
    assert third.failing_for == first
    lease_clock_ahead(store, LEASE.total_seconds() + 1)
    (expired,) = await store.claim_due(NOW, limit=10)
    assert expired.failing_for is None  # measured again from its next failure: late, not early


async def test_a_dead_row_leaves_the_queue_and_shows_as_a_dead_letter(store: SqliteStore) -> None:
    await store.record(change(event(job())))
    (item,) = await store.claim_due(NOW, limit=10)
    await store.settle([Settlement(item.id, DeliveryState.DEAD, NOW, 9, error="gave up after 24h")])
    assert await store.claim_due(NOW + timedelta(days=1), limit=10) == []
    assert await store.dead_letter_count() == 1
    (dead,) = (await store.snapshot(NOW)).dead_letters
    assert (dead.id, dead.route, dead.kind, dead.job_uuid) == (item.id, "ops", "failed", "job-1")
    assert (dead.attempts, dead.last_error) == (9, "gave up after 24h")
    later = NOW + timedelta(days=2)
    assert await store.retry_dead(later, [item.id, 999]) == [item.id]  # 999 is no dead letter
    (retried,) = await store.claim_due(later, limit=10)
    assert (retried.id, retried.attempts) == (item.id, 0)
    assert retried.created_at == later  # a fresh dead_after window, not dead again at once
    assert await store.retry_dead(later) == []


async def test_settling_a_row_that_is_not_claimed_changes_nothing(store: SqliteStore) -> None:
    await store.record(change(event(job())))
    await store.settle([Settlement(1, DeliveryState.SENT, NOW, 1)])
    assert count(store, "outbox", "state = 'pending'") == 1


async def test_a_stale_settle_after_another_store_reclaimed_the_row_is_ignored(
    store: SqliteStore,
) -> None:
    await store.record(change(event(job())))
    (mine,) = await store.claim_due(NOW, limit=10)
    other = await another(store)
    try:
        lease_clock_ahead(other, 2 * LEASE.total_seconds())
        (theirs,) = await other.claim_due(NOW, limit=10)
        await store.settle([Settlement(mine.id, DeliveryState.PENDING, NOW, 1, error="late")])
        assert count(store, "outbox", "state = 'sending'") == 1
        await other.settle([Settlement(theirs.id, DeliveryState.SENT, NOW + 2 * LEASE, 2)])
    finally:
        await other.close()
    assert count(store, "outbox", "state = 'sent' AND attempts = 2") == 1


async def test_a_row_whose_event_cannot_be_read_is_dead_lettered_not_blocking(
    store: SqliteStore,
) -> None:
    await store.record(change(event(job("job-1")), event(job("job-2"))))
    on(store).rows("UPDATE events SET payload = '{\"kind\": 1}' WHERE event_id LIKE 'job-1/%'")
    items = await store.claim_due(NOW, limit=10)
    assert [i.transition.job_uuid for i in items] == ["job-2"]
    (dead,) = (await store.snapshot(NOW)).dead_letters
    assert dead.last_error is not None and "undecodable" in dead.last_error


# --- read side, meta, retention --------------------------------------------------------------


async def test_snapshot_shows_each_kb_latest_job_and_the_outbox(store: SqliteStore) -> None:
    latest = job("job-1", phase_raw="BATCH_JOB_PHASE_WEIRD", phase=Phase.UNKNOWN)
    older = job("job-0", created_at=NOW - timedelta(days=2))
    jobs = (state(latest, stalled=StallReason.NO_PROGRESS), state(older, done=True))
    await store.record(change(event(older), jobs=jobs, routes=("ops", "email")))
    await store.set_last_cycle_at(NOW)
    (item, _) = await store.claim_due(NOW, limit=10)
    await store.settle([Settlement(item.id, DeliveryState.DEAD, NOW, 3, error="HTTP 400")])
    snap = await store.snapshot(NOW + timedelta(minutes=10))
    (kb,) = snap.kbs
    assert (kb.uuid, kb.name, kb.job_uuid) == (KB, "docs", "job-1")
    assert (kb.phase, kb.status) == ("BATCH_JOB_PHASE_WEIRD", "INDEX_JOB_STATUS_IN_PROGRESS")
    assert (kb.completed_datasources, kb.total_datasources, kb.tokens) == (1, 3, 50)
    assert (kb.stalled, kb.done, kb.started_at) == (
        StallReason.NO_PROGRESS,
        False,
        latest.started_at,
    )
    assert snap.outbox_by_state == {
        "pending": 0,
        "sending": 1,
        "sent": 0,
        "dead": 1,
        "silenced": 0,
    }
    routes = [(r.route, r.pending, r.sending, r.dead) for r in snap.routes]
    assert routes == [("email", 0, 1, 0), ("ops", 0, 0, 1)]
    assert (snap.undelivered, snap.dead) == (1, 1)
    assert snap.oldest_undelivered_age() == 600.0
    assert snap.oldest_undelivered_age(NOW + timedelta(minutes=20)) == 1200.0
    assert snap.jobs_by_state == {
        "pending": 0,
        "running": 0,
        "stalled": 1,
        "unknown": 0,
        "done": 1,
    }
    assert snap.events_by_kind == {"failed": 1}
    assert (snap.last_cycle_at, snap.created_at, snap.schema_version) == (NOW, NOW, SCHEMA_VERSION)


async def test_meta_values_are_kept_until_deleted(store: SqliteStore) -> None:
    assert await store.get_meta("api_first_failure_at") is None
    await store.set_meta("api_first_failure_at", "2026-11-28T12:00:00Z")
    assert await store.get_meta("api_first_failure_at") == "2026-11-28T12:00:00Z"
    await store.set_meta("api_first_failure_at", None)
    assert await store.get_meta("api_first_failure_at") is None
    assert await store.last_cycle_at() is None


async def test_checking_that_a_store_is_writable_writes_nothing(store: SqliteStore) -> None:
    """`watcher health` probes every 30 s beside the daemon: it takes the write lock, no row."""
    before = None if on(store).is_pg else wal_size(store)
    rows = on(store).rows("SELECT key, value FROM meta ORDER BY key")
    await store.check_writable()
    assert await store.get_meta("writable_probe") is None
    assert on(store).rows("SELECT key, value FROM meta ORDER BY key") == rows
    assert before is None or wal_size(store) == before


async def test_prune_removes_old_settled_rows_but_never_undelivered_ones(
    store: SqliteStore,
) -> None:
    old_jobs = tuple(
        state(job(f"old-{i}", created_at=NOW - timedelta(days=i)), done=True) for i in range(5)
    )
    delivered, waiting = event(job("old-1")), event(job("old-2"))
    await store.record(change(delivered, waiting, jobs=(*old_jobs, state(job("open")))))
    items = await store.claim_due(NOW, limit=10)
    sent = next(i for i in items if i.transition == delivered)
    await store.settle([Settlement(sent.id, DeliveryState.SENT, NOW, 1)])
    pruned = await store.prune(NOW + timedelta(days=30), keep_per_kb=3)
    # the sent row and its event go; the undelivered row and the event it needs stay
    assert count(store, "outbox") == 1
    assert count(store, "events", "event_id = 'old-2/failed/1'") == 1
    # the three newest jobs of the KB stay (old-0, open, old-1); older done jobs go
    remaining = sorted((await store.load([f"old-{i}" for i in range(5)])).jobs)
    assert remaining == ["old-0", "old-1", "open"]
    assert pruned == 1 + 1 + 3


async def test_prune_keeps_the_latest_job_of_each_kb_even_when_old(store: SqliteStore) -> None:
    ancient = state(job("job-1", created_at=NOW - timedelta(days=400)), done=True)
    await store.record(change(jobs=(ancient,)))
    assert await store.prune(NOW + timedelta(days=30), keep_per_kb=0) == 0
    assert "job-1" in (await store.load(["job-1"])).jobs


async def test_a_closed_store_refuses_work_with_a_store_error(engine: Engine) -> None:
    opened = await engine.open(NOW)
    await opened.close()
    await opened.close()
    with pytest.raises(StoreError, match="closed"):
        await opened.load([])


async def test_a_held_row_waits_for_its_quiet_hours_and_comes_forward_when_they_no_longer_hold(
    store: SqliteStore,
) -> None:
    """Held until 18:00 by a window; the window is removed: `release_held` makes it due now,
    while a row released earlier and waiting for a retry keeps its backoff."""
    await store.record(change(event(job()), routes=("quiet", "other")))
    quiet, other = await store.claim_due(NOW, limit=10)
    end = NOW + timedelta(hours=6)
    held = Settlement(quiet.id, DeliveryState.PENDING, NOW, 0, next_attempt_at=end)
    retry = NOW + timedelta(minutes=10)
    await store.settle([replace(held, held_by="nights")])
    await store.settle([Settlement(other.id, DeliveryState.PENDING, NOW, 1, next_attempt_at=retry)])
    longest = timedelta(minutes=30)
    assert await store.claim_due(NOW + timedelta(seconds=5), 10, longest) == []  # held, waiting
    assert await store.release_held({"quiet": end}, NOW) == 0  # the window still ends then
    assert await store.release_held({}, NOW + timedelta(seconds=5)) == 1  # no window any more
    (again,) = await store.claim_due(NOW + timedelta(seconds=5), 10, longest)
    assert (again.id, again.held_by) == (quiet.id, "nights")


async def test_a_released_row_waiting_for_a_retry_is_due_after_a_step_of_the_wall_clock(
    store: SqliteStore,
) -> None:
    """A held row went out at the window's end, failed, and waits for its retry; the wall clock
    was hours ahead when that retry was set: as for any row, it is due now."""
    await store.record(change(event(job())))
    (item,) = await store.claim_due(NOW, limit=10)
    held = Settlement(item.id, DeliveryState.PENDING, NOW, 0, next_attempt_at=NOW)
    await store.settle([replace(held, held_by="nights")])
    (item,) = await store.claim_due(NOW, limit=10)
    jumped = NOW + timedelta(hours=2)
    retry = Settlement(item.id, DeliveryState.PENDING, jumped, 1, next_attempt_at=jumped)
    await store.settle([retry])
    assert await store.release_held({}, NOW) == 0  # no longer held: its retry is its own
    (backlog,) = (await store.snapshot(NOW)).routes
    assert (backlog.pending, backlog.held) == (1, 0)  # waiting for a retry, not quiet hours
    (again,) = await store.claim_due(NOW + timedelta(seconds=5), 10, timedelta(minutes=30))
    assert again.id == item.id


async def test_the_gauges_counts_follow_every_commit_of_this_store_and_of_any_other(
    store: SqliteStore, engine: Engine
) -> None:
    """The daemon reads the counts after every cycle (`detail=False`); SQLite answers them
    from memory while nothing committed, so each kind of commit must show at once: this
    store's record and settle, and another process's `watcher retry`."""

    def outbox(snap: StoreSnapshot) -> tuple[int, int, int]:
        by = snap.outbox_by_state
        return by[DeliveryState.PENDING], by[DeliveryState.SENT], by[DeliveryState.DEAD]

    assert outbox(await store.snapshot(NOW, detail=False)) == (0, 0, 0)
    await store.record(change(event(job())))
    assert outbox(await store.snapshot(NOW, detail=False)) == (1, 0, 0)
    (item,) = await store.claim_due(NOW, limit=10)
    await store.settle([Settlement(item.id, DeliveryState.DEAD, NOW, 3)])
    later = await store.snapshot(NOW + timedelta(minutes=5), detail=False)
    assert (outbox(later), later.at) == ((0, 0, 1), NOW + timedelta(minutes=5))
    assert later.jobs_by_state[JobCondition.DONE] == 1
    if not engine.is_pg:  # the heartbeat's meta write, every cycle: the counts are kept
        kept = store.counts_kept
        await store.set_last_cycle_at(NOW + timedelta(minutes=6))
        beat = await store.snapshot(NOW + timedelta(minutes=6), detail=False)
        assert (outbox(beat), beat.last_cycle_at) == ((0, 0, 1), NOW + timedelta(minutes=6))
        assert store.counts_kept == kept + 1
    other = await engine.open(NOW)
    try:
        assert await other.retry_dead(NOW) == [item.id]
    finally:
        await other.close()
    assert outbox(await store.snapshot(NOW, detail=False)) == (1, 0, 0)


async def test_the_kept_counts_hold_only_while_no_commit_of_this_store_or_another_was_seen(
    store: SqliteStore, engine: Engine
) -> None:
    """A quiet cycle's gauges come from the counts kept by the last count-only snapshot, read
    without a round trip to the store's thread (`kept_counts`): never once this store's own
    commit changed a counted row, nor once the version read shows another connection's."""
    if engine.is_pg:  # no `data_version`: never a quiet cycle, never kept counts
        await store.snapshot(NOW, detail=False)
        assert store.kept_counts() is None
        return
    assert store.kept_counts() is None  # nothing read yet
    snap = await store.snapshot(NOW, detail=False)
    kept = store.kept_counts()
    assert kept is not None and kept.outbox_by_state == snap.outbox_by_state
    await store.set_last_cycle_at(NOW)  # a meta write (the heartbeat's): the counts hold
    assert store.kept_counts() is not None
    await store.record(change(event(job())))  # an outbox row: they no longer hold
    assert store.kept_counts() is None
    await store.snapshot(NOW, detail=False)
    assert store.kept_counts() is not None
    other = sqlite3.connect(store.path)  # another connection's commit (a `watcher ack`)
    with contextlib.closing(other), other:
        other.execute("CREATE TABLE elsewhere (x)")
    assert store.kept_counts() is not None  # not seen until the version is read again
    await store.state_version()  # what a cycle reads at its start
    assert store.kept_counts() is None


async def test_only_the_heartbeats_commit_is_left_unflushed_every_other_is_synced(
    store: SqliteStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat's meta (`set_metas`, every cycle) commits with `synchronous=NORMAL`: other
    processes read it at once all the same, and a machine's crash may take back only it (a
    heartbeat is judged with its boot id). Its flush was most of a quiet cycle's store cost.
    Every other write, the outbox's and the state's first, stays flushed (FULL)."""
    if engine.is_pg:
        await store.set_metas({"k": "v"}, last_cycle_at=NOW)  # no pragma reaches PostgreSQL
        assert await store.get_meta("k") == "v"
        return
    seen: list[str] = []

    def level(conn: sqlite3.Connection) -> str:
        (n,) = conn.execute("PRAGMA synchronous").fetchone()
        return {1: "NORMAL", 2: "FULL"}[int(n)]

    write_meta = sqlite_module.write_meta

    def spy(conn: sqlite3.Connection, rows: list[tuple[str, str | None]]) -> None:
        seen.append(level(conn))
        write_meta(conn, rows)

    monkeypatch.setattr(sqlite_module, "write_meta", spy)
    await store.set_metas({"heartbeat": "x"}, last_cycle_at=NOW)
    await store.set_meta("pace", "y")
    assert seen == ["NORMAL", "FULL"]
    await store.record(change(event(job())))
    assert await store._run("reading", level) == "FULL"
    other = sqlite3.connect(store.path)  # another process reads the heartbeat at once
    with contextlib.closing(other):
        (value,) = other.execute("SELECT value FROM meta WHERE key = 'heartbeat'").fetchone()
    assert value == "x"


async def test_every_cycles_outbox_statements_read_the_queue_by_index_not_the_whole_history(
    store: SqliteStore,
) -> None:
    """Each cycle claims what is due and releases rows quiet hours no longer back; with a
    long history of sent rows (100,000 after 60 days of a busy account) a scan of the outbox
    costs tens of milliseconds every cycle. Each statement they run reads by index."""
    if on(store).is_pg:
        pytest.skip("SQLite's query plans")
    history = [event(job(f"old-{i:05}"), EventKind.COMPLETED) for i in range(5_000)]
    await store.record(change(*history))
    for item in await store.claim_due(NOW, limit=5_000):
        await store.settle([Settlement(item.id, DeliveryState.SENT, NOW, 1)])
    await store.record(change(event(job("new-1"))))
    # the statistics a closed store leaves (`PRAGMA optimize`): with them SQLite's planner
    # prefers walking the whole table in `id` order to the index on the state
    await store._run("analyzing", lambda conn: conn.execute("ANALYZE"))
    ran: list[str] = []
    await store._run("tracing", lambda conn: conn.set_trace_callback(ran.append))
    try:
        claimed = await store.claim_due(NOW, limit=10)
        await store.release_held({}, NOW)
    finally:
        await store._run("tracing", lambda conn: conn.set_trace_callback(None))
    assert [i.transition.event_id for i in claimed] == [event(job("new-1")).event_id]
    reads = [sql for sql in ran if "outbox" in sql]
    assert reads, ran
    plans = await store._run("explaining", lambda conn: [query_plan(conn, sql) for sql in reads])
    for sql, plan in zip(reads, plans, strict=True):
        assert "SCAN o" not in plan, (sql, plan)  # neither `outbox` nor its alias `o` scanned

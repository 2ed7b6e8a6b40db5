"""The SQLite store's lease: one poller per store, fenced in every write's transaction.

Stores here share one process, so the liveness of another holder (this very pid) reads
"running"; the cases of a holder that is gone or unknown inject what the store would have
found (`store.liveness`), and an expiry moves the lease clock (`store.lease_clock`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.stores import one_alert_change, process_holder
from watcher.core.errors import StoreHeld
from watcher.core.lease import Holder, LeaseAction, LeaseReason, LeaseTime, Liveness
from watcher.core.outbox import DeliveryState, Settlement
from watcher.core.state import Change
from watcher.edges import host
from watcher.edges.store import schema
from watcher.edges.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
D = 30.0


def holder(command: str = "watcher run") -> Holder:
    return process_holder(NOW, command)


def change(n: int) -> Change:
    return one_alert_change(n, NOW)


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def later(store: SqliteStore, seconds: float) -> None:
    """Move `store`'s view of the lease clock `seconds` ahead."""
    clock = host.lease_time

    def ahead() -> LeaseTime:
        now = clock()
        return LeaseTime(now.clock, now.seconds + seconds)

    store.lease_clock = ahead


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    first = await SqliteStore.open(tmp_path / "watcher.db", now=NOW)
    second = await SqliteStore.open(tmp_path / "watcher.db", now=NOW)
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


async def test_the_first_process_takes_epoch_1_and_a_second_stands_by_naming_it(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    first, second = stores
    one, two = holder(), holder()
    taken = await first.lease_step(one, D)
    assert (taken.decision.action, taken.decision.reason, first.epoch) == (
        LeaseAction.ACQUIRE,
        LeaseReason.VACANT,
        1,
    )
    waiting = await second.lease_step(two, D)
    assert (waiting.decision.action, waiting.decision.reason) == (
        LeaseAction.STAND_BY,
        LeaseReason.HELD,
    )
    assert waiting.decision.holder == one and second.epoch is None
    renewed = await first.lease_step(one, D)
    assert (renewed.decision.reason, renewed.decision.epoch) == (LeaseReason.MINE, 1)


async def test_poller_writes_need_the_lease_and_write_nothing_without_it(
    stores: tuple[SqliteStore, SqliteStore], tmp_path: Path
) -> None:
    first, second = stores
    await first.lease_step(holder(), D)
    await first.record(change(0))
    await second.lease_step(holder(), D)  # stands by
    for attempt in (
        second.record(change(1)),
        second.set_meta("poll_pace", "{}"),
        second.set_last_cycle_at(NOW),
        second.prune(NOW),
        second.claim_due(NOW, 10),  # a process standing by delivers nothing either
    ):
        with pytest.raises(StoreHeld, match="does not hold the store's lease"):
            await attempt
    bystander = await SqliteStore.open(tmp_path / "watcher.db", now=NOW)  # status, health
    try:
        with pytest.raises(StoreHeld, match="needs the store's lease"):
            await bystander.record(change(2))
    finally:
        await bystander.close()
    assert rows(first.path, "SELECT event_id, state FROM outbox") == [("job-0/failed", "pending")]
    assert rows(first.path, "SELECT count(*) FROM meta WHERE key != 'created_at'") == [(0,)]


async def test_a_holder_taken_over_has_every_write_refused_inside_its_transaction(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    """A paused holder whose lease ran out wakes up to find its epoch gone: nothing it
    writes lands, whatever it was about to write."""
    first, second = stores
    old, new = holder(), holder()
    await first.lease_step(old, D)
    await first.record(change(1))
    (claimed,) = await first.claim_due(NOW, 10)
    second.liveness = lambda _: Liveness.UNKNOWN  # another container: only the expiry counts
    later(second, D + 1)
    taken = await second.lease_step(new, D)
    assert (taken.decision.reason, taken.decision.epoch, taken.returned) == (
        LeaseReason.EXPIRED,
        2,
        1,
    )
    before = rows(first.path, "SELECT * FROM outbox")
    with pytest.raises(StoreHeld, match=r"no longer holds.*epoch 2") as caught:
        await first.record(change(2))
    assert new.describe() in str(caught.value)
    for attempt in (
        first.settle([Settlement(claimed.id, DeliveryState.SENT, NOW, 1)]),
        first.claim_due(NOW, 10),
        first.set_last_cycle_at(NOW),
    ):
        with pytest.raises(StoreHeld):
            await attempt
    assert rows(first.path, "SELECT * FROM outbox") == before
    assert rows(first.path, "SELECT count(*) FROM events") == [(1,)]
    lost = await first.lease_step(old, D)
    assert (lost.decision.action, lost.decision.holder) == (LeaseAction.STAND_BY, new)


async def test_taking_over_returns_the_claims_of_earlier_holders_only(
    stores: tuple[SqliteStore, SqliteStore], tmp_path: Path
) -> None:
    first, second = stores
    await first.lease_step(holder(), D)
    await first.record(change(1))
    await first.record(change(2))
    (mine,) = await first.claim_due(NOW, 1)
    bystander = await SqliteStore.open(tmp_path / "watcher.db", now=NOW)
    try:
        (theirs,) = await bystander.claim_due(NOW, 1)  # holds no lease: a claim of no epoch
    finally:
        await bystander.close()
    second.liveness = lambda _: Liveness.GONE  # the holder was killed
    taken = await second.lease_step(holder(), D)
    assert (taken.decision.reason, taken.returned) == (LeaseReason.HOLDER_GONE, 1)
    states = dict(rows(first.path, "SELECT id, state FROM outbox"))
    assert states == {mine.id: "pending", theirs.id: "sending"}
    [(error,)] = rows(first.path, f"SELECT last_error FROM outbox WHERE id = {mine.id}")
    assert error == "claim returned: the process that claimed it is gone"


async def test_a_holder_that_still_runs_is_never_taken_over_even_when_its_lease_ran_out(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    first, second = stores
    await first.lease_step(holder(), D)
    later(second, 10 * D)
    waiting = await second.lease_step(holder(), D)
    assert (waiting.decision.action, waiting.decision.reason) == (
        LeaseAction.STAND_BY,
        LeaseReason.HOLDER_RUNNING,
    )


async def test_closing_lets_the_lease_go_so_the_next_process_takes_it_at_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.db"
    first = await SqliteStore.open(path, now=NOW)
    await first.lease_step(holder("watcher once"), D)
    await first.close()
    assert rows(path, "SELECT holder, epoch FROM lease") == [(None, 1)]
    second = await SqliteStore.open(path, now=NOW)
    try:
        taken = await second.lease_step(holder(), D)
        assert (taken.decision.reason, taken.decision.epoch) == (LeaseReason.RELEASED, 2)
    finally:
        await second.close()


async def test_a_version_1_store_is_migrated_and_its_claims_go_back_at_the_first_lease(
    tmp_path: Path,
) -> None:
    """Claims left by a watcher from before the lease belong to nobody alive."""
    path = tmp_path / "watcher.db"
    at = schema.to_db(NOW)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        for statement in schema.MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO events (event_id, kind, at, cycle_id, payload, recorded_at)"
            " VALUES ('e1', 'failed', ?, 'c', '{}', ?)",
            (at, at),
        )
        conn.execute(
            "INSERT INTO outbox (event_id, route, state, created_at, next_attempt_at, claimed_at,"
            " claim_token) VALUES ('e1', 'ops', 'sending', ?, ?, ?, 'old')",
            (at, at, at),
        )
    store = await SqliteStore.open(path, now=NOW + timedelta(days=1))
    try:
        assert rows(path, "PRAGMA user_version") == [(schema.SCHEMA_VERSION,)]
        taken = await store.lease_step(holder(), D)
        assert (taken.decision.epoch, taken.returned) == (1, 1)
    finally:
        await store.close()

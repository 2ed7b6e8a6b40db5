"""The store's side of silences: migration, add/list/expire, held rows, ends announced once."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.edges.store.test_sqlite import ENGINES, KB, LEASE, NOW, change, count, event, job, state
from tests.stores import Engine
from watcher.core.incident import Incident
from watcher.core.model import EventKind, Phase, Status
from watcher.core.outbox import DeliveryState
from watcher.core.ports import SilenceAnnouncer
from watcher.core.silences import HeldRow, Silence, announcement, hold
from watcher.core.state import Change, OpenProblem
from watcher.edges.store.schema import MIGRATIONS, SCHEMA_VERSION
from watcher.edges.store.sqlite import SqliteStore


def silence(sid: str = "s1", hours: float = 2, **matchers: object) -> Silence:
    return Silence(
        id=sid,
        kb_uuid=matchers.get("kb"),  # type: ignore[arg-type]
        event=matchers.get("event"),  # type: ignore[arg-type]
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=hours),
        created_by="alice",
        comment="maintenance",
        kb_label="docs",
    )


@pytest.fixture
async def store(engine: Engine) -> AsyncIterator[SqliteStore]:
    """A store on each engine (SQLite, PostgreSQL): silences are part of the store contract."""
    opened = await engine.open_held(NOW, lease=LEASE)
    ENGINES[id(opened)] = engine
    try:
        yield opened
    finally:
        ENGINES.pop(id(opened), None)
        await opened.close()


async def test_a_version_5_store_keeps_its_outbox_rows_and_ids_and_takes_silenced_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.db"
    with sqlite3.connect(path) as conn:
        for statements in MIGRATIONS[:5]:
            for statement in statements:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 5")
        conn.execute(
            "INSERT INTO events (event_id, kind, at, cycle_id, payload, recorded_at)"
            " VALUES ('e1', 'failed', 't', 'c', '{}', 't')"
        )
        for row_id, state in ((7, "pending"), (9, "dead")):
            conn.execute(
                "INSERT INTO outbox (id, event_id, route, state, created_at, next_attempt_at)"
                " VALUES (?, 'e1', ?, ?, 't', 't')",
                (row_id, f"r{row_id}", state),
            )
    conn.close()
    opened = await SqliteStore.open(path, now=NOW)
    await opened.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        rows = conn.execute("SELECT id, route, state, silence_id FROM outbox ORDER BY id")
        assert rows.fetchall() == [(7, "r7", "pending", None), (9, "r9", "dead", None)]
        conn.execute("UPDATE outbox SET state = 'silenced', silence_id = 's1' WHERE id = 7")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE outbox SET state = 'lost' WHERE id = 9")
    conn.close()


async def test_silences_are_added_listed_and_expired_once(store: SqliteStore) -> None:
    await store.add_silence(silence("a", hours=1, kb=KB))
    await store.add_silence(silence("b", hours=3, event=EventKind.API_UNREACHABLE))
    active = await store.silences(NOW)
    assert [(s.id, s.kb_uuid, s.event, s.kb_label) for s in active] == [
        ("a", KB, None, "docs"),
        ("b", None, EventKind.API_UNREACHABLE, "docs"),
    ]
    assert await store.expire_silence("a", NOW + timedelta(minutes=5))
    assert not await store.expire_silence("a", NOW + timedelta(minutes=6))  # ended already
    assert not await store.expire_silence("nope", NOW)
    assert [s.id for s in await store.silences(NOW + timedelta(minutes=10))] == ["b"]
    every = await store.silences(NOW + timedelta(minutes=10), every=True)
    assert {s.id: s.expired_by_hand for s in every} == {"a": True, "b": False}


def incident(**fields: object) -> Incident:
    """KB's incident: 2 failures in a row, opened an hour before NOW."""
    base = Incident(
        id="incident/job-1/failed",
        kb_uuid=KB,
        kb_name="docs",
        opened_at=NOW - timedelta(hours=1),
        api_since=NOW - timedelta(hours=1, seconds=30),
        failures=2,
        last_kind=EventKind.FAILED,
        last_job_uuid="job-1",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def announcer(ended: Silence, at: datetime, seen: list[object]) -> SilenceAnnouncer:
    """`announcement`, as the service builds it, noting what the store read for it."""

    def build(rows: list[HeldRow], incidents: Mapping[str, Incident]) -> Change:
        seen.append((rows, dict(incidents)))
        transitions, deliveries = announcement(ended, rows, incidents, at)
        return Change("c-end", at, transitions=transitions, deliveries=deliveries)

    return build


async def test_a_held_row_is_recorded_silenced_counted_and_its_end_announced_once(
    store: SqliteStore,
) -> None:
    failed = job(phase=Phase.FAILED, status=Status.FAILED)
    await store.record(change(event(failed), jobs=(state(failed, done=True),)))
    await store.record(Change("c-inc", NOW, incidents=(incident(),)))
    await store.add_silence(silence("s1", kb=KB))
    items = await store.claim_due(NOW, 10)
    send, held = hold(items, await store.current_silences(NOW), NOW)
    assert send == [] and len(held) == 1
    await store.settle([h.settlement(NOW) for h in held])
    assert count(store, "outbox", "state = 'silenced' AND silence_id = 's1'") == 1
    assert await store.claim_due(NOW + timedelta(hours=1), 10) == []  # never sent
    [listed] = await store.silences(NOW)
    assert listed.held == 1

    later = NOW + timedelta(hours=3)
    [ended] = await store.current_silences(later)  # ended, not announced yet
    seen: list[object] = []
    said = await store.announce_silence_end("s1", later, announcer(ended, later, seen))
    assert seen == [([HeldRow("ops", KB, "docs")], {KB: incident()})]  # read in the write
    assert said is not None and len(said.deliveries) == 1
    again = await store.announce_silence_end("s1", later, announcer(ended, later, seen))
    assert again is None and len(seen) == 1  # once, even from another process: not even read
    assert count(store, "outbox", "event_id = 'silence/s1/ended/ops'") == 1
    assert await store.current_silences(later) == []
    [due] = await store.claim_due(later, 10)
    assert due.transition.kind is EventKind.SILENCE_ENDED
    assert due.transition.open_problems == (OpenProblem.of(incident()),)  # round-trips


async def test_a_kb_whose_incident_closed_during_the_silence_is_not_announced(
    store: SqliteStore,
) -> None:
    """Its latest job failed, but the incident is closed: the store reads only open ones."""
    failed = job(phase=Phase.FAILED, status=Status.FAILED)
    await store.record(change(event(failed), jobs=(state(failed, done=True),)))
    await store.add_silence(silence("s1", kb=KB))
    _, held = hold(await store.claim_due(NOW, 10), await store.current_silences(NOW), NOW)
    await store.settle([h.settlement(NOW) for h in held])
    closed = incident(closed_at=NOW + timedelta(hours=1))
    await store.record(Change("c-inc", NOW + timedelta(hours=1), incidents=(closed,)))
    later = NOW + timedelta(hours=3)
    [ended] = await store.current_silences(later)
    seen: list[object] = []
    said = await store.announce_silence_end("s1", later, announcer(ended, later, seen))
    assert said is not None and said.deliveries == ()
    assert seen == [([HeldRow("ops", KB, "docs")], {})]
    assert count(store, "outbox", "event_id LIKE 'silence/%'") == 0
    assert await store.current_silences(later) == []  # announced (with nothing to say)


async def test_silenced_rows_are_pruned_only_once_their_silence_was_announced(
    store: SqliteStore,
) -> None:
    failed = job(phase=Phase.FAILED, status=Status.FAILED)
    await store.record(change(event(failed), jobs=(state(failed, done=True),)))
    await store.add_silence(silence("s1"))
    _, held = hold(await store.claim_due(NOW, 10), await store.current_silences(NOW), NOW)
    await store.settle([h.settlement(NOW) for h in held])
    await store.prune(NOW + timedelta(days=30))
    assert count(store, "outbox", "state = 'silenced'") == 1  # its silence may still end
    end = NOW + timedelta(hours=3)
    assert await store.announce_silence_end("s1", end, lambda _r, _i: Change("c", end))
    await store.prune(NOW + timedelta(days=30))
    assert count(store, "outbox", "state = 'silenced'") == 0
    assert DeliveryState.SILENCED.value == "silenced"

"""Incident rows in a real SQLite store: recorded with the cycle, loaded with the state,
acknowledged by `watcher ack`, and a reminder decided before an ack never written after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.edges.store.test_sqlite import KB, LEASE, NOW, change, event, job
from tests.stores import Engine
from watcher.core.clocks import Instant
from watcher.core.errors import AckRefused, StoreError
from watcher.core.facts import StoredFact
from watcher.core.incident import Ack, Incident, Notice
from watcher.core.incidents import track
from watcher.core.model import EventKind
from watcher.core.reminders import IncidentRule
from watcher.core.state import Change, Delivery, KbState
from watcher.edges.store.sqlite import SqliteStore

NOW_I = Instant.aligned(NOW)
H = timedelta(hours=1)


@pytest.fixture
async def store(engine: Engine) -> AsyncIterator[SqliteStore]:
    opened = await engine.open_held(NOW, lease=LEASE)
    try:
        yield opened
    finally:
        await opened.close()


def opened(failures: int = 1, **fields: object) -> Incident:
    """An incident of KB opened an hour ago, `ops` told then."""
    heard = Notice("ops", NOW_I.elapsed.minus(H), NOW_I.elapsed.minus(H))
    base = Incident(
        id="incident/job-1/failed/1",
        kb_uuid=KB,
        kb_name="docs",
        opened_at=NOW - H,
        api_since=NOW - H - timedelta(seconds=30),
        failures=failures,
        last_kind=EventKind.FAILED,
        last_job_uuid="job-1",
        notices=(heard,),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


async def _record_incident(store: SqliteStore, incident: Incident) -> None:
    await store.record(replace(change(event(job())), incidents=(incident,)))


async def test_an_incident_recorded_with_its_cycle_is_loaded_open_with_the_state(
    store: SqliteStore,
) -> None:
    await _record_incident(store, opened())
    loaded = await store.load([])
    assert loaded.incidents == {KB: opened()}
    assert await store.open_incidents() == (opened(),)


async def test_a_closed_incident_is_no_longer_loaded(store: SqliteStore) -> None:
    await _record_incident(store, opened())
    await _record_incident(store, opened(closed_at=NOW))
    assert (await store.load([])).incidents == {}


async def test_a_kb_has_at_most_one_open_incident(store: SqliteStore) -> None:
    await _record_incident(store, opened())
    with pytest.raises(StoreError, match="constraint"):
        await _record_incident(store, opened(id="incident/job-2/failed/1"))


@pytest.mark.parametrize(
    "ref",
    [
        # the KB's name
        "docs",
        # its uuid
        KB,
        # the uuid of one of its jobs
        "job-1",
    ],
)
async def test_ack_finds_the_incident_by_kb_name_uuid_or_job(store: SqliteStore, ref: str) -> None:
    await _record_incident(store, opened())
    acked = await store.acknowledge(ref, Ack("ana", NOW, "on it"))
    assert acked.ack == Ack("ana", NOW, "on it")
    assert (await store.load([])).incidents[KB].ack == Ack("ana", NOW, "on it")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        # a name the store never saw
        ("wiki", "'wiki' is neither a knowledge base"),
        # a known KB with nothing open
        ("docs", "has no open incident: nothing to acknowledge"),
    ],
)
async def test_ack_of_nothing_known_or_nothing_open_is_refused(
    store: SqliteStore, ref: str, message: str
) -> None:
    await store.record(change(event(job(), EventKind.COMPLETED)))
    with pytest.raises(AckRefused, match=message):
        await store.acknowledge(ref, Ack("ana", NOW))


async def test_ack_of_a_name_two_kbs_share_asks_for_the_uuid(store: SqliteStore) -> None:
    twin = KbState("kb-2", "docs", NOW)
    await store.record(replace(change(event(job())), kbs=(*change().kbs, twin)))
    with pytest.raises(AckRefused, match="names several knowledge bases"):
        await store.acknowledge("docs", Ack("ana", NOW))


async def test_the_daemons_next_cycle_keeps_an_ack_made_meanwhile(store: SqliteStore) -> None:
    await _record_incident(store, opened())
    await store.acknowledge("docs", Ack("ana", NOW))
    await _record_incident(store, opened(failures=2))  # decided on a read before the ack
    assert (await store.load([])).incidents[KB] == opened(failures=2, ack=Ack("ana", NOW))


async def test_a_reminder_decided_before_an_ack_is_not_written_after_it(
    store: SqliteStore,
) -> None:
    await _record_incident(store, opened())
    before = await store.load([])  # the cycle reads: open, not acknowledged
    rules = [IncidentRule("ops", repeat_after=H)]
    tracked = track(before.incidents, [], [], rules, NOW_I)
    assert [d.route for d in tracked.deliveries] == ["ops"]  # a reminder is due
    await store.acknowledge("docs", Ack("ana", NOW))  # `watcher ack` in between
    nudged = Change("c2", NOW, transitions=tracked.transitions, deliveries=tracked.deliveries)
    await store.record(replace(nudged, incidents=tracked.incidents))
    snap = await store.snapshot(NOW)
    assert snap.undelivered == 1  # the failure's own row only: no reminder row


async def test_a_reminder_due_is_queued_once_however_often_it_is_recorded(
    store: SqliteStore,
) -> None:
    await _record_incident(store, opened())
    tracked = track((await store.load([])).incidents, [], [], [IncidentRule("ops", H)], NOW_I)
    again = Change("c2", NOW, transitions=tracked.transitions, deliveries=tracked.deliveries)
    await store.record(again)
    await store.record(again)
    assert (await store.snapshot(NOW)).undelivered == 2  # the failure and one reminder
    assert tracked.deliveries == (
        Delivery("incident/job-1/failed/1/reminder/ops/1", "ops", incident=opened().id),
    )


async def test_prune_forgets_closed_incidents_older_than_retention_and_keeps_open_ones(
    store: SqliteStore,
) -> None:
    await _record_incident(store, opened(closed_at=NOW - 100 * H))
    await _record_incident(store, opened(id="incident/job-2/failed/1"))
    await store.prune(NOW - 50 * H)
    assert await store.open_incidents() == (opened(id="incident/job-2/failed/1"),)
    assert await store.prune(NOW - 50 * H) == 0  # the closed one went the first time


async def test_an_ack_written_by_another_process_is_loaded_by_the_poller_at_once(
    store: SqliteStore, engine: Engine
) -> None:
    """The poller keeps what it loaded while nothing wrote (SQLite: the same loads come from
    memory); `watcher ack` from another process is a commit of another connection: the next
    load reads it."""
    await _record_incident(store, opened())
    for _ in range(3):
        assert (await store.load(["job-1"])).incidents[KB].ack is None
    if not engine.is_pg:
        assert store.loads_kept == 2  # nothing wrote between the loads
    other = await engine.open(NOW)
    try:
        await other.acknowledge("docs", Ack(by="ana", at=NOW, comment="on it"))
    finally:
        await other.close()
    assert (await store.load(["job-1"])).incidents[KB].ack == Ack("ana", NOW, "on it")


async def test_the_pollers_own_writes_are_loaded_at_once(store: SqliteStore) -> None:
    await _record_incident(store, opened())
    assert (await store.load([])).incidents[KB].failures == 1
    await _record_incident(store, opened(failures=2))
    assert (await store.load([])).incidents[KB].failures == 2
    await store.acknowledge("docs", Ack(by="ana", at=NOW))
    assert (await store.load([])).incidents[KB].ack == Ack("ana", NOW)
    await _record_incident(store, opened(closed_at=NOW))
    assert (await store.load([])).incidents == {}


async def test_writes_beside_the_watch_state_keep_the_loaded_state_in_memory(
    store: SqliteStore, engine: Engine
) -> None:
    """An idle cycle of 1,000 KBs stores an extra read's fact, a meta value or a settled
    delivery, and none of them touches a KB, job or incident row: the next load of the same
    jobs still comes from memory (SQLite), and is still right."""
    if engine.is_pg:
        pytest.skip("PostgreSQL reads the state every time")
    await _record_incident(store, opened())
    await store.load(["job-1"])
    await store.save_facts([StoredFact("kb-1", "database", '{"status": "ONLINE"}')], NOW)
    await store.set_meta("extra_reads_spent:token:x", "{}")
    await store.record(Change("meta-only", NOW), meta={"api_health": "{}"})
    kept = store.loads_kept
    assert (await store.load(["job-1"])).incidents[KB].failures == 1
    assert store.loads_kept == kept + 1

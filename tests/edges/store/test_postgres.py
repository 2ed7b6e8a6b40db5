"""The PostgreSQL store: several replicas on one schema, one poller per token, every replica
delivers, the schema migrated once, the password never shown.

Replicas here share one process, so another holder reads as running; `later` moves a store's
view of the database's clock to stand for time passing (a paused holder's lease running out).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.stores import PG_SERVER, Engine, one_alert_change, pg_available, process_holder
from watcher.core.clocks import Elapsed
from watcher.core.errors import StoreError, StoreHeld
from watcher.core.facts import StoredFact
from watcher.core.lease import Holder, LeaseAction, LeaseReason, LeaseTime, Liveness
from watcher.core.outbox import DeliveryState, Settlement
from watcher.core.state import Change
from watcher.edges.store import schema
from watcher.edges.store.pgschema import schema_version
from watcher.edges.store.postgres import PostgresStore, _secret_free, display_url, token_lease

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
D = 30.0
TOKEN = token_lease("dop_v1_" + "a" * 64)

pytestmark = pytest.mark.skipif(pg_available() is not None, reason=str(pg_available()))


def holder(command: str = "watcher run") -> Holder:
    return process_holder(NOW, command)


def change(n: int) -> Change:
    return one_alert_change(n, NOW)


def later(store: PostgresStore, seconds: float) -> None:
    """Move `store`'s view of the database's clock `seconds` ahead."""
    clock = store._db_clock

    def ahead() -> LeaseTime:
        now = clock()
        return LeaseTime(now.clock, now.seconds + seconds)

    store.lease_clock = ahead


@pytest.fixture
def pg(tmp_path: object) -> AsyncIterator[Engine]:
    place = Engine("postgresql", tmp_path)  # type: ignore[arg-type]
    try:
        yield place
    finally:
        place.drop()


@pytest.fixture
async def replicas(pg: Engine) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    first = await PostgresStore.connect(pg.url, now=NOW, lease_name=TOKEN)
    second = await PostgresStore.connect(pg.url, now=NOW, lease_name=TOKEN)
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


async def test_one_replica_polls_a_token_and_the_other_stands_by_yet_delivers(
    replicas: tuple[PostgresStore, PostgresStore], pg: Engine
) -> None:
    first, second = replicas
    assert (await first.lease_step(holder(), D)).decision.epoch == 1
    waiting = await second.lease_step(holder(), D)
    assert (waiting.decision.action, waiting.decision.reason) == (
        LeaseAction.STAND_BY,
        LeaseReason.HELD,
    )
    await first.record(change(0))
    with pytest.raises(StoreHeld, match="does not hold the store's lease"):
        await second.record(change(1))
    (item,) = await second.claim_due(NOW, 10)  # standing by, and delivering
    await second.settle([Settlement(item.id, DeliveryState.SENT, NOW, 1)])
    assert pg.rows("SELECT event_id, state FROM outbox") == [("job-0/failed", "sent")]
    assert pg.rows("SELECT name, epoch FROM lease") == [(TOKEN, 1)]


async def test_a_paused_holder_is_replaced_when_its_lease_runs_out_and_then_writes_nothing(
    replicas: tuple[PostgresStore, PostgresStore], pg: Engine
) -> None:
    """The lease runs out on the database's clock; the old holder wakes and is fenced."""
    first, second = replicas
    await first.lease_step(holder(), D)
    later(second, D - 1)
    assert not (await second.lease_step(holder(), D)).decision.held
    later(second, D + 1)
    taken = await second.lease_step(holder(), D)
    assert (taken.decision.reason, taken.decision.epoch) == (LeaseReason.EXPIRED, 2)
    with pytest.raises(StoreHeld, match="no longer holds"):
        await first.record(change(0))  # woke up: still believes it holds epoch 1
    await second.record(change(1))
    assert pg.rows("SELECT event_id FROM events") == [("job-1/failed",)]
    assert first.epoch is None


async def test_a_graceful_stop_hands_the_lease_over_at_once(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = replicas
    await first.lease_step(holder(), D)
    await first.release_lease()
    taken = await second.lease_step(holder(), D)
    assert (taken.decision.reason, taken.decision.epoch) == (LeaseReason.RELEASED, 2)


async def test_a_holder_proven_gone_on_this_host_is_replaced_before_its_expiry(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = replicas
    await first.lease_step(holder(), D)
    second.liveness = lambda _: Liveness.GONE  # what /proc says of a SIGKILLed process
    taken = await second.lease_step(holder(), D)
    assert (taken.decision.reason, taken.decision.epoch) == (LeaseReason.HOLDER_GONE, 2)


async def test_each_token_has_its_own_lease(pg: Engine) -> None:
    one = await PostgresStore.connect(pg.url, now=NOW, lease_name=token_lease("token-one"))
    two = await PostgresStore.connect(pg.url, now=NOW, lease_name=token_lease("token-two"))
    try:
        assert (await one.lease_step(holder(), D)).decision.held
        assert (await two.lease_step(holder(), D)).decision.held
        _, leases, _ = await one.replicas()
    finally:
        await two.close()
        await one.close()
    assert sorted(name for name, _ in leases) == sorted(
        [token_lease("token-one"), token_lease("token-two")]
    )
    assert all("token" not in name.removeprefix("token:") for name, _ in leases)


async def test_replicas_starting_at_once_migrate_the_schema_once(pg: Engine) -> None:
    stores = await asyncio.gather(*(PostgresStore.connect(pg.url, now=NOW) for _ in range(4)))
    for store in stores:
        await store.close()
    with psycopg.connect(pg.url, autocommit=True) as conn:
        from watcher.edges.store.pgdb import PgDb

        assert schema_version(PgDb(conn)) == schema.SCHEMA_VERSION
    assert pg.rows("SELECT count(*) FROM meta WHERE key = 'created_at'") == [(1,)]


async def test_claims_by_many_replicas_at_once_never_overlap(pg: Engine) -> None:
    writer = await PostgresStore.connect(pg.url, now=NOW)
    others = [await PostgresStore.connect(pg.url, now=NOW) for _ in range(3)]
    try:
        await writer.lease_step(holder(), D)
        for n in range(40):
            await writer.record(change(n))
        batches = await asyncio.gather(
            *(s.claim_due(NOW, 5) for _ in range(4) for s in (writer, *others))
        )
    finally:
        for s in (writer, *others):
            await s.close()
    ids = [item.id for batch in batches for item in batch]
    assert len(ids) == len(set(ids)) == 40


def test_the_store_is_named_without_its_password() -> None:
    url = "postgresql://watcher:s3cr3t-pass@db.internal:25060/alerts?sslmode=require"
    assert display_url(url) == "watcher@db.internal:25060/alerts"


async def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    url = "postgresql://watcher:s3cr3t-pass@127.0.0.1:1/alerts?connect_timeout=2"
    with pytest.raises(StoreError) as raised:
        await PostgresStore.connect(url, now=NOW)
    assert "s3cr3t-pass" not in str(raised.value)
    assert "watcher@127.0.0.1:1/alerts" in str(raised.value)
    assert "state.url" in str(raised.value)  # the key to correct


async def test_sslmode_is_passed_to_the_server() -> None:
    """The test server speaks no TLS: `sslmode=require` must reach libpq and be refused."""
    with pytest.raises(StoreError, match="SSL"):
        await PostgresStore.connect(f"{PG_SERVER}?sslmode=require&connect_timeout=3", now=NOW)


async def test_the_digest_reads_run_on_postgresql(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    """A read added to the store in portable SQL (the digest's, of quiet hours) runs here too."""
    first, _ = replicas
    await first.lease_step(holder(), D)
    await first.record(change(0))
    outcomes, latest = await first.digest_facts(None, NOW + timedelta(days=1))
    assert [t.event_id for t in outcomes] == ["job-0/failed"]
    assert [kb.kb_uuid for kb in latest] == ["kb-1"]


async def test_the_extra_reads_facts_are_kept_and_replaced_on_postgresql(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    """`kb_facts` (issue-17a) migrates and upserts on PostgreSQL too: one row per (subject,
    kind), a second save of the same pair replaces it, another replica reads it back."""
    first, second = replicas
    await first.lease_step(holder(), D)
    read_at = Elapsed(120.0, "boot-1")
    await first.save_facts([StoredFact("kb-1", "database", '{"status": "ONLINE"}', read_at)], NOW)
    newer = StoredFact("kb-1", "database", '{"status": "POWEROFF"}', read_at, "job-9", 1)
    await first.save_facts([newer, StoredFact("", "agents", "[]")], NOW)
    assert sorted(await second.load_facts(), key=lambda f: f.kind) == [
        StoredFact("", "agents", "[]"),
        newer,
    ]


def test_an_error_about_a_url_libpq_cannot_read_still_hides_the_password() -> None:
    url = "postgresql://watcher:pw-unread-9f2@127.0.0.1:5432/test?bogus=1"
    assert "pw-unread-9f2" not in _secret_free("failed for pw-unread-9f2", url)

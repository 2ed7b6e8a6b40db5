"""Opening stores in tests the way the watcher does (open, then take the store's lease), on
SQLite or on PostgreSQL (`Engine`: a file, or a schema of its own at `PG_SERVER`)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg

from watcher.core.lease import Holder
from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryState, Settlement
from watcher.core.state import Change, Delivery, JobState, KbState, Transition
from watcher.edges import host
from watcher.edges.store.lease import STORE_LEASE
from watcher.edges.store.pgdb import translate
from watcher.edges.store.postgres import PostgresStore
from watcher.edges.store.sqlite import DEFAULT_LEASE, SqliteStore

LEASE_SECONDS = 30.0


def process_holder(at: datetime, command: str = "watcher run") -> Holder:
    """This process as a lease holder running `command`, started at `at`."""
    return host.this_process(command, at)


def one_alert_change(n: int, at: datetime) -> Change:
    """Cycle `c{n}` at `at`: KB kb-1 ("docs") and one failed job's alert for route ops."""
    event = Transition(f"job-{n}/failed", EventKind.FAILED, at, kb_uuid="kb-1")
    return Change(
        f"c{n}",
        at,
        kbs=(KbState("kb-1", "docs", at),),
        transitions=(event,),
        deliveries=(Delivery(event.event_id, "ops"),),
    )


async def open_held(
    path: Path, now: datetime, *, lease: timedelta = DEFAULT_LEASE, integrity_check: bool = True
) -> SqliteStore:
    """Open the store at `path` and take its lease for a holder of its own (as `once` does)."""
    store = await SqliteStore.open(path, now=now, lease=lease, integrity_check=integrity_check)
    try:
        outcome = await store.lease_step(host.this_process("pytest", now), LEASE_SECONDS)
        assert outcome.decision.held, outcome
    except BaseException:
        await store.close()
        raise
    return store


async def store_with_a_dead_letter(
    path: Path, now: datetime, transition: Transition, kb_name: str, error: str
) -> None:
    """A store as an older version left it, written without the guard: the transition's KB
    (named `kb_name`) and job, the transition, and its alert to `ops` given up with `error`."""
    assert transition.job is not None and transition.kb_uuid is not None
    kb, job = transition.kb_uuid, transition.job
    store = await open_held(path, now)
    try:
        change = Change(
            cycle_id="c1",
            at=now,
            kbs=(KbState(kb, kb_name, now, job.uuid),),
            jobs=(JobState(job, kb, now, now),),
            transitions=(transition,),
            deliveries=(Delivery(transition.event_id, "ops"),),
        )
        await store.record(change)
        [item] = await store.claim_due(now, 10)
        await store.settle([Settlement(item.id, DeliveryState.DEAD, now, 3, None, error)])
    finally:
        await store.close()


# --- both engines ----------------------------------------------------------------------------

PG_SERVER: Final = os.environ.get("WATCHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL the tests use (trust authentication, database `test`)."""
_RUN: Final = f"watcher_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
_schemas = itertools.count(1)


@functools.cache
def pg_available() -> str | None:
    """None when `PG_SERVER` answers, else why not (the PostgreSQL cases are skipped)."""
    try:
        with psycopg.connect(PG_SERVER, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"no PostgreSQL at {PG_SERVER}: {exc}"


def pg_url(schema: str) -> str:
    """`PG_SERVER` with every connection's search_path set to `schema`."""
    return f"{PG_SERVER}?options=-csearch_path%3D{schema}"


class Engine:
    """Opens stores of one engine on one fresh place: a SQLite file in a directory, or a
    PostgreSQL schema of its own (created here, dropped by `drop`), and reads it directly."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.path = directory / "watcher.db"
        self.schema = f"{_RUN}_{next(_schemas)}"
        if name == "postgresql":
            with psycopg.connect(PG_SERVER, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {self.schema}")

    @property
    def url(self) -> str:
        return pg_url(self.schema)

    @property
    def is_pg(self) -> bool:
        return self.name == "postgresql"

    async def open(
        self, now: datetime, *, lease: timedelta = DEFAULT_LEASE, lease_name: str | None = None
    ) -> SqliteStore:
        """A store on this engine (no lease taken)."""
        if self.is_pg:
            name = lease_name or STORE_LEASE
            return await PostgresStore.connect(self.url, now=now, lease=lease, lease_name=name)
        return await SqliteStore.open(self.path, now=now, lease=lease)

    async def open_held(self, now: datetime, *, lease: timedelta = DEFAULT_LEASE) -> SqliteStore:
        """A store on this engine with its lease taken for a holder of its own."""
        store = await self.open(now, lease=lease)
        try:
            outcome = await store.lease_step(host.this_process("pytest", now), LEASE_SECONDS)
            assert outcome.decision.held, outcome
        except BaseException:
            await store.close()
            raise
        return store

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query through a connection of its own (`?` placeholders)."""
        if self.is_pg:
            with psycopg.connect(self.url, autocommit=True) as conn:
                cursor = conn.execute(translate(sql), params)
                return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        with contextlib.closing(sqlite3.connect(self.path)) as conn, conn:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]

    def count(self, table: str, where: str = "1 = 1") -> int:
        return int(self.rows(f"SELECT COUNT(*) FROM {table} WHERE {where}")[0][0])

    def drop(self) -> None:
        if self.is_pg:
            with psycopg.connect(PG_SERVER, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

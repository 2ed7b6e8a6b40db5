"""The state store and outbox on PostgreSQL, for several replicas on one database.

`PostgresStore` is the SQLite store's every method over another connection: the store modules'
SQL runs through `watcher.edges.store.pgdb` (the one seam that translates it), so a table or a
query added to the store runs on both engines. What differs is the connection and the clock:

- a psycopg connection pool (one connection, checked before use: a restarted server or a
  dropped connection is replaced), driven from the store's one thread;
- the schema is created and migrated on open in one transaction under the transaction-level
  advisory lock `pg_advisory_xact_lock` (several replicas starting at once migrate once; no
  session-level lock, which breaks behind PgBouncer in transaction mode);
- the lease clock is the database server's (`clock_timestamp()`), the one clock every replica
  reads: poller leases and outbox claims expire on it, never on a replica's own clock;
- the poller's lease is one row per DigitalOcean token (`lease_name`), fenced in every poller
  write's transaction (`FOR SHARE` on the row: a takeover waits for a write in flight, and a
  write after it sees the new epoch and is refused);
- every replica delivers: outbox rows are claimed `FOR UPDATE SKIP LOCKED`, each claim expiring
  on the database's clock (a killed replica's claims come back when they expire).

The password of `state.url` is never shown: the store is named by `display_url` (user, host,
port, database) and every driver error is stripped of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Self, TypeVar, cast
from urllib.parse import urlsplit

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict

from watcher.core.errors import StoreError
from watcher.core.lease import Holder, Lease, LeaseTime, Liveness
from watcher.core.replicas import Replica
from watcher.edges import host
from watcher.edges.store import lease as store_lease
from watcher.edges.store import replicas
from watcher.edges.store.conn import DEFAULT_LEASE, Fence
from watcher.edges.store.lease import LeaseOutcome
from watcher.edges.store.pgdb import PgDb
from watcher.edges.store.pgschema import migrate
from watcher.edges.store.sqlite import SqliteStore

_T = TypeVar("_T")
DB_CLOCK: Final = "postgresql"
"""The name of the lease clock of a PostgreSQL store: the server's `clock_timestamp()`."""
CONNECT_TIMEOUT: Final = 10.0
IDLE_IN_TRANSACTION: Final = "5s"
"""How long the server lets a transaction of this store sit idle before ending the session."""
LOCK_WAIT: Final = "5s"
"""How long a statement of this store waits for a row or advisory lock."""


def display_url(url: str) -> str:
    """`user@host:port/dbname` of a libpq URL or DSN: what names the store; never a password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unreadable PostgreSQL address"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"{user}{parts.get('host', 'localhost')}{port}/{parts.get('dbname', '')}"


token_lease = store_lease.token_lease  # the lease row of a token (kept here for its callers)


def _secret_free(text: str, url: str) -> str:
    try:
        password = conninfo_to_dict(url).get("password") if url else None
    except psycopg.ProgrammingError:  # unreadable to libpq: the URL's own password, if any
        password = urlsplit(url).password
    return text.replace(str(password), "***") if password else text


def _pg_liveness(holder: Holder) -> Liveness:
    """A holder proven gone on this host is taken over at once; one that runs (perhaps
    paused: SIGSTOP, a partition) is judged by its lease's expiry alone."""
    alive = host.liveness(holder)
    return Liveness.GONE if alive is Liveness.GONE else Liveness.UNKNOWN


class PostgresStore(SqliteStore):
    """The watcher's state store and outbox in a PostgreSQL schema (see the module)."""

    shared_claims = True

    def __init__(
        self, url: str, pool: psycopg_pool.ConnectionPool, executor: ThreadPoolExecutor
    ) -> None:
        """Use `PostgresStore.connect`; this only wires an open pool."""
        # The SQLite connection's state, without its files: the lease and fencing code is
        # shared (`watcher.edges.store.conn`), the connection below is PostgreSQL's.
        self.path = Path(f"{display_url(url)} (PostgreSQL)")
        self.lease = DEFAULT_LEASE
        self.lease_name = store_lease.STORE_LEASE
        self._url, self._pool, self._executor = url, pool, executor
        self._pg: PgDb | None = None
        self._closed = False
        self.lease_clock: Callable[[], LeaseTime] = self._db_clock
        self.liveness: Callable[[Holder], Liveness] = _pg_liveness
        self._holder: Holder | None = None
        self._epoch: int | None = None
        self._wrote = False
        self._rescued = None
        self._retired = None
        self._store_state()

    def _data_version(self, conn: Any) -> int | None:
        """None: no counter tells another replica's commit apart, so every load and every
        count reads."""
        return None

    def _changes(self, conn: Any) -> int:
        """Not counted (the counts are read every time: `_data_version`)."""
        return 0

    def _synced(self, conn: Any, synced: bool) -> None:
        """PostgreSQL's commits are its server's to flush: every one alike."""

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        now: datetime,
        lease: timedelta = DEFAULT_LEASE,
        lease_name: str = store_lease.STORE_LEASE,
    ) -> Self:
        """Connect to the database at `url` (a libpq URL; `sslmode` and every other
        parameter passed through), create or migrate the schema, and return the store.

        `lease` is how long an outbox claim lasts on the database's clock; `lease_name` the
        poller lease this store steps (`token_lease`). Raises `StoreError` (without the
        password) when the server cannot be reached or refuses.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watcher-store")
        loop = asyncio.get_running_loop()
        try:
            pool = await loop.run_in_executor(executor, _open_pool, url, now)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        store = cls(url, pool, executor)
        store.lease, store.lease_name = lease, lease_name
        return store

    async def close(self) -> None:
        """Release the lease if held and close the pool; idempotent."""
        if self._closed:
            return
        self._closed = True
        executor = self._executor
        assert executor is not None  # a PostgreSQL store always runs on its own thread
        await asyncio.get_running_loop().run_in_executor(executor, self._finish)
        executor.shutdown(wait=True)

    def _finish(self) -> None:
        """A graceful stop: the lease goes at once (another replica takes it at its next
        step), claims not settled go back to the queue, this replica's record goes."""
        try:
            with contextlib.suppress(StoreError, psycopg.Error):
                self._with_connection("stopping", lambda _: self._leave())
        finally:
            self._pool.close()

    def _leave(self) -> None:
        if self._epoch is not None and self._holder is not None:
            self._release()
        holder, tokens = self._holder, set(self._claims.values())

        def write(conn: Any) -> None:
            replicas.return_claims(conn, tokens)
            if holder is not None:
                replicas.forget_replica(conn, holder)

        self._transaction("stopping", write, Fence.NONE)

    async def lease_step(self, holder: Holder, duration: float) -> LeaseOutcome:
        """One step of `holder`'s poller lease (see `StoreConnection.lease_step`), and this
        replica's record (`watcher status`, `watcher health`), on the database's clock."""
        outcome = await super().lease_step(holder, duration)

        def note(_: Any) -> None:
            epoch = outcome.decision.epoch if outcome.decision.held else None
            seen = self._db_clock().seconds
            self._transaction(
                "recording this replica",
                lambda c: replicas.note_replica(c, holder, self.lease_name, epoch, seen, duration),
                Fence.NONE,
            )

        await self._run("recording this replica", note)
        return outcome

    async def replicas(self) -> tuple[list[Replica], list[tuple[str, Lease | None]], float]:
        """Every replica record, every poller lease and the database's clock now (seconds),
        read together (`watcher status`, the metrics)."""

        def read(conn: Any) -> tuple[list[Replica], list[tuple[str, Lease | None]], float]:
            names = [str(r[0]) for r in conn.execute("SELECT name FROM lease ORDER BY name")]
            leases = [(n, store_lease.read_lease(conn, n)) for n in names]
            return replicas.read_replicas(conn), leases, self._db_clock().seconds

        return await self._run("reading the replicas", read)

    async def _run(self, doing: str, work: Callable[[Any], _T]) -> _T:
        """Run `work` with a pooled connection on the store's thread, psycopg errors
        translated into `StoreError` (the password stripped)."""
        if self._closed:
            raise StoreError(f"state store {self.path}: {doing} after the store was closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._with_connection, doing, work
        )

    def _with_connection(self, doing: str, work: Callable[[Any], _T]) -> _T:
        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT) as raw:
                self._pg = PgDb(raw)
                try:
                    return work(self._pg)
                finally:
                    self._pg = None
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            text = _secret_free(str(exc).strip(), self._url)
            raise StoreError(f"state store {self.path}: {doing} failed: {text}") from exc

    @property
    def _conn(self) -> Any:
        """The connection of the running `_run` (the store modules take it as SQLite's)."""
        if self._pg is None:
            raise StoreError(f"state store {self.path}: used outside a connection")
        return self._pg

    @_conn.setter
    def _conn(self, value: Any) -> None:
        raise AttributeError("a PostgreSQL store's connection comes from its pool")

    def _check_files(self) -> None:
        """A database has no file at a path to vanish."""

    def _fence(self, conn: Any, doing: str, fence: Fence) -> None:
        """Bound the transaction's waits, then fence it (`StoreConnection._fence`), and mark
        a poller write with its epoch (`watcher.epoch`, `watcher.lease`: for audit triggers).

        A replica paused (SIGSTOP, a stalled VM) inside a transaction would hold its row
        locks, and with them every takeover, for as long as it sleeps: the server ends such
        a session after `IDLE_IN_TRANSACTION`, and a wait for a lock gives up after
        `LOCK_WAIT` (the lease step is tried again at its next turn).
        """
        conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'")
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
        super()._fence(conn, doing, fence)
        if fence is Fence.HOLDER and self._epoch is not None:
            conn.execute(
                "SELECT set_config('watcher.epoch', ?, true), set_config('watcher.lease', ?, true)",
                (str(self._epoch), self.lease_name),
            )

    def _lock_lease(self, conn: Any) -> None:
        """Serialize steps of one lease between replicas, for this transaction only."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", ("watcher:" + self.lease_name,))

    def _db_clock(self) -> LeaseTime:
        """The database server's clock now, in seconds (the lease clock of every replica)."""
        row = (
            cast(PgDb, self._conn)
            .execute("SELECT extract(epoch FROM clock_timestamp())::float8")
            .fetchone()
        )
        return LeaseTime(DB_CLOCK, float(row[0]))

    async def check_writable(self) -> None:
        """Raise `StoreError` unless the database takes writes now (a standby server, a
        read-only transaction default or a lost connection fail). Writes nothing."""

        def probe(conn: Any) -> None:
            row = conn.execute("SHOW transaction_read_only").fetchone()
            if str(row[0]).lower() == "on":
                raise StoreError(
                    f"state store {self.path}: the database is read-only (a standby server?)"
                )

        await self._run("checking that the store is writable", probe)

    async def database_now(self) -> LeaseTime:
        """The lease clock now (the database server's)."""
        return await self._run("reading the database's clock", lambda _: self._db_clock())


def _open_pool(url: str, now: datetime) -> psycopg_pool.ConnectionPool:
    """Connect once (a clear error if that fails), migrate, then open the pool."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT)) as raw:
            migrate(PgDb(raw), now)
    except psycopg.Error as exc:
        name = display_url(url)
        text = _secret_free(str(exc).strip(), url)
        raise StoreError(
            f"state store {name} (PostgreSQL, state.url): cannot be opened: {text}"
        ) from exc
    pool = psycopg_pool.ConnectionPool(
        url,
        min_size=1,
        max_size=1,
        kwargs={"autocommit": True, "connect_timeout": int(CONNECT_TIMEOUT)},
        check=psycopg_pool.ConnectionPool.check_connection,
        open=False,
    )
    pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    return pool

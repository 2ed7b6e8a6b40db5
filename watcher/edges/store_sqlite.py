"""The state store and outbox on SQLite: one connection owned by one dedicated thread.

`SqliteStore` implements `watcher.ports.StateStore` and `watcher.ports.Outbox`. Every public
method is one whole transaction run on the store's thread, so two coroutines sharing a store
never interleave inside a transaction. sqlite3 errors are translated into `StoreError` /
`StoreCorrupt` here. The SQL of the Protocol methods sticks to what PostgreSQL also speaks
(`ON CONFLICT`, conditional `UPDATE`), so another adapter can keep the same contract.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, TypeVar

from watcher.edges import store_schema as schema
from watcher.edges.store_lock import StoreLock
from watcher.edges.store_rows import (
    JobCache,
    claim_rows,
    load_rows,
    prune_rows,
    render_change,
    settle_row,
    write_change,
    write_meta,
)
from watcher.edges.store_snapshot import StoreSnapshot, read_snapshot
from watcher.errors import StoreError
from watcher.state import Change, DeliveryState, OutboxItem, Settlement, WatchState

DEFAULT_LEASE: Final = timedelta(minutes=5)
_RETURN_ORPHANS: Final = """
    UPDATE outbox SET state = 'pending', claimed_at = NULL, claim_token = NULL,
        last_error = 'claim returned: the process that claimed it is gone'
    WHERE state = 'sending'"""
_T = TypeVar("_T")


def _transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], _T]) -> _T:
    """Run `work` in one write transaction: all of it is committed, or none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _connect(path: Path, now: datetime, integrity_check: bool = True) -> sqlite3.Connection:
    """Create or open the file, check it, configure the connection and migrate the schema."""
    schema.create_file(path)
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=schema.BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise schema.translate(exc, path, "opening") from exc
    try:
        schema.check_integrity(conn, path, full=integrity_check)
        schema.configure(conn, path)
        schema.migrate(conn, path, now)
    except sqlite3.Error as exc:
        conn.close()
        raise schema.translate(exc, path, "opening") from exc
    except BaseException:
        conn.close()
        raise
    return conn


class SqliteStore:
    """The watcher's state store and outbox in one SQLite file (WAL, synchronous=FULL)."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, executor: ThreadPoolExecutor, lease: timedelta
    ) -> None:
        """Use `SqliteStore.open`; this only wires an already opened connection."""
        self.path = path
        self.lease = lease
        self._conn = conn
        self._executor = executor
        self._claims: dict[int, str] = {}
        self._closed = False
        self._jobs = JobCache()
        self._lock = StoreLock(None, sole=False)

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        now: datetime,
        lease: timedelta = DEFAULT_LEASE,
        integrity_check: bool = True,
    ) -> SqliteStore:
        """Open (creating with mode 0600 and migrating as needed) the store at `path`.

        `integrity_check=False` skips the full-file `quick_check` (for frequent probes).

        When no other process has the store open (see `store_lock`), claims left by a process
        that died are returned to the queue at once instead of after their lease.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watcher-store")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(
                executor, _connect, path, now, integrity_check
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        store = cls(path, conn, executor, lease)
        store._lock = StoreLock.take(path)
        if store._lock.sole:
            try:
                await store._write(
                    "returning orphaned claims", lambda c: c.execute(_RETURN_ORPHANS)
                )
            except BaseException:
                await store.close()
                raise
        return store

    async def close(self) -> None:
        """Close the connection and stop the store's thread; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._finish)
            self._executor.shutdown(wait=True)
        finally:
            self._lock.release()

    def _finish(self) -> None:
        """Let SQLite refresh its planner statistics if useful, then close the connection."""
        try:
            self._conn.execute("PRAGMA optimize")
        except sqlite3.Error:
            pass  # statistics are an optimisation; closing matters more
        finally:
            self._conn.close()

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self, doing: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work` with the connection on the store's thread, translating sqlite3 errors."""
        if self._closed:
            raise StoreError(f"state store {self.path}: {doing} after the store was closed")

        def guarded() -> _T:
            try:
                return work(self._conn)
            except sqlite3.Error as exc:
                raise schema.translate(exc, self.path, doing) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, guarded)

    async def _write(self, doing: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work` as one write transaction on the store's thread."""
        return await self._run(doing, lambda conn: _transaction(conn, work))

    # --- StateStore -------------------------------------------------------------------------

    async def load(self, job_uuids: Collection[str]) -> WatchState:
        """Every known KB, the jobs named, and every job that is not done yet."""
        wanted = sorted(set(job_uuids))
        return await self._run(
            "loading the state", lambda conn: load_rows(conn, self.path, wanted, self._jobs)
        )

    async def record(self, change: Change, *, meta: Mapping[str, str | None] | None = None) -> None:
        """Write a whole cycle in one transaction: KBs, jobs, events, outbox rows, meta.

        Events and outbox rows that already exist are left alone, so recording the same change
        twice is a no-op for them. `meta` values of None delete their key.
        """

        def work(conn: sqlite3.Connection) -> None:
            rows = render_change(change, meta or {})  # encoded before the write lock is taken
            _transaction(conn, lambda c: write_change(c, rows))

        await self._run("recording a cycle", work)

    # --- Outbox -----------------------------------------------------------------------------

    async def claim_due(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Claim up to `limit` due rows, oldest first, returning expired claims to the queue."""
        if limit <= 0:
            return []
        token = uuid.uuid4().hex
        claimed = await self._write(
            "claiming deliveries",
            lambda conn: claim_rows(conn, now=now, lease=self.lease, limit=limit, token=token),
        )
        for item in claimed:
            self._claims[item.id] = token
        return claimed

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        """Write back what each attempt did; rows no longer claimed by this store are skipped."""
        rows = [settle_row(s, self._claims.pop(s.outbox_id, None)) for s in settlements]

        def write(conn: sqlite3.Connection) -> None:
            for row in rows:
                conn.execute(row[0], row[1])

        await self._write("settling deliveries", write)

    # --- operations, status, health -------------------------------------------------------

    async def snapshot(
        self, now: datetime, *, dead_letter_limit: int = 50, detail: bool = True
    ) -> StoreSnapshot:
        """What `watcher status`, health and metrics show, read in one consistent snapshot.

        `detail=False` reads the counts only (no KBs, dead letters or event counts): the
        daemon refreshes its gauges that way after every cycle.
        """
        return await self._run(
            "reading the status",
            lambda conn: read_snapshot(conn, self.path, now, dead_letter_limit, detail=detail),
        )

    async def prune(self, before: datetime, *, keep_per_kb: int = 50) -> int:
        """Delete settled outbox rows, their events and done jobs older than `before`.

        Never deletes an undelivered row, the events it needs, a job not done yet, the latest
        job of a KB, or any of the newest `keep_per_kb` jobs of a KB (the API keeps listing
        those; forgetting them would make them look new). Returns the rows deleted.
        """
        cutoff = schema.to_db(before)
        return await self._write(
            "pruning old rows", lambda conn: prune_rows(conn, cutoff, keep_per_kb)
        )

    async def retry_dead(self, now: datetime, ids: Collection[int] | None = None) -> int:
        """Put dead-letter rows (all, or the ids given) back in the queue with 0 attempts."""
        at = schema.to_db(now)
        sql = (
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?,"
            " settled_at = NULL WHERE state = 'dead'"
        )

        def write(conn: sqlite3.Connection) -> int:
            if ids is None:
                return conn.execute(sql, (at,)).rowcount
            return sum(conn.execute(f"{sql} AND id = ?", (at, i)).rowcount for i in ids)

        return await self._write("retrying dead letters", write)

    async def dead_letter_count(self) -> int:
        """How many outbox rows gave up (state dead)."""
        sql = "SELECT count(*) FROM outbox WHERE state = ?"
        row = await self._run(
            "counting dead letters",
            lambda conn: conn.execute(sql, (DeliveryState.DEAD.value,)).fetchone(),
        )
        return int(row[0])

    async def check_writable(self) -> None:
        """Raise `StoreError` unless a write transaction can be committed right now."""
        probe = [("writable_probe", uuid.uuid4().hex)]
        await self._write("checking that the store is writable", lambda c: write_meta(c, probe))

    async def get_meta(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        sql = "SELECT value FROM meta WHERE key = ?"
        row = await self._run("reading meta", lambda c: c.execute(sql, (key,)).fetchone())
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str | None) -> None:
        """Store `value` under `key` (None deletes the key)."""
        await self._write("writing meta", lambda conn: write_meta(conn, [(key, value)]))

    async def last_cycle_at(self) -> datetime | None:
        """When the last successful cycle ended, as set by `set_last_cycle_at`."""
        value = await self.get_meta(schema.META_LAST_CYCLE)
        return None if value is None else schema.from_db(value)

    async def set_last_cycle_at(self, at: datetime) -> None:
        """Remember when a cycle succeeded (for `watcher health` and `status`)."""
        await self.set_meta(schema.META_LAST_CYCLE, schema.to_db(at))

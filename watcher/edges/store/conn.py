"""The SQLite store's one connection: its thread, its files, its transactions and its lease.

Only the connection touches the files (`store_files`). One process at a time polls and
records: the one holding the store's lease (`watcher.core.lease`, `lease_step`). Every write checks
first that the path still names the file opened (else `StoreReplaced`: nothing more is
written), then, in its transaction, that this process still holds the lease's epoch (else
`StoreHeld`): `Fence.HOLDER` writes need the lease, `Fence.IF_HELD` writes (claims, settles)
are safe between processes and fenced only when the lease is held.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self, TypeVar

from watcher.core.errors import StoreError, StoreHeld, StoreReplaced
from watcher.core.lease import Holder, Lease, LeaseDecision, LeaseTime, Liveness, decide
from watcher.edges import host
from watcher.edges.store import files as store_files
from watcher.edges.store import lease as store_lease
from watcher.edges.store import schema
from watcher.edges.store.files import OpenedFiles

if TYPE_CHECKING:  # asyncio and the thread pool are imported where a store opens its thread:
    # `watcher health`'s fast path reads on its own thread, with no event loop (`open_here`)
    from concurrent.futures import ThreadPoolExecutor


DEFAULT_LEASE: Final = timedelta(minutes=5)
"""How long an outbox claim lasts, on the lease clock (boot time, `lease_clock`), never on the
wall clock (not the store's lease: see `watcher.core.lease`)."""
_T = TypeVar("_T")


class Fence(Enum):
    """Which writes the store's lease guards."""

    HOLDER = "holder"  # poller writes: only the holder, under its epoch
    IF_HELD = "if_held"  # claims, settles: a process outside the lease may (claims are
    # exclusive); one taking part in it (holding or standing by) only under a held epoch
    NONE = "none"  # lease steps, dead-letter retries


class StoreConnection:
    """The store's one connection, its thread, its files and its lease (see the module)."""

    shared_claims: bool = False
    """Whether any process may claim outbox rows, lease or not (PostgreSQL: every replica
    delivers; its claims are exclusive by row lock and expire on the database's clock)."""

    _generation: int = 0  # own writes that may change the loaded state (`_transaction`)
    _commits: int = 0  # own commits that changed a counted row, and reopens (`_transaction`)
    round_trips: int = 0  # calls of `_run`: handoffs to the store's thread (tests, profiles)
    _quiet: bool = False  # no warnings logged (`open_here`)

    def __init__(
        self,
        path: Path,
        opened: tuple[sqlite3.Connection, OpenedFiles],
        executor: ThreadPoolExecutor | None,
        lease: timedelta,
    ) -> None:
        """Use `SqliteStore.open`; this only wires an already opened connection."""
        self.path = path
        self.lease = lease
        self._conn, self._files = opened
        self._executor = executor
        self._closed = False
        self.lease_clock: Callable[[], LeaseTime] = host.lease_time
        self.liveness: Callable[[Holder], Liveness] = host.liveness
        self._holder: Holder | None = None
        self._epoch: int | None = None
        self._wrote = False
        self._rescued: Path | None = None
        self._retired: str | None = None  # why the connection was closed for good
        self.lease_name = store_lease.STORE_LEASE
        """The lease row this store's poller holds (PostgreSQL: one per DigitalOcean token)."""

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        now: datetime,
        lease: timedelta = DEFAULT_LEASE,
        integrity_check: bool = True,
    ) -> Self:
        """Open (creating it whole with mode 0600 if no file is there) the store at `path`.

        An existing file must be a non-empty store of ours (else `StoreCorrupt`, untouched);
        an older schema is migrated. `integrity_check=False` skips the full-file
        `quick_check` (for frequent probes). Opening takes no lease: see `lease_step`.
        """
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watcher-store")
        try:
            opened = await asyncio.get_running_loop().run_in_executor(
                executor, store_files.open_connection, path, now, integrity_check
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(path, opened, executor, lease)

    @classmethod
    def open_here(
        cls, path: Path, *, now: datetime, integrity_check: bool = True, quiet: bool = False
    ) -> Self:
        """`open`, on the calling thread: every call then runs there, each coroutine finishing
        without waiting. For one short read in a process that needs no event loop (`watcher
        health`, every 30 s in containers), never beside other work: the calls block.
        `quiet`: log no warning (the caller shows none, and sets up no logs for them)."""
        store = cls(
            path, store_files.open_connection(path, now, integrity_check), None, DEFAULT_LEASE
        )
        store._quiet = quiet
        return store

    async def close(self) -> None:
        """Release the lease if held, close the connection, stop the thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._executor is None:
            self._finish()
            return
        import asyncio

        await asyncio.get_running_loop().run_in_executor(self._executor, self._finish)
        self._executor.shutdown(wait=True)

    def _finish(self) -> None:
        """Let the lease go, let SQLite refresh its planner statistics, close the connection."""
        try:
            if self._epoch is not None and self._holder is not None:
                with contextlib.suppress(StoreError, sqlite3.Error):
                    self._release()
            if self._wrote:  # a reader (status, health) leaves the statistics alone
                self._conn.execute("PRAGMA optimize")
        except sqlite3.Error:
            pass  # statistics are an optimisation; closing matters more
        finally:
            self._conn.close()
        gone = self._rescued is not None and self._retired is None
        if gone and self._files.database_change() is not None:
            # The file vanished and everything is saved beside it: SQLite keeps the side files
            # of a vanished database, which would pair with the copy once it is moved back.
            self._files.remove_sides()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self, doing: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work` with the connection on the store's thread, translating sqlite3 and OS
        errors into `StoreError`."""
        if self._closed:
            raise StoreError(f"state store {self.path}: {doing} after the store was closed")
        if self._retired is not None:
            raise StoreReplaced(self._retired)
        self.round_trips += 1

        def guarded() -> _T:
            try:
                return work(self._conn)
            except sqlite3.Error as exc:
                raise schema.translate(exc, self.path, doing) from exc
            except OSError as exc:  # checking or reopening the files (a permission, an I/O error)
                raise StoreError(f"state store {self.path}: {doing} failed: {exc}") from exc

        if self._executor is None:
            return guarded()
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self._executor, guarded)

    async def check_writable(self) -> None:
        """Raise `StoreError` unless the path still names this store and its write lock can be
        taken right now (`StoreReplaced` when the file was deleted or replaced). Writes nothing:
        a probe beside the daemon must not add to its store."""

        def probe(_: sqlite3.Connection) -> None:
            self._check_files()
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("ROLLBACK")

        await self._run("checking that the store is writable", probe)

    def _changes(self, conn: sqlite3.Connection) -> int:
        """Rows the connection's statements have inserted, updated or deleted so far."""
        return conn.total_changes

    async def get_meta(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        sql = "SELECT value FROM meta WHERE key = ?"
        row = await self._run("reading meta", lambda c: c.execute(sql, (key,)).fetchone())
        return None if row is None else str(row[0])

    async def _write(
        self,
        doing: str,
        work: Callable[[sqlite3.Connection], _T],
        fence: Fence = Fence.HOLDER,
        *,
        keeps_state: bool = False,
        counts: bool = True,
        synced: bool = True,
    ) -> _T:
        """Run `work` as one write transaction on the store's thread, checked and fenced."""
        return await self._run(
            doing,
            lambda _: self._transaction(
                doing, work, fence, keeps_state=keeps_state, counts=counts, synced=synced
            ),
        )

    def _transaction(
        self,
        doing: str,
        work: Callable[[sqlite3.Connection], _T],
        fence: Fence,
        *,
        keeps_state: bool = False,
        counts: bool = True,
        synced: bool = True,
    ) -> _T:
        """On the store's thread: check the files, then all of `work` is committed or none.

        Unless `keeps_state` (the write touches no KB, job or incident row), the loaded state
        this process keeps is stale from here on (`_generation`, see `SqliteStore.load`).
        Unless `counts` is false (the write touches no job, event or outbox row: meta, facts,
        the lease), a commit that changed any row makes the counts kept for the gauges stale
        (`_commits`, see `SqliteStore.snapshot`); so does any write that did not commit.
        Unless `synced` (`_synced`), the commit is not flushed to the disk: only for what a
        machine's crash may take back harmlessly (the heartbeat's meta)."""
        if not keeps_state:
            self._generation += 1
        self._check_files()
        conn = self._conn
        if not synced:
            self._synced(conn, False)
        try:
            return self._committed(doing, work, fence, conn, counts)
        finally:
            if not synced:
                self._synced(conn, True)

    def _synced(self, conn: sqlite3.Connection, synced: bool) -> None:
        """Flush each commit to the disk (`synchronous=FULL`, the store's durability:
        `watcher.edges.store.schema`) or not (NORMAL: in WAL mode a commit then survives the
        process's crash, not the machine's, and the next synced commit flushes it too)."""
        conn.execute(f"PRAGMA synchronous = {'FULL' if synced else 'NORMAL'}")

    def _committed(
        self,
        doing: str,
        work: Callable[[sqlite3.Connection], _T],
        fence: Fence,
        conn: sqlite3.Connection,
        counts: bool,
    ) -> _T:
        conn.execute("BEGIN IMMEDIATE")
        before, committed = self._changes(conn), False
        try:
            self._fence(conn, doing, fence)
            result = work(conn)
            conn.execute("COMMIT")
            committed = True
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:  # after a rollback too: never miss a change, at worst the counts read again
            if not committed or (counts and self._changes(conn) != before):
                self._commits += 1
        self._wrote = True
        return result

    def _fence(self, conn: sqlite3.Connection, doing: str, fence: Fence) -> None:
        """A bystander (status, health) makes no poller writes; a process that takes part in
        the lease writes only under the epoch it holds, checked against the row."""
        if fence is Fence.NONE:
            return
        if self._holder is None or (fence is Fence.IF_HELD and self.shared_claims):
            if fence is Fence.HOLDER:
                raise StoreHeld(
                    f"state store {self.path}: {doing} needs the store's lease, and this "
                    "process does not hold it"
                )
            return
        if self._epoch is None:
            raise StoreHeld(
                f"state store {self.path}: {doing} refused: this process does not hold the "
                "store's lease (it stands by, or lost it to another process)"
            )
        try:
            store_lease.fence(conn, self.path, self._holder, self._epoch, self.lease_name)
        except StoreHeld:
            self._epoch = None
            raise

    # --- the files ----------------------------------------------------------------------

    def _check_files(self) -> None:
        """Refuse to write to a file that is no longer at the path; reopen on new side files."""
        if self._retired is not None:
            raise StoreReplaced(self._retired)
        change = self._files.database_change()
        if change is not None:
            raise StoreReplaced(self._replaced(change))
        side = self._files.side_change()
        if side is not None:
            self._reopen(side)

    def _replaced(self, change: str) -> str:
        """Save what the connection still reads (the lease holder does); say what happened
        and the way back.

        When another file now sits at the path, this connection's -wal and -shm beside it
        would be paired with that file by the next process to open it (and corrupt it), so
        once everything is saved the connection is closed and those side files (still the
        ones it opened) are removed; SQLite leaves them for a moved database. A file merely
        gone keeps the connection (and its side files, which stop a new store being made at
        the path) in case it comes back.
        """
        head = (
            f"state store {self.path}: {change}. The watcher stopped writing and starts no new "
            "store on its own"
        )
        if self._epoch is None and self._rescued is None:  # a bystander, or standing by
            return f"{head}; the process holding its lease saves a copy of it beside it"
        if self._rescued is None:
            try:
                self._rescued = store_files.rescue(self._conn, self.path, datetime.now(UTC))
            except (sqlite3.Error, OSError) as exc:
                return f"{head}; saving a copy of what it held failed ({exc})"
        message = (
            f"{head}; everything it held is saved in {self._rescued}. To go on with it: stop "
            f"the watcher, move {self._rescued} to {self.path}, start it again"
        )
        if store_files.file_id(self.path) is not None:
            self._conn.close()
            self._files.remove_sides()
            self._retired = message
        return message

    def _reopen(self, side: str) -> None:
        """Fold what the connection wrote into the database file, then open it afresh."""
        if not self._quiet:
            import structlog  # only here: a probe that opens the store loads no logging

            structlog.get_logger(__name__).warning(
                "store_side_file_replaced", path=str(self.path), detail=side
            )
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._conn.close()
        conn = store_files.connect_existing(self.path)
        try:
            schema.configure(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._generation += 1  # a new connection counts `data_version` afresh
        self._commits += 1
        if store_files.file_id(self.path) != self._files.database:
            raise StoreReplaced(self._replaced("the file changed while reopening it"))
        self._files = OpenedFiles.taken(self.path, self._files.database)

    # --- the store's lease ------------------------------------------------------------------

    @property
    def holder(self) -> Holder | None:
        """The holder this store last acquired the lease for (None before any step)."""
        return self._holder

    @property
    def epoch(self) -> int | None:
        """The lease epoch this store holds, or None when it holds none."""
        return self._epoch

    async def lease_step(self, holder: Holder, duration: float) -> store_lease.LeaseOutcome:
        """One step of `holder`'s lease: acquire, renew or stand by (`watcher.core.lease.decide`).

        Acquiring returns the outbox claims of earlier holders to the queue in the same
        transaction. Raises `StoreReplaced` when the path no longer names this store.
        """
        return await self._run("taking the store's lease", lambda _: self._step(holder, duration))

    def _step(self, holder: Holder, duration: float) -> store_lease.LeaseOutcome:
        self._check_files()
        decision = self._decide(self._conn, holder, duration)
        returned = 0
        if decision.held:

            def write(conn: sqlite3.Connection) -> tuple[LeaseDecision, int]:
                self._lock_lease(conn)
                again = self._decide(conn, holder, duration)  # under the write lock
                clock = self.lease_clock().clock
                return again, store_lease.apply(conn, again, clock, duration, self.lease_name)

            decision, returned = self._transaction(
                "taking the store's lease", write, Fence.NONE, keeps_state=True, counts=False
            )
        self._holder = holder
        self._epoch = decision.epoch if decision.held else None
        return store_lease.LeaseOutcome(decision, returned)

    def _lock_lease(self, conn: sqlite3.Connection) -> None:
        """Serialize lease steps (SQLite: the write lock of `BEGIN IMMEDIATE` already does)."""

    def _decide(self, conn: sqlite3.Connection, holder: Holder, duration: float) -> LeaseDecision:
        current = store_lease.read_lease(conn, self.lease_name)
        other = current.holder if current is not None else None
        alive = Liveness.UNKNOWN
        if other is not None and other.id != holder.id:
            alive = self.liveness(other)
        held = self._epoch if self._holder == holder else None
        now = self.lease_clock()
        return decide(current, me=holder, held=held, now=now, duration=duration, liveness=alive)

    def _release(self) -> None:
        holder, epoch = self._holder, self._epoch
        if holder is None or epoch is None:
            return
        now = self.lease_clock().seconds
        self._transaction(
            "releasing the store's lease",
            lambda c: store_lease.release(c, holder, epoch, now, self.lease_name),
            Fence.NONE,
        )
        self._epoch = None

    async def release_lease(self) -> None:
        """Let the lease go now (a clean stop), so that a process standing by takes it at once."""
        await self._run("releasing the store's lease", lambda _: self._release())

    async def read_lease(self) -> Lease | None:
        """The lease row as it is (for `watcher status` and messages)."""
        return await self._run(
            "reading the store's lease", lambda conn: store_lease.read_lease(conn, self.lease_name)
        )

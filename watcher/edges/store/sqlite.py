"""The state store and outbox on SQLite: one connection owned by one dedicated thread.

`SqliteStore` implements `watcher.core.ports.StateStore` and `watcher.core.ports.Outbox`. Every
public method is one whole transaction run on the store's thread (`store_conn`), so two coroutines
sharing a store never interleave inside a transaction. sqlite3 errors are translated into
`StoreError` / `StoreCorrupt` there. The SQL of the Protocol methods sticks to what PostgreSQL also
speaks (`ON CONFLICT`, conditional `UPDATE`), so another adapter can keep the same contract. Writes
are fenced by the store's lease (`Fence`), as `store_conn` explains.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from watcher.core.digest import KbLatest
from watcher.core.facts import StoredFact
from watcher.core.incident import Ack, Incident
from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryState, OutboxItem, Settlement
from watcher.core.ports import SilenceAnnouncer
from watcher.core.silences import Silence
from watcher.core.state import Change, Transition, WatchState
from watcher.edges.store import schema
from watcher.edges.store import silences as silence_rows
from watcher.edges.store.browse import StoreReads
from watcher.edges.store.conn import DEFAULT_LEASE, Fence
from watcher.edges.store.digests import read_digest_facts
from watcher.edges.store.facts import load_facts, save_facts
from watcher.edges.store.held import next_delivery, release_held_rows
from watcher.edges.store.incidents import acknowledge, open_incidents
from watcher.edges.store.rows import (
    JobCache,
    claim_rows,
    load_rows,
    prune_rows,
    render_change,
    settle_row,
    write_change,
    write_meta,
)

if TYPE_CHECKING:
    from watcher.core.snapshot import StoreSnapshot
    from watcher.edges.store.snapshot import Counts

__all__ = ["DEFAULT_LEASE", "SqliteStore"]


_LOADS_KEPT = 8  # distinct job sets whose loaded state is kept (two per account a cycle)


def _copy(state: WatchState) -> WatchState:
    """A state of its own for the caller (its maps are dicts: never share them)."""
    return replace(
        state, kbs=dict(state.kbs), jobs=dict(state.jobs), incidents=dict(state.incidents)
    )


class SqliteStore(StoreReads):
    """The watcher's state store and outbox in one SQLite file (WAL, synchronous=FULL)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Use `SqliteStore.open`; this only wires an already opened connection."""
        super().__init__(*args, **kwargs)
        self._store_state()

    def _store_state(self) -> None:
        """The store's own state beside its connection; the PostgreSQL store's constructor
        sets it too (`watcher.edges.store.postgres`), so an attribute added here serves both."""
        self._claims: dict[int, str] = {}
        self._jobs = JobCache()
        # the last states loaded, by the jobs asked for: (`_state_version` then, the state)
        self._loaded: dict[tuple[str, ...], tuple[tuple[int, ...], WatchState]] = {}
        self.loads_kept = 0  # loads answered from `_loaded` (for tests and profiles)
        self._counts: tuple[tuple[int, ...], Counts] | None = None  # `snapshot`'s
        self.counts_kept = 0  # gauge reads answered from `_counts` (for tests and profiles)
        self._others_seen: int | None = None  # `data_version` when last read (`kept_counts`)

    # --- StateStore -------------------------------------------------------------------------

    async def load(self, job_uuids: Collection[str]) -> WatchState:
        """Every known KB, the jobs named, and every job that is not done yet.

        Read again only when something may have changed them since the same jobs were last
        loaded: a write of this store's that may touch them (`_generation`), or any commit
        of another connection to the file (`_state_version`)."""
        wanted = tuple(sorted(set(job_uuids)))

        def work(conn: sqlite3.Connection) -> WatchState:
            version = self._state_version(conn)
            kept = self._loaded.get(wanted)
            if version is not None and kept is not None and kept[0] == version:
                self.loads_kept += 1
                return _copy(kept[1])
            state = load_rows(conn, self.path, list(wanted), self._jobs)
            if version is not None:
                if len(self._loaded) >= _LOADS_KEPT:
                    self._loaded.clear()
                self._loaded[wanted] = (version, state)
            return _copy(state)

        return await self._run("loading the state", work)

    # --- QuietSigns ---------------------------------------------------------------------

    async def state_version(self) -> tuple[int, ...] | None:
        """What changes with another connection's commit, this store's own writes of KBs,
        jobs and incidents, and reopens (`_state_version`); None on PostgreSQL.

        The files are checked first, as every write checks them (`_check_files`): a quiet
        cycle writes nothing, yet refuses a store moved away or replaced (`StoreReplaced`)
        as the full cycle's first write would, and a side file deleted under it reopens the
        connection (a new version: the next cycle runs in full)."""

        def work(_: sqlite3.Connection) -> tuple[int, ...] | None:
            self._check_files()
            return self._state_version(self._conn)  # the connection a reopen made

        return await self._run("reading the store's version", work)

    async def next_delivery(self) -> datetime | None:
        """The earliest next attempt of a pending outbox row (`datetime.min` while a row is
        claimed), None when no row waits (`watcher.edges.store.rows.next_delivery`)."""
        return await self._run("reading the next delivery", next_delivery)

    def _data_version(self, conn: sqlite3.Connection) -> int | None:
        """What changes with every commit of another connection to the file, any process's
        (SQLite's `data_version`); None where there is no such counter (PostgreSQL: every
        load and count reads)."""
        (others,) = conn.execute("PRAGMA data_version").fetchone()
        self._others_seen = int(others)
        return self._others_seen

    def _commit_version(self, conn: sqlite3.Connection) -> tuple[int, ...] | None:
        """What changes with every commit that may change the gauges' counts: another
        connection's (`_data_version`), this store's own that changed rows, and reopens."""
        others = self._data_version(conn)
        return None if others is None else (others, self._commits)

    def _state_version(self, conn: sqlite3.Connection) -> tuple[int, ...] | None:
        """What changes whenever the KB, job or incident rows may have: another connection's
        commit (`_data_version`) and this store's own writes and reopens."""
        others = self._data_version(conn)
        return None if others is None else (others, self._generation)

    async def record(self, change: Change, *, meta: Mapping[str, str | None] | None = None) -> None:
        """Write a whole cycle in one transaction: KBs, jobs, events, outbox rows, meta.

        Events and outbox rows that already exist are left alone, so recording the same change
        twice is a no-op for them. `meta` values of None delete their key.
        """

        def work(_: sqlite3.Connection) -> None:
            rows = render_change(change, meta or {})  # encoded before the write lock is taken
            keeps = not (rows.kbs or rows.jobs or rows.incidents)  # events, outbox, meta only
            counted = rows.jobs or rows.events or rows.outbox or rows.incidents or rows.guarded
            self._transaction(
                "recording a cycle",
                lambda c: write_change(c, rows),
                Fence.HOLDER,
                keeps_state=keeps,
                counts=bool(counted),  # an idle cycle records its meta alone
            )

        await self._run("recording a cycle", work)

    # --- FactStore -------------------------------------------------------------------------

    async def load_facts(self) -> list[StoredFact]:
        """Every fact the extra reads stored."""
        return await self._run("loading facts", load_facts)

    async def save_facts(self, facts: Sequence[StoredFact], at: datetime) -> None:
        """Insert or replace each fact, in one transaction (the poller's, like `record`)."""
        if facts:
            await self._write(
                "saving facts",
                lambda conn: save_facts(conn, facts, at),
                keeps_state=True,  # the facts table alone
                counts=False,
            )

    # --- Outbox -----------------------------------------------------------------------------

    async def claim_due(
        self, now: datetime, limit: int, longest_wait: timedelta | None = None
    ) -> list[OutboxItem]:
        """Claim up to `limit` due rows, oldest first, returning expired claims to the queue.

        A retry time more than `longest_wait` after `now` counts as due (a wall-clock step).
        Each claim expires `lease` after it was made on the lease clock (boot time and boot
        id), never on the wall clock: see `watcher.edges.store.rows.claim_rows`.
        """
        if limit <= 0:
            return []
        token = uuid.uuid4().hex
        claimed = await self._write(
            "claiming deliveries",
            lambda conn: claim_rows(
                conn,
                now=now,
                clock=self.lease_clock(),
                lease=self.lease,
                limit=limit,
                token=token,
                longest_wait=longest_wait,
                epoch=None if self.shared_claims else self._epoch,
            ),
            Fence.IF_HELD,
            keeps_state=True,  # the outbox alone
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

        await self._write("settling deliveries", write, Fence.IF_HELD, keeps_state=True)

    # --- silences (`watcher.core.ports.SilenceBook`) ---------------------------------------

    async def add_silence(self, silence: Silence) -> None:
        """Store a new silence (`watcher silence add`); any process may."""
        await self._write("adding a silence", lambda c: silence_rows.insert(c, silence), Fence.NONE)

    async def expire_silence(self, silence_id: str, now: datetime) -> bool:
        """End an active silence at `now`; False when no active silence has that id."""
        return await self._write(
            "expiring a silence",
            lambda c: silence_rows.expire(c, silence_id, now),
            Fence.NONE,
        )

    async def silences(self, now: datetime, *, every: bool = False) -> list[Silence]:
        """The silences active at `now` (or every one stored), each with the rows it held."""
        return await self._run(
            "reading silences", lambda c: silence_rows.listed(c, now, every=every)
        )

    async def current_silences(self, now: datetime) -> list[Silence]:
        """The silences active at `now` and those ended but not announced yet."""
        return await self._run("reading silences", lambda c: silence_rows.current(c, now))

    async def silenced_openers(
        self, route: str, kind: EventKind, before: int
    ) -> list[tuple[Transition, str | None]]:
        """The route's events of `kind` before outbox row `before`, newest first, each with
        the silence that held its row (None when none did)."""
        return await self._run(
            "reading what a silence held", lambda c: silence_rows.openers(c, route, kind, before)
        )

    async def known_kbs(self) -> list[tuple[str, str | None]]:
        """(uuid, name) of every knowledge base the store knows (to resolve `--kb NAME`)."""
        return await self._run("reading knowledge bases", silence_rows.known_kbs)

    async def announce_silence_end(
        self, silence_id: str, now: datetime, build: SilenceAnnouncer
    ) -> Change | None:
        """Mark the silence announced, read what it held and the open incidents, and record
        `build`'s announcement (events, outbox rows), all in one transaction, once; None when
        it was announced already. Poller only."""
        return await self._write(
            "announcing the end of a silence",
            lambda c: silence_rows.announce(c, self.path, silence_id, now, build),
            Fence.HOLDER,
        )

    async def release_held(self, ends: Mapping[str, datetime], now: datetime) -> int:
        """Rows held by quiet hours the configuration no longer backs: due at their route's
        current quiet's end (`ends`) or `now` (`watcher.edges.store.held`); the count."""
        return await self._write(
            "releasing held deliveries",
            lambda conn: release_held_rows(conn, ends, now),
            Fence.IF_HELD,
            keeps_state=True,  # the outbox alone
        )

    async def digest_facts(
        self, since: datetime | None, until: datetime
    ) -> tuple[tuple[Transition, ...], tuple[KbLatest, ...]]:
        """What a digest of `[since, until)` reads (`watcher.edges.store.digests`)."""
        return await self._run(
            "reading a digest's facts", lambda conn: read_digest_facts(conn, since, until)
        )

    # --- operations, status, health -------------------------------------------------------

    async def snapshot(
        self, now: datetime, *, dead_letter_limit: int = 50, detail: bool = True
    ) -> StoreSnapshot:
        """What `watcher status`, health and metrics show, read in one consistent snapshot.

        `detail=False` reads the counts only (no KBs, routes, dead letters or event counts):
        the daemon refreshes its gauges that way after every cycle, and they are read again
        only when a commit (this store's, or any other connection's: `data_version`) may have
        changed them. A history of 100,000 jobs made that read 26 ms of CPU a cycle.
        """
        from watcher.edges.store.snapshot import Counts, read_snapshot  # not `watcher once`'s

        def work(conn: sqlite3.Connection) -> StoreSnapshot:
            if detail:
                return read_snapshot(conn, self.path, now, dead_letter_limit)
            version = self._commit_version(conn)
            kept = self._counts[1] if self._counts and self._counts[0] == version else None
            self.counts_kept += kept is not None
            snap = read_snapshot(conn, self.path, now, 0, detail=False, counts=kept)
            self._counts = None if version is None else (version, Counts.of(snap))
            return snap

        return await self._run("reading the status", work)

    def kept_counts(self) -> Counts | None:
        """The counts of the last count-only `snapshot` while they still hold as of the last
        reading of the store's version, with no round trip to the store's thread: no other
        connection had committed then (`data_version`) and no commit of this store has
        changed a counted row since (`_commits`). None when they may not hold, or nothing
        was read (PostgreSQL). A quiet cycle read the version at its start: its gauges."""
        kept, seen = self._counts, self._others_seen
        if kept is None or seen is None or kept[0] != (seen, self._commits):
            return None
        self.counts_kept += 1
        return kept[1]

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

    async def retry_dead(self, now: datetime, ids: Collection[int] | None = None) -> list[int]:
        """Put dead-letter rows (all, or the ids given) back in the queue with 0 attempts and
        a fresh `dead_after` window (counted from their next failure); return the ids queued
        again. The URLs a row already reached stay remembered, so they do not hear it twice."""
        at = schema.to_db(now)
        sql = (
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?,"
            " created_at = ?, settled_at = NULL, claim_clock = NULL, claim_expires = NULL"
            " WHERE state = 'dead' AND id = ?"
        )

        def write(conn: sqlite3.Connection) -> list[int]:
            wanted = ids
            if wanted is None:
                dead = "SELECT id FROM outbox WHERE state = 'dead' ORDER BY id"
                wanted = [int(row[0]) for row in conn.execute(dead)]
            return [i for i in wanted if conn.execute(sql, (at, at, i)).rowcount]

        return await self._write("retrying dead letters", write, Fence.NONE)

    async def open_incidents(self) -> tuple[Incident, ...]:
        """Every open incident, oldest first, with its acknowledgement if any."""
        return await self._run("reading incidents", lambda conn: open_incidents(conn, self.path))

    async def acknowledge(self, ref: str, ack: Ack) -> Incident:
        """Acknowledge the open incident of the KB `ref` names (name, uuid, or a job's uuid):
        no more reminders or escalation for it. `AckRefused` when there is none to ack.
        Like `retry_dead`, an operator's write beside a running daemon (no lease needed)."""
        return await self._write(
            "acknowledging an incident",
            lambda conn: acknowledge(conn, self.path, ref, ack),
            Fence.NONE,
        )

    async def dead_letter_count(self) -> int:
        """How many outbox rows gave up (state dead)."""
        sql = "SELECT count(*) FROM outbox WHERE state = ?"
        row = await self._run(
            "counting dead letters",
            lambda conn: conn.execute(sql, (DeliveryState.DEAD.value,)).fetchone(),
        )
        return int(row[0])

    async def set_meta(self, key: str, value: str | None) -> None:
        """Store `value` under `key` (None deletes the key)."""
        await self._write(
            "writing meta",
            lambda conn: write_meta(conn, [(key, value)]),
            keeps_state=True,
            counts=False,  # a meta row: the counts stay what they were
        )

    async def set_metas(
        self, values: Mapping[str, str | None], *, last_cycle_at: datetime | None = None
    ) -> None:
        """Store each of `values` (None deletes the key) and, when given, when a cycle
        succeeded (`set_last_cycle_at`), in one transaction: the heartbeat's, every cycle.

        Not flushed to the disk (`synced=False`): every other process reads it at once all
        the same (WAL), and what a machine's crash may take back is harmless (a heartbeat is
        judged with its boot id, a time for people, a config mark stored again at start);
        the next synced commit flushes it too. The flush was most of its cost."""
        rows = list(values.items())
        if last_cycle_at is not None:
            rows.append((schema.META_LAST_CYCLE, schema.to_db(last_cycle_at)))
        await self._write(
            "writing meta",
            lambda conn: write_meta(conn, rows),
            keeps_state=True,
            counts=False,
            synced=False,
        )

    async def last_cycle_at(self) -> datetime | None:
        """When the last successful cycle ended, as set by `set_last_cycle_at`."""
        value = await self.get_meta(schema.META_LAST_CYCLE)
        return None if value is None else schema.from_db(value)

    async def set_last_cycle_at(self, at: datetime) -> None:
        """Remember when a cycle succeeded (for `watcher health` and `status`)."""
        await self.set_meta(schema.META_LAST_CYCLE, schema.to_db(at))

"""Row-level work of the SQLite store: job rows, claiming, settling and pruning the outbox.

Each function runs inside a transaction opened by `watcher.edges.store.sqlite`; none of them
commits. The SQL is the portable kind (conditional `UPDATE`, window functions), so the same
statements serve as the reference for a PostgreSQL adapter.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from watcher.core.clocks import Elapsed
from watcher.core.fingerprint import fingerprint
from watcher.core.lease import LeaseTime
from watcher.core.model import Phase, Status
from watcher.core.outbox import DeliveryState, OutboxItem, Settlement, TargetResult
from watcher.core.state import Change, JobState, KbState, StallReason, WatchState
from watcher.edges.store import codec, schema
from watcher.edges.store import incidents as incident_rows

# A claim lasts until `claim_expires` on the lease clock named `claim_clock` (CLOCK_BOOTTIME and
# the boot id: it never steps). A claim on another clock (another boot, or made before claims
# had one) or further ahead than a whole claim lease (a clock reset where no boot id names it)
# cannot be measured, and its claimer cannot still be sending: it is returned at once.
_EXPIRE: Final = """
    UPDATE outbox INDEXED BY outbox_due
    SET state = 'pending', claimed_at = NULL, claim_token = NULL, claim_epoch = NULL,
        claim_clock = NULL, claim_expires = NULL,
        last_error = 'claim expired: the sender stopped before settling'
    WHERE state = 'sending' AND (claim_clock IS NULL OR claim_clock <> ?
        OR claim_expires IS NULL OR claim_expires <= ? OR claim_expires > ?)"""
# Due: the retry time has come, or lies further ahead than any backoff allows, or the row was
# last claimed (a settlement keeps `claimed_at`), else created, at a wall time later than now.
# The last two only come from a step of the wall clock: a backoff (or a new row's "due now")
# measured across a step back cannot be trusted, so the row goes at once rather than up to the
# step's size late (one early attempt; its next backoff is measured from it). A row still held
# by quiet hours (`next_attempt_at` its `held_until`) waits for the window's end, however far;
# once released, its retries are any row's. Rows go out in the order they were written (`id`),
# never by a wall-clock time a step may have skewed. On PostgreSQL, rows another replica is
# claiming right now are skipped rather than waited for.
# By the state's index (`INDEXED BY`; PostgreSQL drops the hint): with the statistics a closed
# store leaves, SQLite would walk the whole table in `id` order for `ORDER BY id LIMIT`, every
# settled row of the history included (17 ms a cycle at 100,000), for the few pending ones.
_CANDIDATES: Final = """
    SELECT id, claim_clock, claim_expires FROM outbox INDEXED BY outbox_due
    WHERE state = 'pending'
        AND (next_attempt_at <= ? OR (
            (held_by IS NULL OR held_until IS NULL OR next_attempt_at <> held_until)
            AND (next_attempt_at > ? OR COALESCE(claimed_at, created_at) > ?)))
    ORDER BY id LIMIT ? /*pg: FOR UPDATE SKIP LOCKED*/"""
# While a row is pending after a failed attempt, the claim columns hold the elapsed-clock
# reading of its first failure, which `delivery.dead_after` is measured from
# (`watcher.core.decide`): `claim_clock` is `failing:<boot id>` and `claim_expires` the seconds
# since that boot (CLOCK_BOOTTIME, the lease clock's clock). A claim overwrites them, so the
# claimer reads them first and writes them back with the row's settlement; a claim that
# expires (its sender stopped) loses them, and the row is measured again from its next failure.
FAILING: Final = "failing:"
_CLAIM: Final = """
    UPDATE outbox SET state = 'sending', claimed_at = ?, claim_token = ?, claim_epoch = ?,
        claim_clock = ?, claim_expires = ?
    WHERE id = ? AND state = 'pending'"""
_CLAIMED: Final = """
    SELECT o.id, o.route, o.created_at, o.attempts, o.last_error, e.cycle_id, e.payload,
        o.targets, o.held_by, o.held_until
    FROM outbox o INDEXED BY outbox_due JOIN events e ON e.event_id = o.event_id
    WHERE o.claim_token = ? AND o.state = 'sending'
    ORDER BY o.id"""
_BURY: Final = """
    UPDATE outbox SET state = 'dead', settled_at = ?, claimed_at = NULL, claim_token = NULL,
        claim_epoch = NULL, claim_clock = NULL, claim_expires = NULL, last_error = ?
    WHERE id = ?"""
_SETTLE: Final = """
    UPDATE outbox SET state = ?, attempts = ?, last_error = ?, targets = ?,
        sent_at = COALESCE(?, sent_at), settled_at = ?,
        next_attempt_at = COALESCE(?, next_attempt_at), claim_token = NULL,
        claim_epoch = NULL, claim_clock = ?, claim_expires = ?,
        held_by = COALESCE(?, held_by), held_until = COALESCE(?, held_until), silence_id = ?
    WHERE id = ? AND state = 'sending'"""
_UPSERT_KB: Final = """
    INSERT INTO knowledge_bases (uuid, name, first_seen_at, last_job_uuid, updated, news_since)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (uuid) DO UPDATE SET name = excluded.name,
        first_seen_at = excluded.first_seen_at, last_job_uuid = excluded.last_job_uuid,
        updated = excluded.updated, news_since = excluded.news_since"""
_UPSERT_JOB: Final = """
    INSERT INTO jobs (uuid, kb_uuid, observation, phase, status, created_at, first_seen_at,
        progress_at, deadline, stalled, stall_count, started_alerted, done, updated, sighting,
        corrections)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (uuid) DO UPDATE SET kb_uuid = excluded.kb_uuid,
        observation = excluded.observation, phase = excluded.phase, status = excluded.status,
        created_at = excluded.created_at, first_seen_at = excluded.first_seen_at,
        progress_at = excluded.progress_at, deadline = excluded.deadline,
        stalled = excluded.stalled, stall_count = excluded.stall_count,
        started_alerted = excluded.started_alerted, done = excluded.done,
        updated = excluded.updated, sighting = excluded.sighting,
        corrections = excluded.corrections"""
_INSERT_EVENT: Final = """
    INSERT INTO events (event_id, kind, kb_uuid, job_uuid, at, cycle_id, payload, recorded_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (event_id) DO NOTHING"""
_INSERT_OUTBOX: Final = """
    INSERT INTO outbox (event_id, route, state, attempts, created_at, next_attempt_at)
    VALUES (?, ?, 'pending', 0, ?, ?)
    ON CONFLICT (event_id, route) DO NOTHING"""
_UPSERT_META: Final = """
    INSERT INTO meta (key, value) VALUES (?, ?)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value"""


_JOB_COLUMNS: Final = (
    "uuid, kb_uuid, observation, first_seen_at, progress_at, deadline, stalled, stall_count,"
    " started_alerted, done, sighting, corrections"
)
_CHUNK: Final = 500
_NEVER: Final = "9999-12-31T23:59:59.999999Z"  # later than any stored time
# The jobs still in play are a handful among the whole history, but `done` has two values,
# so once `PRAGMA optimize` has analysed the table SQLite reckons `done = 0` matches half of
# it and scans every stored observation (100,000 finished jobs: ~150 ms a cycle). The index
# is named so the plan cannot depend on statistics. (SQLite only; PostgreSQL keeps
# most-common-value statistics and needs no hint.)
_OPEN_JOBS: Final = f"SELECT {_JOB_COLUMNS} FROM jobs INDEXED BY jobs_done_updated WHERE done = 0"
# Likewise stale statistics (analysed when the table was small) make a scan look cheaper than
# a few hundred key lookups; the primary key's index is SQLite's `sqlite_autoindex_jobs_1`.
_JOBS_BY_UUID: Final = (
    f"SELECT {_JOB_COLUMNS} FROM jobs INDEXED BY sqlite_autoindex_jobs_1 WHERE uuid IN"
)
_PRUNE_OUTBOX: Final = """
    DELETE FROM outbox WHERE COALESCE(settled_at, created_at) < ? AND (state IN ('sent', 'dead')
        OR (state = 'silenced' AND silence_id IN (
            SELECT id FROM silences WHERE announced_at IS NOT NULL)))"""
_PRUNE_EVENTS: Final = """
    DELETE FROM events WHERE at < ?
        AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = events.event_id)
        AND (job_uuid IS NULL OR job_uuid NOT IN (SELECT uuid FROM jobs WHERE done = 0))"""
_PRUNE_JOBS: Final = """
    DELETE FROM jobs WHERE done = 1 AND updated < ?
        AND uuid NOT IN (
            SELECT last_job_uuid FROM knowledge_bases WHERE last_job_uuid IS NOT NULL)
        AND uuid NOT IN (
            SELECT uuid FROM (
                SELECT uuid, ROW_NUMBER() OVER (
                    PARTITION BY kb_uuid
                    ORDER BY COALESCE(created_at, first_seen_at) DESC, uuid DESC) AS n
                FROM jobs) AS ranked
            WHERE n <= ?)"""


@dataclass(frozen=True, slots=True)
class ChangeRows:
    """A change encoded into rows, ready for `write_change`."""

    kbs: list[tuple[Any, ...]]
    jobs: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    outbox: list[tuple[Any, ...]]
    meta: list[tuple[str, str | None]]
    incidents: list[tuple[Any, ...]] = field(default_factory=list)
    guarded: list[tuple[Any, ...]] = field(default_factory=list)  # reminders, escalations


def render_change(change: Change, meta: Mapping[str, str | None]) -> ChangeRows:
    """Encode a change into the rows `record` writes."""
    at = schema.to_db(change.at)
    return ChangeRows(
        kbs=[_kb_row(kb, at) for kb in change.kbs],
        jobs=[job_row(state, at) for state in change.jobs],
        events=[
            (
                t.event_id,
                t.kind.value,
                t.kb_uuid,
                t.job_uuid,
                schema.to_db(t.at),
                change.cycle_id,
                codec.dumps(codec.encode_transition(t)),
                at,
            )
            for t in change.transitions
        ],
        outbox=[(d.event_id, d.route, at, at) for d in change.deliveries if d.incident is None],
        meta=list(meta.items()),
        incidents=[incident_rows.incident_row(i, at) for i in change.incidents],
        guarded=[
            (d.event_id, d.route, at, at, d.incident)
            for d in change.deliveries
            if d.incident is not None
        ],
    )


def _kb_row(kb: KbState, at: str) -> tuple[Any, ...]:
    since = schema.to_db_or_none(kb.news_since)
    return (kb.uuid, kb.name, schema.to_db(kb.first_seen_at), kb.last_job_uuid, at, since)


def write_change(conn: sqlite3.Connection, rows: ChangeRows) -> None:
    """Upsert KBs, jobs and incidents, add new events and outbox rows (a reminder's or an
    escalation's only while its incident is unacknowledged), write meta (inside a transaction)."""
    conn.executemany(_UPSERT_KB, rows.kbs)
    conn.executemany(_UPSERT_JOB, rows.jobs)
    conn.executemany(incident_rows.UPSERT, rows.incidents)
    conn.executemany(_INSERT_EVENT, rows.events)
    conn.executemany(_INSERT_OUTBOX, rows.outbox)
    conn.executemany(incident_rows.GUARDED_OUTBOX, rows.guarded)
    write_meta(conn, rows.meta)


def write_meta(conn: sqlite3.Connection, items: Iterable[tuple[str, str | None]]) -> None:
    for key, value in items:
        if value is None:
            conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            conn.execute(_UPSERT_META, (key, value))


def job_row(state: JobState, at: str) -> tuple[Any, ...]:
    """The `jobs` row for a job state; phase and status hold the API's text as reported."""
    job = state.job
    return (
        job.uuid,
        state.kb_uuid,
        codec.dumps(codec.encode_job(job)),
        job.phase_raw or (None if job.phase is Phase.UNKNOWN else job.phase.value),
        job.status_raw or (None if job.status is Status.UNKNOWN else job.status.value),
        schema.to_db_or_none(job.created_at),
        schema.to_db(state.first_seen_at),
        schema.to_db(state.progress_at),
        schema.to_db_or_none(state.deadline),
        state.stalled.value if state.stalled else None,
        state.stall_count,
        int(state.started_alerted),
        int(state.done),
        at,
        codec.encode_sighting(state.sighting),
        state.corrections,
    )


def job_state_from_row(row: sqlite3.Row | tuple[Any, ...], path: Path) -> JobState:
    """Rebuild a job state from `uuid, kb_uuid, observation, first_seen_at, progress_at,
    deadline, stalled, stall_count, started_alerted, done[, sighting[, corrections]]`; raises
    `StoreCorrupt` if unreadable. A missing or unreadable sighting is None: `detect` seeds it
    afresh; missing corrections are 0.
    """
    try:
        return JobState(
            job=codec.decode_job(codec.loads(row[2])),
            kb_uuid=sys.intern(row[1]),  # one object with the API's ids (`wire.to_str`)
            first_seen_at=schema.from_db(row[3]),
            progress_at=schema.from_db(row[4]),
            deadline=schema.from_db_or_none(row[5]),
            stalled=StallReason(row[6]) if row[6] else None,
            stall_count=int(row[7]),
            started_alerted=bool(row[8]),
            done=bool(row[9]),
            sighting=codec.decode_sighting(row[10]) if len(row) > 10 else None,
            corrections=int(row[11]) if len(row) > 11 else 0,
        )
    except (ValueError, TypeError) as exc:
        raise schema.corrupt(path, f"job {row[0]} cannot be read: {exc}") from exc


def open_job_states(conn: sqlite3.Connection, path: Path) -> list[JobState]:
    """Every job not done yet: the few in play (call inside a read transaction)."""
    return [job_state_from_row(tuple(row), path) for row in conn.execute(_OPEN_JOBS)]


class JobCache:
    """Job states decoded from rows, reused while their row is unchanged (store thread only).

    Each cycle loads the latest job of every knowledge base, nearly always the very row it
    loaded a minute ago; decoding its JSON again is most of a load's cost. To know the row
    again it keeps only a 128-bit fingerprint of the row (`watcher.core.fingerprint`, as the
    API's page memo does), not the row: its JSON (`observation`,
    about 0.8 KB a job) and its text columns (times, the sighting) weighed about 1.4 KB a job
    beside the decoded state (`bench/memory.py` prints both), for about 3 µs a row on a load.
    Bounded: when it holds `limit` jobs it starts over; a load of more rows than half the
    limit raises it first (`expect`), or a load of 10,000 KBs' jobs would start over twice
    in every load and decode nearly every row again, each time beside the states it replaces.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._rows: dict[str, tuple[bytes, JobState]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def expect(self, rows: int) -> None:
        """A load of `rows` rows follows: hold at least twice that many before starting over."""
        self._limit = max(self._limit, 2 * rows)

    def decode(self, row: tuple[Any, ...], path: Path) -> JobState:
        """The job state of a `_JOB_COLUMNS` row, decoded once per distinct row."""
        known = _known(row)
        kept = self._rows.get(row[0])
        if kept is not None and kept[0] == known:
            return kept[1]
        state = job_state_from_row(row, path)
        if len(self._rows) >= self._limit:
            self._rows.clear()
        self._rows[row[0]] = (known, state)
        return state


def _known(row: tuple[Any, ...]) -> bytes:
    """What `JobCache` keeps of a row to know it again: a digest of every column after the
    uuid (its key), from the row's `repr`, which is exact for SQLite's values (text with lone
    surrogates escaped, None, int and float told apart)."""
    return fingerprint(repr(row[1:]).encode("utf-8", "backslashreplace"))


def load_rows(
    conn: sqlite3.Connection, path: Path, wanted: list[str], cache: JobCache | None = None
) -> WatchState:
    """Every KB, every job not done, and the done jobs among `wanted`, in one read transaction."""
    conn.execute("BEGIN")
    try:
        kbs = {
            (uuid := sys.intern(row[0])): KbState(  # one object with the API's ids
                uuid, row[1], schema.from_db(row[2]), row[3], schema.from_db_or_none(row[4])
            )
            for row in conn.execute(
                "SELECT uuid, name, first_seen_at, last_job_uuid, news_since FROM knowledge_bases"
            )
        }
        rows = conn.execute(_OPEN_JOBS).fetchall()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            sql = f"{_JOBS_BY_UUID} ({marks}) AND done = 1"
            rows.extend(conn.execute(sql, chunk))
        opened = {i.kb_uuid: i for i in incident_rows.open_incidents(conn, path)}
    finally:
        conn.execute("COMMIT")
    if cache is not None:
        cache.expect(len(rows))
    decode = cache.decode if cache is not None else job_state_from_row
    states = (decode(tuple(row), path) for row in rows)
    return WatchState(kbs=kbs, jobs={state.uuid: state for state in states}, incidents=opened)


def claim_rows(
    conn: sqlite3.Connection,
    *,
    now: datetime,
    clock: LeaseTime,
    lease: timedelta,
    limit: int,
    token: str,
    longest_wait: timedelta | None = None,
    epoch: int | None = None,
) -> list[OutboxItem]:
    """Return expired claims to the queue, then claim up to `limit` due rows under `token`.

    Two clocks, never compared: `now` is the wall clock, for what people and backoffs read
    (due means a retry time at or before `now`, or more than `longest_wait` after it, or a row
    last claimed or created after `now`: a step of the wall clock; `claimed_at` records it,
    and a settlement keeps it). `clock` is a reading of the store's lease clock
    (`watcher.edges.host.lease_time`: seconds since boot, named by the boot id), the only
    clock a claim's expiry is kept and judged on: each claim lasts `lease` seconds on it, so
    a step of the wall clock while a send is in flight never returns that send's rows to the
    queue (it would send them twice). A claim taken on another clock (another boot, or a
    store written before claims had one) is returned at once: its claimer is gone.

    `epoch` is the store lease's epoch the claimer holds (None: it holds none); whoever takes
    the lease over later returns the claims of earlier epochs at once.

    A row whose event payload cannot be decoded is moved to the dead letters with the reason,
    so one bad row never blocks the queue.
    """
    at = schema.to_db(now)
    horizon = schema.to_db(now + longest_wait) if longest_wait is not None else _NEVER
    seconds = lease.total_seconds()
    conn.execute(_EXPIRE, (clock.clock, clock.seconds, clock.seconds + seconds))
    expires = clock.seconds + seconds
    failing: dict[int, Elapsed | None] = {}
    for row_id, failing_clock, failing_at in conn.execute(
        _CANDIDATES, (at, horizon, at, limit)
    ).fetchall():
        failing[int(row_id)] = decode_failing(failing_clock, failing_at)
        # rowcount 0: another store claimed it
        conn.execute(_CLAIM, (at, token, epoch, clock.clock, expires, row_id))
    items = []
    for row in conn.execute(_CLAIMED, (token,)).fetchall():
        try:
            items.append(_outbox_item(row, failing.get(int(row[0]))))
        except (ValueError, TypeError) as exc:
            conn.execute(_BURY, (at, f"undecodable event payload: {exc}", row[0]))
    return items


def decode_failing(clock: object, seconds: object) -> Elapsed | None:
    """The first failure's elapsed-clock reading kept in a pending row's claim columns (None
    for anything else: no failure yet, or an older version's values)."""
    if not isinstance(clock, str) or not clock.startswith(FAILING):
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return Elapsed(float(seconds), clock.removeprefix(FAILING))


def _outbox_item(row: tuple[Any, ...], failing: Elapsed | None = None) -> OutboxItem:
    targets = _targets(row[7])
    return OutboxItem(
        id=int(row[0]),
        route=row[1],
        transition=codec.decode_transition(codec.loads(row[6])),
        cycle_id=row[5],
        created_at=schema.from_db(row[2]),
        attempts=int(row[3]),
        last_error=row[4],
        delivered=frozenset(t.index for t in targets if t.ok and t.index is not None),
        last_targets=targets,
        failing_for=failing,
        held_by=row[8],
        held_until=schema.from_db_or_none(row[9]),
    )


def _targets(targets: str | None) -> tuple[TargetResult, ...]:
    """What each of the route's URLs answered the last attempt (reached ones included)."""
    if not targets:
        return ()
    return codec.decode_target_results(codec.loads(targets))


_SETTLED: Final = (DeliveryState.SENT, DeliveryState.DEAD, DeliveryState.SILENCED)


def settle_row(settlement: Settlement, token: str | None) -> tuple[str, tuple[Any, ...]]:
    """The conditional UPDATE for one settlement; with a token, only that claim is settled."""
    state = settlement.state
    if state is DeliveryState.SENDING:
        raise ValueError(f"outbox row {settlement.outbox_id}: 'sending' is not a settlement")
    at = schema.to_db(settlement.at)
    next_at = None
    if state is DeliveryState.PENDING:
        next_at = schema.to_db(settlement.next_attempt_at or settlement.at)
    targets = settlement.targets
    failing = settlement.failing_for if state is DeliveryState.PENDING else None
    params: tuple[Any, ...] = (
        state.value,
        settlement.attempts,
        settlement.error,
        codec.dumps(codec.encode_target_results(targets)) if targets else None,
        at if state is DeliveryState.SENT else None,
        at if state in _SETTLED else None,
        next_at,
        f"{FAILING}{failing.boot}" if failing is not None else None,
        failing.seconds if failing is not None else None,
        settlement.held_by,
        schema.to_db(settlement.next_attempt_at)
        if settlement.held_by is not None and settlement.next_attempt_at is not None
        else None,
        settlement.silence_id if state is DeliveryState.SILENCED else None,
        settlement.outbox_id,
    )
    if token is None:
        return _SETTLE, params
    return f"{_SETTLE} AND claim_token = ?", (*params, token)


def prune_rows(conn: sqlite3.Connection, cutoff: str, keep_per_kb: int) -> int:
    """Delete settled outbox rows, unreferenced events and old done jobs; returns the count."""
    deleted = conn.execute(_PRUNE_OUTBOX, (cutoff,)).rowcount
    deleted += conn.execute(_PRUNE_EVENTS, (cutoff,)).rowcount
    deleted += conn.execute(_PRUNE_JOBS, (cutoff, keep_per_kb)).rowcount
    deleted += conn.execute(incident_rows.PRUNE, (cutoff,)).rowcount
    return int(deleted)

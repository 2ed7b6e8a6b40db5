"""The read side of the store for the page and the JSON API: knowledge bases and their jobs.

Each `read_*` function runs in one read transaction (its counts and rows agree) and returns the
frozen values of `watcher.core.records`. History for charts is read without decoding whole
jobs: the few fields a chart needs come out of the stored JSON with `json_extract`, so a
knowledge base's whole retention (thousands of jobs) costs one indexed query. The statements
are plain SQL (`json_extract` is `->>` on PostgreSQL).

`StoreReads` adds these reads, and those of `watcher.edges.store.deliveries` (events, the
outbox), to the SQLite store as methods (`watcher.edges.store.sqlite`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from watcher.core.browse import clamp_limit, decode_cursor, encode_cursor, job_state_word
from watcher.core.model import Job, Phase, Status
from watcher.core.outbox import DeliveryState
from watcher.core.records import (
    DeliveryRecord,
    EventRecord,
    JobMark,
    JobPoint,
    JobRecord,
    KbRecord,
    OutboxCounts,
    Page,
)
from watcher.core.state import JobState, StallReason
from watcher.edges.store import schema
from watcher.edges.store.conn import StoreConnection
from watcher.edges.store.deliveries import (
    EVENT_COLUMNS,
    events_of,
    read,
    read_deliveries,
    read_events,
    read_outbox_counts,
)
from watcher.edges.store.incidents import open_incidents
from watcher.edges.store.rows import JobCache, job_state_from_row

T = TypeVar("T")
RECENT: Final = 20
"""Jobs per knowledge base read for its sparkline."""

_STATE_COLUMNS: Final = (
    "j.uuid, j.kb_uuid, j.observation, j.first_seen_at, j.progress_at, j.deadline, j.stalled,"
    " j.stall_count, j.started_alerted, j.done, j.sighting"
)
_NEWEST: Final = "COALESCE(j.created_at, j.first_seen_at) DESC, j.uuid DESC"
_KBS: Final = f"""
    SELECT k.uuid, k.name, k.first_seen_at, {_STATE_COLUMNS}
    FROM knowledge_bases k
    LEFT JOIN jobs j ON j.uuid = COALESCE(
        (SELECT uuid FROM jobs WHERE uuid = k.last_job_uuid),
        (SELECT x.uuid FROM jobs x WHERE x.kb_uuid = k.uuid
            ORDER BY COALESCE(x.created_at, x.first_seen_at) DESC, x.uuid DESC LIMIT 1))"""
_POINT_COLUMNS: Final = """
    j.uuid, j.kb_uuid, j.phase, j.status, j.created_at, j.first_seen_at, j.progress_at,
    j.stalled, j.done,
    json_extract(j.observation, '$.created_at'), json_extract(j.observation, '$.started_at'),
    json_extract(j.observation, '$.finished_at'), json_extract(j.observation, '$.total_tokens'),
    json_extract(j.observation, '$.tokens')"""
# A sparkline needs each job's state word only: read from the columns and the index, never
# from the stored JSON. Ordered by `created_at` alone so that the (kb_uuid, created_at) index
# serves it (a job without `created_at`, which the API always sends, sorts as the oldest).
_RECENT: Final = """
    SELECT uuid, phase, status, stalled, done FROM jobs INDEXED BY jobs_kb_created
    WHERE kb_uuid = ? ORDER BY created_at DESC, uuid DESC LIMIT ?"""


def _time(text: Any) -> datetime | None:
    """A stored time (the store's fixed-width text, or a job's ISO-8601), None if unreadable."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _phase(text: str | None) -> dict[str, Any]:
    """`Job` arguments for the stored phase text (an unknown one kept raw)."""
    if text is None:
        return {}
    try:
        return {"phase": Phase(text)}
    except ValueError:
        return {"phase": Phase.UNKNOWN, "phase_raw": text}


def _status(text: str | None) -> dict[str, Any]:
    """`Job` arguments for the stored status text (an unknown one kept raw)."""
    if text is None:
        return {}
    try:
        return {"status": Status(text)}
    except ValueError:
        return {"status": Status.UNKNOWN, "status_raw": text}


def _point(row: Sequence[Any]) -> JobPoint:
    """A chart point from a `_POINT_COLUMNS` row (no whole job decoded)."""
    job = Job(
        uuid=row[0],
        **_phase(row[2]),
        **_status(row[3]),
        created_at=_time(row[9]),
        started_at=_time(row[10]),
        finished_at=_time(row[11]),
        total_tokens=_int(row[12]),
        tokens=_int(row[13]),
    )
    state = JobState(
        job=job,
        kb_uuid=row[1],
        first_seen_at=schema.from_db(row[5]),
        progress_at=schema.from_db(row[6]),
        stalled=StallReason(row[7]) if row[7] else None,
        done=bool(row[8]),
    )
    return JobPoint.of(state)


def read_kbs(
    conn: sqlite3.Connection,
    path: Path,
    *,
    uuids: Collection[str] | None = None,
    recent: int,
    cache: JobCache | None = None,
) -> list[KbRecord]:
    """Every knowledge base (or those of `uuids`) with its latest job and `recent` last jobs.

    `cache` is the store's decoded-job cache: the latest jobs are those each cycle loads.
    """

    def work() -> list[KbRecord]:
        where, params = "", tuple[str, ...]()
        if uuids is not None:
            where = f" WHERE k.uuid IN ({', '.join('?' * len(uuids))})"
            params = tuple(uuids)
        rows = conn.execute(_KBS + where, params).fetchall()
        words: dict[tuple[Any, ...], str] = {}

        def marks(kb_uuid: str) -> tuple[JobMark, ...]:
            if recent <= 0:
                return ()
            return tuple(_mark(r, words) for r in conn.execute(_RECENT, (kb_uuid, recent)))

        decode = cache.decode if cache is not None else job_state_from_row
        opened = {i.kb_uuid: i for i in open_incidents(conn, path)}
        return [
            replace(_kb(row, decode, path, marks(row[0])), incident=opened.get(row[0]))
            for row in rows
        ]

    return read(conn, work)


def _mark(row: Sequence[Any], words: dict[tuple[Any, ...], str]) -> JobMark:
    """A sparkline mark from `uuid, phase, status, stalled, done` (few distinct states: each
    is judged once per read)."""
    key = tuple(row[1:])
    word = words.get(key)
    if word is None:
        job = Job(uuid=row[0], **_phase(row[1]), **_status(row[2]))
        stalled = StallReason(row[3]) if row[3] else None
        word = words[key] = job_state_word(job, stalled, bool(row[4]))
    return JobMark(row[0], word)


def _kb(
    row: Sequence[Any],
    decode: Callable[[tuple[Any, ...], Path], JobState],
    path: Path,
    recent: tuple[JobMark, ...],
) -> KbRecord:
    latest = None if row[3] is None else decode(tuple(row[3:]), path)
    return KbRecord(
        uuid=row[0],
        name=row[1],
        first_seen_at=schema.from_db(row[2]),
        latest=latest,
        recent=recent,
    )


def read_points(conn: sqlite3.Connection, kb_uuid: str) -> list[JobPoint]:
    """Every job of a knowledge base the store keeps (the whole retention), oldest first."""
    sql = f"""SELECT {_POINT_COLUMNS} FROM jobs j WHERE j.kb_uuid = ?
        ORDER BY COALESCE(j.created_at, j.first_seen_at), j.uuid"""
    return read(conn, lambda: [_point(row) for row in conn.execute(sql, (kb_uuid,))])


def read_jobs(
    conn: sqlite3.Connection, path: Path, kb_uuid: str, *, limit: int, after: str | None
) -> Page[JobState]:
    """A knowledge base's jobs, newest first, `limit` after cursor `after` (ValueError if bad)."""
    limit = clamp_limit(limit)
    where, params = "j.kb_uuid = ?", [kb_uuid]
    if after is not None:
        when, uuid = decode_cursor(after, "jobs")
        where += " AND (COALESCE(j.created_at, j.first_seen_at), j.uuid) < (?, ?)"
        params += [when, uuid]
    sql = f"""SELECT {_STATE_COLUMNS}, COALESCE(j.created_at, j.first_seen_at) FROM jobs j
        WHERE {where} ORDER BY {_NEWEST} LIMIT ?"""

    def work() -> Page[JobState]:
        rows = conn.execute(sql, (*params, limit + 1)).fetchall()
        states = tuple(job_state_from_row(tuple(row[:11]), path) for row in rows[:limit])
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        cursor = encode_cursor("jobs", [last[11], last[0]]) if last is not None else None
        return Page(states, cursor)

    return read(conn, work)


def read_job(conn: sqlite3.Connection, path: Path, job_uuid: str) -> JobRecord | None:
    """One job, its knowledge base's name, and its events with their deliveries."""
    sql = f"""SELECT {_STATE_COLUMNS}, k.name FROM jobs j
        LEFT JOIN knowledge_bases k ON k.uuid = j.kb_uuid WHERE j.uuid = ?"""
    events = f"SELECT {EVENT_COLUMNS} FROM events e WHERE e.job_uuid = ? ORDER BY e.id"

    def work() -> JobRecord | None:
        row = conn.execute(sql, (job_uuid,)).fetchone()
        if row is None:
            return None
        found = events_of(conn, conn.execute(events, (job_uuid,)).fetchall())
        return JobRecord(job_state_from_row(tuple(row[:11]), path), row[11], found)

    return read(conn, work)


class StoreReads(StoreConnection):
    """The page's reads, as methods of the store (each on the store's thread, one read
    transaction); every method raises `StoreError` when the store cannot be read."""

    def _job_cache(self) -> JobCache | None:
        """The store's decoded-job cache, when it keeps one (`SqliteStore` does)."""
        cache = getattr(self, "_jobs", None)
        return cache if isinstance(cache, JobCache) else None

    async def knowledge_bases(
        self, uuids: Collection[str] | None = None, *, recent: int = RECENT
    ) -> list[KbRecord]:
        """Every knowledge base (or those of `uuids`), its latest job and last `recent` jobs."""
        wanted = None if uuids is None else sorted(set(uuids))
        return await self._run(
            "reading knowledge bases",
            lambda conn: read_kbs(
                conn, self.path, uuids=wanted, recent=recent, cache=self._job_cache()
            ),
        )

    async def job_points(self, kb_uuid: str) -> list[JobPoint]:
        """Every kept job of a knowledge base, oldest first, as chart points."""
        return await self._run("reading job history", lambda conn: read_points(conn, kb_uuid))

    async def jobs(self, kb_uuid: str, *, limit: int, after: str | None) -> Page[JobState]:
        """A page of a knowledge base's jobs, newest first (`ValueError` for a bad cursor)."""
        return await self._run(
            "reading jobs",
            lambda conn: read_jobs(conn, self.path, kb_uuid, limit=limit, after=after),
        )

    async def job(self, job_uuid: str) -> JobRecord | None:
        """One job with its events and their deliveries; None when the store has no such job."""
        return await self._run("reading a job", lambda conn: read_job(conn, self.path, job_uuid))

    async def events(
        self, *, kb_uuid: str | None = None, limit: int, after: str | None
    ) -> Page[EventRecord]:
        """A page of events, newest first, each with its deliveries."""
        return await self._run(
            "reading events",
            lambda conn: read_events(conn, kb_uuid=kb_uuid, limit=limit, after=after),
        )

    async def deliveries(
        self,
        states: Collection[DeliveryState],
        *,
        route: str | None = None,
        limit: int,
        after: str | None,
    ) -> Page[DeliveryRecord]:
        """A page of outbox rows in `states`, newest first."""
        return await self._run(
            "reading deliveries",
            lambda conn: read_deliveries(
                conn, states=states, route=route, limit=limit, after=after
            ),
        )

    async def outbox_counts(self) -> OutboxCounts:
        """Outbox rows by state and route, and the oldest undelivered."""
        return await self._run("counting deliveries", read_outbox_counts)

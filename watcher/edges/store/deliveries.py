"""The read side of the store for the page: events, their deliveries, and the outbox.

Each `read_*` function runs in one read transaction and returns `watcher.core.records` values;
`watcher.edges.store.browse` makes them methods of the store. Plain SQL, PostgreSQL's too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final, TypeVar

from watcher.core.browse import clamp_limit, decode_cursor, encode_cursor
from watcher.core.outbox import DeliveryState
from watcher.core.records import DeliveryRecord, EventRecord, OutboxCounts, Page
from watcher.edges.store import codec, schema

T = TypeVar("T")
_DELIVERY_COLUMNS: Final = """
    o.id, o.route, o.state, o.event_id, e.kind, e.kb_uuid, k.name, e.job_uuid, o.attempts,
    o.last_error, o.created_at, o.next_attempt_at, o.sent_at, o.settled_at, o.targets"""
_DELIVERIES: Final = f"""
    SELECT {_DELIVERY_COLUMNS}
    FROM outbox o JOIN events e ON e.event_id = o.event_id
    LEFT JOIN knowledge_bases k ON k.uuid = e.kb_uuid"""
EVENT_COLUMNS: Final = "e.id, e.event_id, e.kind, e.at, e.kb_uuid, e.job_uuid, e.payload"


def read(conn: sqlite3.Connection, work: Callable[[], T]) -> T:
    """`work()` in one read transaction."""
    conn.execute("BEGIN")
    try:
        return work()
    finally:
        conn.execute("COMMIT")


def read_events(
    conn: sqlite3.Connection, *, kb_uuid: str | None, limit: int, after: str | None
) -> Page[EventRecord]:
    """Events (of one knowledge base, or all), newest first, each with its deliveries."""
    limit = clamp_limit(limit)
    clauses: list[str] = []
    params: list[Any] = []
    if kb_uuid is not None:
        clauses.append("e.kb_uuid = ?")
        params.append(kb_uuid)
    if after is not None:
        clauses.append("e.id < ?")
        params.append(int(decode_cursor(after, "events")[0]))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {EVENT_COLUMNS} FROM events e {where} ORDER BY e.id DESC LIMIT ?"

    def work() -> Page[EventRecord]:
        rows = conn.execute(sql, (*params, limit + 1)).fetchall()
        found = events_of(conn, rows[:limit])
        more = len(rows) > limit
        return Page(found, encode_cursor("events", [rows[limit - 1][0]]) if more else None)

    return read(conn, work)


def events_of(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> tuple[EventRecord, ...]:
    """Event rows with their deliveries (one query for all of them)."""
    ids = [row[1] for row in rows]
    by_event: dict[str, list[DeliveryRecord]] = {}
    if ids:
        marks = ", ".join("?" * len(ids))
        sql = f"{_DELIVERIES} WHERE o.event_id IN ({marks}) ORDER BY o.route, o.id"
        for delivery in conn.execute(sql, ids):
            by_event.setdefault(delivery[3], []).append(_delivery(delivery))
    return tuple(_event(row, tuple(by_event.get(row[1], ()))) for row in rows)


def _event(row: Sequence[Any], deliveries: tuple[DeliveryRecord, ...]) -> EventRecord:
    detail, reason = None, None
    try:
        transition = codec.decode_transition(codec.loads(row[6]))
        detail, reason = transition.detail, transition.stall_reason
    except (ValueError, TypeError):
        pass  # an undecodable payload still shows as an event of its kind
    return EventRecord(
        event_id=row[1],
        kind=row[2],
        at=schema.from_db(row[3]),
        kb_uuid=row[4],
        job_uuid=row[5],
        detail=detail,
        stall_reason=reason,
        deliveries=deliveries,
    )


def _delivery(row: Sequence[Any]) -> DeliveryRecord:
    try:
        targets = codec.decode_target_results(codec.loads(row[14])) if row[14] else ()
    except (ValueError, TypeError):
        targets = ()
    return DeliveryRecord(
        id=int(row[0]),
        route=row[1],
        state=DeliveryState(row[2]),
        event_id=row[3],
        kind=row[4],
        kb_uuid=row[5],
        kb_name=row[6],
        job_uuid=row[7],
        attempts=int(row[8]),
        last_error=row[9],
        created_at=schema.from_db(row[10]),
        next_attempt_at=schema.from_db_or_none(row[11]),
        sent_at=schema.from_db_or_none(row[12]),
        settled_at=schema.from_db_or_none(row[13]),
        targets=targets,
    )


def read_deliveries(
    conn: sqlite3.Connection,
    *,
    states: Collection[DeliveryState],
    route: str | None,
    limit: int,
    after: str | None,
) -> Page[DeliveryRecord]:
    """Outbox rows in `states` (of one route, or all), newest first, `limit` after `after`."""
    limit = clamp_limit(limit)
    clauses = [f"o.state IN ({', '.join('?' * len(states))})"]
    params: list[Any] = [s.value for s in states]
    if route is not None:
        clauses.append("o.route = ?")
        params.append(route)
    if after is not None:
        clauses.append("o.id < ?")
        params.append(int(decode_cursor(after, "deliveries")[0]))
    sql = f"{_DELIVERIES} WHERE {' AND '.join(clauses)} ORDER BY o.id DESC LIMIT ?"

    def work() -> Page[DeliveryRecord]:
        rows = conn.execute(sql, (*params, limit + 1)).fetchall()
        found = tuple(_delivery(row) for row in rows[:limit])
        more = len(rows) > limit
        return Page(found, encode_cursor("deliveries", [found[-1].id]) if more else None)

    return read(conn, work)


def read_outbox_counts(conn: sqlite3.Connection) -> OutboxCounts:
    """Outbox rows by state and by route, and the oldest one still undelivered."""
    sql = "SELECT route, state, COUNT(*) FROM outbox GROUP BY route, state ORDER BY route"
    oldest = "SELECT MIN(created_at) FROM outbox WHERE state IN ('pending', 'sending')"

    def work() -> OutboxCounts:
        by_state = dict.fromkeys(DeliveryState, 0)
        by_route: dict[str, dict[DeliveryState, int]] = {}
        for route, state, count in conn.execute(sql):
            kind = DeliveryState(state)
            by_state[kind] += int(count)
            by_route.setdefault(route, dict.fromkeys(DeliveryState, 0))[kind] = int(count)
        first = conn.execute(oldest).fetchone()[0]
        return OutboxCounts(by_state, by_route, schema.from_db_or_none(first))

    return read(conn, work)

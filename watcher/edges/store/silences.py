"""The SQL of silences (`watcher.core.silences`): adding, listing, expiring, and their ends.

Each function runs inside a transaction opened by `watcher.edges.store.sqlite` and never
commits. Portable SQL only (conditional `UPDATE`, `IN`, `GROUP BY`): the same statements
serve a PostgreSQL adapter. Times are the store's fixed-width UTC text (`schema.to_db`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from watcher.core.incident import Incident
from watcher.core.model import EventKind
from watcher.core.silences import HeldRow, Silence, held_rows, unclosed_openers
from watcher.core.state import Change, Transition
from watcher.edges.store import codec, schema
from watcher.edges.store.incidents import open_incidents
from watcher.edges.store.rows import render_change, write_change

_COLUMNS: Final = """
    s.id, s.kb_uuid, s.event, s.starts_at, s.ends_at, s.created_by, s.comment, s.kb_label,
    s.expired_by_hand, s.announced_at,
    (SELECT COUNT(*) FROM outbox o WHERE o.silence_id = s.id AND o.state = 'silenced')"""
_INSERT: Final = """
    INSERT INTO silences (id, kb_uuid, kb_label, event, created_by, comment, starts_at, ends_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
# Active, or ended and not announced yet: what a cycle needs (a handful of rows).
_CURRENT: Final = f"""
    SELECT {_COLUMNS} FROM silences s
    WHERE s.ends_at > ? OR s.announced_at IS NULL ORDER BY s.ends_at, s.id"""
_ALL: Final = f"SELECT {_COLUMNS} FROM silences s ORDER BY s.starts_at DESC, s.id"
_ACTIVE: Final = f"""
    SELECT {_COLUMNS} FROM silences s WHERE s.ends_at > ? ORDER BY s.ends_at, s.id"""
_EXPIRE: Final = """
    UPDATE silences SET ends_at = ?, expired_by_hand = 1 WHERE id = ? AND ends_at > ?"""
_ANNOUNCE: Final = """
    UPDATE silences SET announced_at = ? WHERE id = ? AND announced_at IS NULL AND ends_at <= ?"""
_HELD: Final = """
    SELECT o.route, e.payload FROM outbox o JOIN events e ON e.event_id = o.event_id
    WHERE o.silence_id = ? AND o.state = 'silenced' ORDER BY o.id"""
# The route's rows of one event kind before a row, newest first (few: openers of a closer).
_OPENERS: Final = """
    SELECT o.state, o.silence_id, e.payload FROM outbox o JOIN events e ON e.event_id = o.event_id
    WHERE o.route = ? AND e.kind = ? AND o.id < ? ORDER BY o.id DESC LIMIT 50"""
_HELD_ROWS: Final = """
    SELECT o.id, o.route, e.payload FROM outbox o JOIN events e ON e.event_id = o.event_id
    WHERE o.silence_id = ? AND o.state = 'silenced' ORDER BY o.id"""
_RELEASE: Final = """
    UPDATE outbox SET state = 'pending', silence_id = NULL, next_attempt_at = ?, last_error = NULL
    WHERE id = ? AND state = 'silenced'"""
_KNOWN_KBS: Final = "SELECT uuid, name FROM knowledge_bases ORDER BY COALESCE(name, uuid), uuid"


def _silence(row: Sequence[Any]) -> Silence:
    return Silence(
        id=row[0],
        kb_uuid=row[1],
        event=EventKind(row[2]) if row[2] is not None else None,
        starts_at=schema.from_db(row[3]),
        ends_at=schema.from_db(row[4]),
        created_by=row[5],
        comment=row[6],
        kb_label=row[7],
        expired_by_hand=bool(row[8]),
        announced_at=schema.from_db_or_none(row[9]),
        held=int(row[10]),
    )


def insert(conn: sqlite3.Connection, silence: Silence) -> None:
    """Store a new silence."""
    conn.execute(
        _INSERT,
        (
            silence.id,
            silence.kb_uuid,
            silence.kb_label,
            silence.event.value if silence.event is not None else None,
            silence.created_by,
            silence.comment,
            schema.to_db(silence.starts_at),
            schema.to_db(silence.ends_at),
        ),
    )


def current(conn: sqlite3.Connection, now: datetime) -> list[Silence]:
    """The silences active at `now` and those that ended without being announced yet."""
    return [_silence(row) for row in conn.execute(_CURRENT, (schema.to_db(now),))]


def listed(conn: sqlite3.Connection, now: datetime, *, every: bool) -> list[Silence]:
    """The active silences (soonest end first), or `every` one stored (newest first)."""
    if every:
        return [_silence(row) for row in conn.execute(_ALL)]
    return [_silence(row) for row in conn.execute(_ACTIVE, (schema.to_db(now),))]


def expire(conn: sqlite3.Connection, silence_id: str, now: datetime) -> bool:
    """End an active silence at `now`; False when no active silence has that id."""
    at = schema.to_db(now)
    return bool(conn.execute(_EXPIRE, (at, silence_id, at)).rowcount)


def known_kbs(conn: sqlite3.Connection) -> list[tuple[str, str | None]]:
    """(uuid, name) of every knowledge base the store knows."""
    return [(str(row[0]), row[1]) for row in conn.execute(_KNOWN_KBS)]


def held(conn: sqlite3.Connection, silence_id: str) -> list[HeldRow]:
    """What the silence held: per row, its route and the KBs it hid."""
    found: list[HeldRow] = []
    for route, payload in conn.execute(_HELD, (silence_id,)):
        try:
            transition = codec.decode_transition(codec.loads(payload))
        except (ValueError, TypeError):
            continue  # an unreadable event names no KB to announce
        found += held_rows(str(route), transition)
    return found


def openers(
    conn: sqlite3.Connection, route: str, kind: EventKind, before: int
) -> list[tuple[Transition, str | None]]:
    """The route's events of `kind` whose rows precede outbox row `before`, newest first, each
    with the silence that held its row (None when it was not held)."""
    found: list[tuple[Transition, str | None]] = []
    for state, silence_id, payload in conn.execute(_OPENERS, (route, kind.value, before)):
        try:
            transition = codec.decode_transition(codec.loads(payload))
        except (ValueError, TypeError):
            continue  # an unreadable event is about nothing to compare
        found.append((transition, silence_id if state == "silenced" else None))
    return found


def announce(
    conn: sqlite3.Connection,
    path: Path,
    silence_id: str,
    now: datetime,
    build: Callable[[list[HeldRow], Mapping[str, Incident]], Change],
) -> Change | None:
    """Mark the silence announced and, in the same transaction, read what it held and the
    open incidents (by KB uuid), `build` the announcement from them and write its events and
    outbox rows, once: None (nothing written) when it was announced already (by another
    process). Unclosed outages it held are released (`unclosed_openers`)."""
    at = schema.to_db(now)
    if not conn.execute(_ANNOUNCE, (at, silence_id, at)).rowcount:
        return None
    incidents = {i.kb_uuid: i for i in open_incidents(conn, path)}
    change = build(held(conn, silence_id), incidents)
    write_change(conn, render_change(change, {}))
    rows: list[tuple[int, str, Transition]] = []
    for row_id, route, payload in conn.execute(_HELD_ROWS, (silence_id,)).fetchall():
        try:
            rows.append((int(row_id), str(route), codec.decode_transition(codec.loads(payload))))
        except (ValueError, TypeError):
            continue
    for row_id in unclosed_openers(rows):  # still open: sent now, as the silence ends
        conn.execute(_RELEASE, (at, row_id))
    return change

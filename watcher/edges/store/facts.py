"""The extra reads' last results (`kb_facts`), read and written in portable SQL.

One row per (subject, kind): the JSON value, when it was read (an elapsed-clock reading as
`[seconds, boot]` JSON), the trigger's marker and the unhealthy-spell count. Written with
`INSERT ... ON CONFLICT (subject, kind) DO UPDATE`, which SQLite and PostgreSQL both speak.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from watcher.core.clocks import Elapsed
from watcher.core.facts import StoredFact
from watcher.edges.store import schema

_SELECT = "SELECT subject, kind, value, read_at, marker, episode FROM kb_facts"
_UPSERT = (
    "INSERT INTO kb_facts (subject, kind, value, read_at, marker, episode, updated)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (subject, kind) DO UPDATE SET value = excluded.value,"
    " read_at = excluded.read_at, marker = excluded.marker, episode = excluded.episode,"
    " updated = excluded.updated"
)


def load_facts(conn: sqlite3.Connection) -> list[StoredFact]:
    """Every stored fact (a damaged `read_at` reads as never)."""
    return [
        StoredFact(
            subject=str(row[0]),
            kind=str(row[1]),
            value=str(row[2]),
            read_at=_elapsed(row[3]),
            marker=None if row[4] is None else str(row[4]),
            episode=int(row[5] or 0),
        )
        for row in conn.execute(_SELECT)
    ]


def save_facts(conn: sqlite3.Connection, facts: Sequence[StoredFact], at: datetime) -> None:
    """Insert or replace each fact (by subject and kind); `at` is the wall clock, for people."""
    updated = schema.to_db(at)
    for f in facts:
        read_at = None if f.read_at is None else json.dumps(f.read_at.encode())
        conn.execute(_UPSERT, (f.subject, f.kind, f.value, read_at, f.marker, f.episode, updated))


def _elapsed(raw: object) -> Elapsed | None:
    if not isinstance(raw, str):
        return None
    try:
        return Elapsed.decode(json.loads(raw))
    except ValueError:
        return None

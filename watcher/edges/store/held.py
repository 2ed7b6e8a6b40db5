"""Rows held by quiet hours whose hold the configuration no longer backs (`watcher.core.quiet`).

A held row waits (`next_attempt_at` = `held_until`) for the end of the quiet that held it, as
the configuration said then. When the window is removed or shortened, the route's
`mute_during` changes, the route goes, or the wall clock steps back, that end no longer holds:
the row is due at its route's current quiet's end, or now. Plain SQL, PostgreSQL's too.

`next_delivery`: when the outbox next has work for the dispatcher (a row's retry or release
time, a claim out), for the quiet cycles of `watcher.core.nextdue`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from watcher.edges.store import schema


def release_held_rows(conn: sqlite3.Connection, ends: Mapping[str, datetime], now: datetime) -> int:
    """Bring forward every row still waiting for its hold's end to its route's bound (`ends`
    for a route in its quiet now, else `now`); returns how many. A held row that was released
    and now waits for a retry (its `next_attempt_at` differs from `held_until`) is not touched."""
    params: list[str] = []
    bound = "?"
    if ends:
        bound = "CASE route " + " ".join("WHEN ? THEN ?" for _ in ends) + " ELSE ? END"
        for route, end in ends.items():
            params += [route, schema.to_db(end)]
    params.append(schema.to_db(now))
    sql = (
        f"UPDATE outbox SET next_attempt_at = {bound}, held_until = {bound}"
        " WHERE state = 'pending' AND held_by IS NOT NULL AND next_attempt_at = held_until"
        f" AND next_attempt_at > {bound}"
    )
    return int(conn.execute(sql, params * 3).rowcount)


_WAITING: Final = """
    SELECT MIN(next_attempt_at), COUNT(*) FILTER (WHERE state = 'sending')
    FROM outbox INDEXED BY outbox_due WHERE state IN ('pending', 'sending')"""


def next_delivery(conn: sqlite3.Connection) -> datetime | None:
    """The earliest `next_attempt_at` of the rows waiting (`datetime.min`, UTC, while a row is
    claimed: its claim may expire any time on the lease clock); None when none waits."""
    first, sending = conn.execute(_WAITING).fetchone()
    if sending:
        return datetime.min.replace(tzinfo=UTC)
    return None if first is None else schema.from_db(first)

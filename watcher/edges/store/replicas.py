"""Replica records and claim hand-back of a shared store, in SQL (run inside `_run`).

A replica's record is a `meta` row keyed `replica:<holder id>` holding JSON (no table of its
own: the schema stays SQLite's). `note_replica` writes it after each lease step and deletes
the records of replicas gone for good; `read_replicas` reads them all back.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from typing import Final

from watcher.core.lease import Holder
from watcher.core.replicas import STALE_AFTER, Replica
from watcher.edges.store import lease as store_lease

PREFIX: Final = "replica:"
_FORGET_AFTER: Final = 10 * STALE_AFTER  # lease periods: then the record is deleted
_UPSERT: Final = """
    INSERT INTO meta (key, value) VALUES (?, ?)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value"""
_RETURN: Final = """
    UPDATE outbox SET state = 'pending', claimed_at = NULL, claim_token = NULL,
        claim_epoch = NULL, claim_clock = NULL, claim_expires = NULL,
        last_error = 'claim returned: the replica that claimed it stopped'
    WHERE state = 'sending' AND claim_token = ?"""


def read_replicas(conn: sqlite3.Connection) -> list[Replica]:
    """Every replica record (unreadable ones are skipped)."""
    rows = conn.execute("SELECT key, value FROM meta WHERE key LIKE ?", (PREFIX + "%",))
    found = []
    for key, value in rows:
        try:
            data = json.loads(value)
            holder = store_lease.holder_of(str(key).removeprefix(PREFIX), data["holder"])
            epoch = data.get("epoch")
            found.append(
                Replica(
                    holder,
                    str(data["lease"]),
                    None if epoch is None else int(epoch),
                    float(data["seen"]),
                    float(data["duration"]),
                )
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return found


def note_replica(
    conn: sqlite3.Connection,
    holder: Holder,
    lease: str,
    epoch: int | None,
    seen: float,
    duration: float,
) -> None:
    """Write `holder`'s record (inside a transaction) and delete long-gone replicas'."""
    document = {
        "holder": store_lease.holder_json(holder),
        "lease": lease,
        "epoch": epoch,
        "seen": seen,
        "duration": duration,
    }
    conn.execute(_UPSERT, (PREFIX + holder.id, json.dumps(document, sort_keys=True)))
    for other in read_replicas(conn):
        if seen - other.seen > _FORGET_AFTER * other.duration:
            conn.execute("DELETE FROM meta WHERE key = ?", (PREFIX + other.holder.id,))


def forget_replica(conn: sqlite3.Connection, holder: Holder) -> None:
    """Delete `holder`'s record (a graceful stop)."""
    conn.execute("DELETE FROM meta WHERE key = ?", (PREFIX + holder.id,))


def return_claims(conn: sqlite3.Connection, tokens: Collection[str]) -> int:
    """Put the rows still claimed under `tokens` back in the queue; how many went back."""
    return sum(int(conn.execute(_RETURN, (token,)).rowcount) for token in set(tokens))

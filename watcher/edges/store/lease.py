"""The store's lease row in SQL: read it, apply a `watcher.core.lease.decide` decision,
fence writes.

Every function runs inside a transaction opened by `watcher.edges.store.sqlite`. The SQL is
the portable kind (a keyed row, `ON CONFLICT`, conditional `UPDATE`): a PostgreSQL store keeps
the same table, keyed by a fingerprint of the DigitalOcean token instead of `STORE_LEASE`,
with `expires` on the database server's clock.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from watcher.core.errors import StoreHeld
from watcher.core.lease import Holder, Lease, LeaseAction, LeaseDecision

STORE_LEASE: Final = "store"
"""The name of the SQLite store's one lease: one poller per store."""


def token_lease(token: str | None) -> str:
    """The lease row of a DigitalOcean token: a fingerprint, never the token itself (also
    the key of what the token's extra reads spent, `watcher.service.budget.spent_key`)."""
    if not token:
        return STORE_LEASE
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]


_READ: Final = "SELECT holder, epoch, clock, expires, duration, info FROM lease WHERE name = ?"
_WRITE: Final = """
    INSERT INTO lease (name, holder, epoch, clock, expires, duration, info)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch,
        clock = excluded.clock, expires = excluded.expires, duration = excluded.duration,
        info = excluded.info"""
_RELEASE: Final = """
    UPDATE lease SET holder = NULL, expires = ? WHERE name = ? AND epoch = ? AND holder = ?"""
_RETURN_ORPHANS: Final = """
    UPDATE outbox SET state = 'pending', claimed_at = NULL, claim_token = NULL,
        claim_epoch = NULL, claim_clock = NULL, claim_expires = NULL,
        last_error = 'claim returned: the process that claimed it is gone'
    WHERE state = 'sending' AND claim_epoch < ?"""


@dataclass(frozen=True, slots=True)
class LeaseOutcome:
    """A lease step: the decision applied, and how many earlier claims went back to the queue."""

    decision: LeaseDecision
    returned: int = 0


def holder_json(holder: Holder) -> dict[str, Any]:
    """A holder's details as a JSON object (never a secret: command, host, pid, start)."""
    return {
        "command": holder.command,
        "host": holder.host,
        "pid": holder.pid,
        "since": holder.since,
        "boot": holder.boot,
        "pid_ns": holder.pid_ns,
        "start": holder.start,
    }


def _holder_json(holder: Holder) -> str:
    return json.dumps(holder_json(holder), sort_keys=True)


def _holder(holder_id: str | None, info: str | None) -> Holder | None:
    """The holder of a row; unreadable details degrade to "unknown" (never a crash)."""
    if holder_id is None:
        return None
    try:
        data: dict[str, Any] = json.loads(info or "{}")
    except ValueError:
        data = {}
    return holder_of(holder_id, data)


def holder_of(holder_id: str, data: Any) -> Holder:
    """A holder from `holder_json`'s object; unreadable details degrade to "unknown"."""
    try:
        return Holder(
            id=holder_id,
            command=str(data.get("command", "a watcher")),
            host=str(data.get("host", "an unknown host")),
            pid=int(data.get("pid", 0)),
            since=str(data.get("since", "an unknown time")),
            boot=str(data.get("boot", "")),
            pid_ns=str(data.get("pid_ns", "")),
            start=int(data.get("start", 0)),
        )
    except (ValueError, TypeError, AttributeError):
        return Holder(holder_id, "a watcher", "an unknown host", 0, "an unknown time")


def read_lease(
    conn: sqlite3.Connection, name: str = STORE_LEASE, *, lock: bool = False
) -> Lease | None:
    """The lease row, or None when the store was never held. `lock` (inside a write): the
    row is locked until the transaction ends (PostgreSQL `FOR SHARE`; SQLite's write lock
    already covers it), so a takeover waits for this write and the next write sees it."""
    row = conn.execute(_READ + (" /*pg: FOR SHARE*/" if lock else ""), (name,)).fetchone()
    if row is None:
        return None
    return Lease(_holder(row[0], row[5]), int(row[1]), str(row[2]), float(row[3]), float(row[4]))


def apply(
    conn: sqlite3.Connection,
    decision: LeaseDecision,
    clock: str,
    duration: float,
    name: str = STORE_LEASE,
) -> int:
    """Write an ACQUIRE or RENEW decision; on ACQUIRE, return earlier holders' claims.

    Returns how many outbox claims went back to the queue. STAND_BY writes nothing.
    """
    if decision.action is LeaseAction.STAND_BY or decision.holder is None:
        return 0
    holder = decision.holder
    values = (name, holder.id, decision.epoch, clock, decision.expires, duration)
    conn.execute(_WRITE, (*values, _holder_json(holder)))
    if decision.action is LeaseAction.RENEW:
        return 0
    return int(conn.execute(_RETURN_ORPHANS, (decision.epoch,)).rowcount)


def release(
    conn: sqlite3.Connection, holder: Holder, epoch: int, now: float, name: str = STORE_LEASE
) -> bool:
    """Let the lease go if `holder` still holds `epoch`; whether it did."""
    return bool(conn.execute(_RELEASE, (now, name, epoch, holder.id)).rowcount)


def fence(
    conn: sqlite3.Connection, path: Path, holder: Holder, epoch: int, name: str = STORE_LEASE
) -> None:
    """Raise `StoreHeld` unless `holder` still holds `epoch` (inside the write's transaction)."""
    lease = read_lease(conn, name, lock=True)
    mine = lease is not None and lease.holder is not None and lease.holder.id == holder.id
    if mine and lease is not None and lease.epoch == epoch:
        return
    if lease is None:
        raise StoreHeld(held_message(path, None, 0, lost=True))
    raise StoreHeld(held_message(path, lease.holder, lease.epoch, lost=True))


def held_message(path: Path, holder: Holder | None, epoch: int, *, lost: bool = False) -> str:
    """Who holds the store, for errors and logs (never a secret: pid, host, command)."""
    if holder is None:
        who = "nobody (the lease was released)"
    else:
        who = f"{holder.describe()}, epoch {epoch}"
    if lost:
        return (
            f"state store {path}: this process no longer holds the store's lease (now held by "
            f"{who}); nothing was written"
        )
    return f"state store {path} is held by {who}"

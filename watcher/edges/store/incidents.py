"""Incident rows: written with each cycle's change, read with the state, acknowledged by `ack`.

Each function runs inside a transaction its caller opened; none commits. Portable SQL only
(`ON CONFLICT`, a partial unique index, conditional `INSERT ... SELECT`), so the statements
serve a PostgreSQL adapter as they are. The daemon's upsert never touches the
acknowledgement columns, which `watcher ack` alone writes: an ack made while a cycle runs is
kept, and the reminders that cycle decided on an older read are not written (`GUARDED_OUTBOX`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from watcher.core.errors import AckRefused
from watcher.core.incident import Ack, Incident
from watcher.core.model import EventKind
from watcher.edges.store import codec, schema

_COLUMNS: Final = (
    "id, kb_uuid, kb_name, opened_at, api_since, failures, last_kind, last_job_uuid, notices,"
    " closed_at, acked_by, acked_at, ack_comment"
)
UPSERT: Final = """
    INSERT INTO incidents (id, kb_uuid, kb_name, opened_at, api_since, failures, last_kind,
        last_job_uuid, notices, closed_at, updated)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET kb_name = excluded.kb_name, failures = excluded.failures,
        last_kind = excluded.last_kind, last_job_uuid = excluded.last_job_uuid,
        notices = excluded.notices, closed_at = excluded.closed_at, updated = excluded.updated"""
# A reminder's or an escalation's row: only while its incident is open and not acknowledged.
GUARDED_OUTBOX: Final = """
    INSERT INTO outbox (event_id, route, state, attempts, created_at, next_attempt_at)
    SELECT ?, ?, 'pending', 0, ?, ?
    WHERE EXISTS (SELECT 1 FROM incidents
        WHERE id = ? AND closed_at IS NULL AND acked_at IS NULL)
    ON CONFLICT (event_id, route) DO NOTHING"""
_OPEN: Final = f"SELECT {_COLUMNS} FROM incidents WHERE closed_at IS NULL ORDER BY opened_at, id"
_ACK: Final = """
    UPDATE incidents SET acked_by = ?, acked_at = ?, ack_comment = ?
    WHERE id = ? AND closed_at IS NULL"""
PRUNE: Final = "DELETE FROM incidents WHERE closed_at IS NOT NULL AND closed_at < ?"


def incident_row(incident: Incident, at: str) -> tuple[Any, ...]:
    """The `UPSERT` parameters of an incident (`at`: the change's time, stored text)."""
    return (
        incident.id,
        incident.kb_uuid,
        incident.kb_name,
        schema.to_db(incident.opened_at),
        schema.to_db_or_none(incident.api_since),
        incident.failures,
        incident.last_kind.value,
        incident.last_job_uuid,
        codec.encode_notices(incident.notices),
        schema.to_db_or_none(incident.closed_at),
        at,
    )


def _incident(row: tuple[Any, ...], path: Path) -> Incident:
    try:
        ack = None
        if row[10] is not None and row[11] is not None:
            ack = Ack(by=row[10], at=schema.from_db(row[11]), comment=row[12])
        return Incident(
            id=row[0],
            kb_uuid=row[1],
            kb_name=row[2],
            opened_at=schema.from_db(row[3]),
            api_since=schema.from_db_or_none(row[4]),
            failures=int(row[5]),
            last_kind=EventKind(row[6]),
            last_job_uuid=row[7],
            notices=codec.decode_notices(row[8]),
            closed_at=schema.from_db_or_none(row[9]),
            ack=ack,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise schema.corrupt(path, f"incident {row[0]} cannot be read: {exc}") from exc


def open_incidents(conn: sqlite3.Connection, path: Path) -> tuple[Incident, ...]:
    """Every open incident, oldest first (call inside a transaction). The small query other
    features build on (a silence ending announces the open incidents it hid)."""
    return tuple(_incident(tuple(row), path) for row in conn.execute(_OPEN))


def acknowledge(conn: sqlite3.Connection, path: Path, ref: str, ack: Ack) -> Incident:
    """Acknowledge the open incident of the KB `ref` names (its uuid or name, or the uuid of
    one of its jobs); returns it acknowledged. `AckRefused` when `ref` names nothing known,
    names several KBs, or its KB has no open incident. A second ack replaces the first."""
    kb_uuid, label = _kb_of(conn, ref)
    found = [i for i in open_incidents(conn, path) if i.kb_uuid == kb_uuid]
    if not found:
        raise AckRefused(f"{label} has no open incident: nothing to acknowledge")
    incident = found[0]
    params = (ack.by, schema.to_db(ack.at), ack.comment, incident.id)
    conn.execute(_ACK, params)
    return replace(incident, ack=ack)


def _kb_of(conn: sqlite3.Connection, ref: str) -> tuple[str, str]:
    """The KB uuid `ref` names, and how to name it in a message."""
    kbs = conn.execute(
        "SELECT uuid, name FROM knowledge_bases WHERE uuid = ? OR name = ?", (ref.lower(), ref)
    ).fetchall()
    if len(kbs) > 1:
        uuids = ", ".join(str(row[0]) for row in kbs)
        raise AckRefused(f"{ref!r} names several knowledge bases ({uuids}): give the uuid")
    if kbs:
        uuid, name = kbs[0]
        return str(uuid), f"knowledge base {name or uuid} ({uuid})"
    job = conn.execute("SELECT kb_uuid FROM jobs WHERE uuid = ?", (ref.lower(),)).fetchone()
    if job is not None:
        return str(job[0]), f"the knowledge base of job {ref.lower()} ({job[0]})"
    raise AckRefused(
        f"{ref!r} is neither a knowledge base (name or uuid) nor a job the watcher knows: "
        "see `watcher status` for the knowledge bases and their latest jobs"
    )

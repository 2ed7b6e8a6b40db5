"""The read side of the store: the SQL behind `watcher.core.snapshot.StoreSnapshot`.

`read_snapshot` runs its queries in one read transaction, so the counts agree with each other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from watcher.core.facts import decode_database, decode_sources
from watcher.core.outbox import DeliveryState
from watcher.core.snapshot import DeadLetter, KbSnapshot, RouteBacklog, StoreSnapshot
from watcher.core.state import JobCondition, JobState, job_condition
from watcher.edges.store import schema
from watcher.edges.store.incidents import open_incidents
from watcher.edges.store.rows import job_state_from_row, open_job_states

_KBS: Final = """
    SELECT k.uuid, k.name, k.first_seen_at, j.uuid, j.kb_uuid, j.observation, j.first_seen_at,
        j.progress_at, j.deadline, j.stalled, j.stall_count, j.started_alerted, j.done,
        j.phase, j.status
    FROM knowledge_bases k
    LEFT JOIN jobs j ON j.uuid = COALESCE(
        (SELECT uuid FROM jobs WHERE uuid = k.last_job_uuid),
        (SELECT uuid FROM jobs WHERE kb_uuid = k.uuid
            ORDER BY COALESCE(created_at, first_seen_at) DESC, uuid DESC LIMIT 1))
    ORDER BY COALESCE(k.name, k.uuid), k.uuid"""
_ROUTES: Final = """
    SELECT route, SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END),
        SUM(CASE WHEN state = 'sending' THEN 1 ELSE 0 END),
        SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END),
        SUM(CASE WHEN state = 'pending' AND held_by IS NOT NULL AND next_attempt_at > ?
            AND next_attempt_at = held_until
            THEN 1 ELSE 0 END),
        MAX(CASE WHEN state = 'pending' AND held_by IS NOT NULL AND next_attempt_at > ?
            AND next_attempt_at = held_until
            THEN held_by END),
        MAX(CASE WHEN state = 'pending' AND held_by IS NOT NULL AND next_attempt_at > ?
            AND next_attempt_at = held_until
            THEN next_attempt_at END)
    FROM outbox WHERE state IN ('pending', 'sending', 'dead')
    GROUP BY route ORDER BY route"""
_DEAD: Final = """
    SELECT o.id, o.route, o.event_id, e.kind, e.kb_uuid, e.job_uuid, o.attempts, o.last_error,
        o.created_at, o.settled_at
    FROM outbox o JOIN events e ON e.event_id = o.event_id
    WHERE o.state = 'dead' ORDER BY o.created_at DESC, o.id DESC LIMIT ?"""
# The finished history (nearly every row) is counted from the (done, updated) index alone:
# scanning the table would read every stored observation. The few open jobs are decoded and
# judged by `job_condition`, the same rule `status` and detection use.
_JOBS_DONE: Final = "SELECT COUNT(*) FROM jobs WHERE done = 1"


def _kb(row: tuple[Any, ...], path: Path) -> KbSnapshot:
    uuid, name, first_seen = row[0], row[1], schema.from_db(row[2])
    if row[3] is None:
        return KbSnapshot(uuid=uuid, name=name, first_seen_at=first_seen)
    state: JobState = job_state_from_row(row[3:13], path)
    job = state.job
    return KbSnapshot(
        uuid=uuid,
        name=name,
        first_seen_at=first_seen,
        job_uuid=job.uuid,
        phase=row[13],
        status=row[14],
        outcome=job.outcome,
        completed_datasources=job.completed_datasources,
        total_datasources=job.total_datasources,
        tokens=job.tokens,
        total_tokens=job.total_tokens,
        items_failed=job.items_failed,
        created_at=job.created_at,
        started_at=job.started_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
        progress_at=state.progress_at,
        deadline=state.deadline,
        stalled=state.stalled,
        done=state.done,
        condition=job_condition(state),
    )


_FACTS: Final = (
    "SELECT subject, kind, value FROM kb_facts WHERE kind IN ('data_sources', 'database')"
)


def _with_facts(conn: sqlite3.Connection, kbs: list[KbSnapshot]) -> tuple[KbSnapshot, ...]:
    """The KBs with their data sources by name and their database status (`kb_facts`)."""
    found: dict[str, dict[str, Any]] = {}
    for subject, kind, value in conn.execute(_FACTS):
        if kind == "data_sources":
            found.setdefault(subject, {})["sources"] = decode_sources(value)
        else:
            status, raw = decode_database(value)
            if status is not None:
                found.setdefault(subject, {})["database"] = raw or status.value
    return tuple(replace(kb, **found.get(kb.uuid, {})) for kb in kbs)


def _dead(row: tuple[Any, ...]) -> DeadLetter:
    return DeadLetter(
        id=int(row[0]),
        route=row[1],
        event_id=row[2],
        kind=row[3],
        kb_uuid=row[4],
        job_uuid=row[5],
        attempts=int(row[6]),
        last_error=row[7],
        created_at=schema.from_db(row[8]),
        settled_at=schema.from_db_or_none(row[9]),
    )


def _counts(conn: sqlite3.Connection, sql: str) -> dict[str, int]:
    return {str(key): int(count) for key, count in conn.execute(sql)}


def _jobs_by_condition(conn: sqlite3.Connection, path: Path) -> dict[JobCondition, int]:
    counts = dict.fromkeys(JobCondition, 0)
    for state in open_job_states(conn, path):
        counts[job_condition(state)] += 1
    counts[JobCondition.DONE] += int(conn.execute(_JOBS_DONE).fetchone()[0])
    return counts


def _meta_time(conn: sqlite3.Connection, key: str) -> datetime | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else schema.from_db(row[0])


@dataclass(frozen=True, slots=True)
class Counts:
    """The counts of a snapshot that read whole tables (the outbox's and the jobs' rows by
    state), kept by the store while no commit changed those rows."""

    outbox_by_state: Mapping[DeliveryState, int]
    oldest_undelivered_at: datetime | None
    jobs_by_state: Mapping[JobCondition, int]

    @classmethod
    def of(cls, snap: StoreSnapshot) -> Counts:
        return cls(snap.outbox_by_state, snap.oldest_undelivered_at, snap.jobs_by_state)

    @classmethod
    def read(cls, conn: sqlite3.Connection, path: Path) -> Counts:
        by_state = _counts(conn, "SELECT state, COUNT(*) FROM outbox GROUP BY state")
        oldest = conn.execute(
            "SELECT MIN(created_at) FROM outbox WHERE state IN ('pending', 'sending')"
        ).fetchone()[0]
        return cls(
            {state: by_state.get(state.value, 0) for state in DeliveryState},
            schema.from_db_or_none(oldest),
            _jobs_by_condition(conn, path),
        )


def read_snapshot(
    conn: sqlite3.Connection,
    path: Path,
    now: datetime,
    dead_letter_limit: int,
    *,
    detail: bool = True,
    counts: Counts | None = None,
) -> StoreSnapshot:
    """Read the whole snapshot in one read transaction (`path` only names the file in errors).

    Without `detail` only the counts are read (the metrics need no more): `kbs`, `routes`,
    `dead_letters`, `events_by_kind` and `incidents` are then empty. `counts`, when given,
    are used instead of reading the outbox's and the jobs' rows again.
    """
    conn.execute("BEGIN")
    try:
        counted = counts if counts is not None else Counts.read(conn, path)
        if not detail:
            dead_letter_limit = 0
        events = "SELECT kind, COUNT(*) FROM events GROUP BY kind ORDER BY kind"
        return StoreSnapshot(
            at=now,
            kbs=_with_facts(conn, [_kb(row, path) for row in conn.execute(_KBS)]) if detail else (),
            outbox_by_state=dict(counted.outbox_by_state),
            routes=tuple(
                RouteBacklog(route, int(p), int(s), int(d), int(h), by, schema.from_db_or_none(u))
                for route, p, s, d, h, by, u in conn.execute(_ROUTES, (schema.to_db(now),) * 3)
            )
            if detail
            else (),
            oldest_undelivered_at=counted.oldest_undelivered_at,
            dead_letters=tuple(_dead(row) for row in conn.execute(_DEAD, (dead_letter_limit,))),
            jobs_by_state=dict(counted.jobs_by_state),
            events_by_kind=_counts(conn, events) if detail else {},
            last_cycle_at=_meta_time(conn, schema.META_LAST_CYCLE),
            created_at=_meta_time(conn, schema.META_CREATED),
            schema_version=schema.schema_version(conn),
            incidents=open_incidents(conn, path) if detail else (),
        )
    finally:
        conn.execute("COMMIT")

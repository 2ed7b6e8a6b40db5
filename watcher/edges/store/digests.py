"""The store's reads for a digest (`watcher.core.digest`): the outcomes recorded in a period,
and where each knowledge base's latest job stands. Plain SQL, PostgreSQL's too."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Final

from watcher.core.digest import KbLatest
from watcher.core.model import TERMINAL_EVENTS, EventKind
from watcher.core.state import Transition
from watcher.edges.store import codec, schema

_KINDS: Final = sorted(kind.value for kind in TERMINAL_EVENTS)
_OUTCOMES: Final = f"""
    SELECT payload FROM events
    WHERE kind IN ({", ".join("?" * len(_KINDS))}) AND at >= ? AND at < ?
    ORDER BY id"""
_LATEST: Final = """
    SELECT k.uuid, k.name, j.uuid, j.observation, j.stalled, j.done
    FROM knowledge_bases k LEFT JOIN jobs j ON j.uuid = k.last_job_uuid
    ORDER BY k.uuid"""
_BEGINNING: Final = "0000-01-01T00:00:00.000000Z"


def read_digest_facts(
    conn: sqlite3.Connection, since: datetime | None, until: datetime
) -> tuple[tuple[Transition, ...], tuple[KbLatest, ...]]:
    """The terminal events recorded in `[since, until)` (wall clock; None: since the start),
    oldest first, and each KB's latest job. An undecodable row is left out, never fatal."""
    low = schema.to_db(since) if since is not None else _BEGINNING
    conn.execute("BEGIN")
    try:
        rows = conn.execute(_OUTCOMES, (*_KINDS, low, schema.to_db(until))).fetchall()
        latest = tuple(_latest(row) for row in conn.execute(_LATEST).fetchall())
    finally:
        conn.execute("COMMIT")
    outcomes = []
    for (payload,) in rows:
        try:
            outcomes.append(codec.decode_transition(codec.loads(payload)))
        except (ValueError, TypeError):
            continue
    return tuple(outcomes), latest


def _latest(row: tuple[Any, ...]) -> KbLatest:
    kb_uuid, name, job_uuid, observation, stalled, done = row
    standing: EventKind | None = None
    if observation is not None:
        try:
            job = codec.decode_job(codec.loads(observation))
            standing = job.outcome if job.is_terminal else None
        except (ValueError, TypeError):
            standing = None
        if stalled and not done and standing is None:
            standing = EventKind.STALLED
    return KbLatest(kb_uuid, name, job_uuid, standing)

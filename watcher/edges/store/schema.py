"""The SQLite layout of the state store: DDL, migrations, the checks run on open, error mapping.

The schema version lives in `PRAGMA user_version` and `PRAGMA application_id` marks the file
as ours; migrations run in one transaction on open. Times are stored as fixed-width ISO-8601
UTC text (`2026-11-28T12:00:00.000000Z`), so text order is time order.

Durability: WAL with `synchronous=FULL`. With NORMAL, a commit survives a crash of the process
but not of the machine, so a power cut could take back an outbox row that was already committed
(and the state change with it) or a 'sent' mark (a duplicate). FULL costs one fsync per commit;
the watcher commits a few times a minute, so it buys the at-least-once promise for nothing.
One write is left unflushed (NORMAL for its transaction): the heartbeat's meta, every cycle
(`SqliteStore.set_metas`), which a machine's crash may take back harmlessly; the flush was
most of an idle cycle's store cost, and the next flushed commit flushes it too.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Final

from watcher.core.errors import StoreCorrupt, StoreError

APPLICATION_ID: Final = 0x67575743  # "gWWC": gradient-watcher
BUSY_TIMEOUT_MS: Final = 5000
META_CREATED: Final = "created_at"
META_LAST_CYCLE: Final = "last_cycle_at"

_V1: Final = (
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE knowledge_bases (
        uuid TEXT PRIMARY KEY,
        name TEXT,
        first_seen_at TEXT NOT NULL,
        last_job_uuid TEXT,
        updated TEXT NOT NULL
    )""",
    """CREATE TABLE jobs (
        uuid TEXT PRIMARY KEY,
        kb_uuid TEXT NOT NULL,
        observation TEXT NOT NULL,
        phase TEXT,
        status TEXT,
        created_at TEXT,
        first_seen_at TEXT NOT NULL,
        progress_at TEXT NOT NULL,
        deadline TEXT,
        stalled TEXT,
        stall_count INTEGER NOT NULL DEFAULT 0,
        started_alerted INTEGER NOT NULL DEFAULT 0,
        done INTEGER NOT NULL DEFAULT 0,
        updated TEXT NOT NULL
    )""",
    "CREATE INDEX jobs_kb_created ON jobs (kb_uuid, created_at)",
    "CREATE INDEX jobs_done_updated ON jobs (done, updated)",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        kb_uuid TEXT,
        job_uuid TEXT,
        at TEXT NOT NULL,
        cycle_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
    "CREATE INDEX events_kind ON events (kind)",
    "CREATE INDEX events_at ON events (at)",
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL REFERENCES events (event_id),
        route TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        claimed_at TEXT,
        claim_token TEXT,
        sent_at TEXT,
        settled_at TEXT,
        last_error TEXT,
        targets TEXT,
        UNIQUE (event_id, route)
    )""",
    "CREATE INDEX outbox_due ON outbox (state, next_attempt_at)",
    "CREATE INDEX outbox_state_created ON outbox (state, created_at)",
)

# Version 2: the store's lease (one poller per store, fenced by its epoch; see
# `watcher.core.lease`), and the epoch each outbox claim was made under, so that taking the lease
# over returns exactly the claims of earlier holders. Claims of a version 1 process are
# claims of epoch 0.
_V2: Final = (
    """CREATE TABLE lease (
        name TEXT PRIMARY KEY,
        holder TEXT,
        epoch INTEGER NOT NULL,
        clock TEXT NOT NULL,
        expires REAL NOT NULL,
        duration REAL NOT NULL,
        info TEXT
    )""",
    "ALTER TABLE outbox ADD COLUMN claim_epoch INTEGER",
    "UPDATE outbox SET claim_epoch = 0 WHERE state = 'sending'",
)

# Version 3: the watcher's own clocks (issue 9): the elapsed-clock readings no progress is
# measured on, and the API's time where each knowledge base's news begins.
_V3: Final = (
    # The elapsed-clock readings no progress is measured on (JSON: first and last movement,
    # each [seconds, boot id]); NULL on older rows, seeded afresh by `detect`.
    "ALTER TABLE jobs ADD COLUMN sighting TEXT",
    # The API's time where a KB's news begins (see `watcher.core.history`); NULL on rows of
    # older rows, where first_seen_at stands in.
    "ALTER TABLE knowledge_bases ADD COLUMN news_since TEXT",
)

# Version 4: how many alerted outcomes of a job were corrected (issue 11, see
# `watcher.core.corrections`): outcomes after a correction carry their number in the event id.
_V4: Final = ("ALTER TABLE jobs ADD COLUMN corrections INTEGER NOT NULL DEFAULT 0",)

# Version 5: when each outbox claim expires, on the store's lease clock (`claim_clock` names it:
# the boot-time clock and boot id, `watcher.edges.host.lease_time`; `claim_expires` is seconds
# on it), never on the wall clock a step moves. Claims made before (NULL clock) are on no
# known clock: the next claimer returns them to the queue at once. While a row is pending
# after a failure, the same two columns keep the elapsed-clock reading of its first failure
# (`claim_clock` `failing:<boot id>`, `claim_expires` seconds since boot), which
# `delivery.dead_after` is measured from (issue 9; no migration: see `rows.FAILING`).
_V5: Final = (
    "ALTER TABLE outbox ADD COLUMN claim_clock TEXT",
    "ALTER TABLE outbox ADD COLUMN claim_expires REAL",
)

# Version 6: quiet hours (issue 16, `watcher.core.quiet`): the `[[time_intervals]]` window that
# holds a pending row until it ends (its `next_attempt_at`); NULL for a row never held. Rows
# held by a window are released together as one message.
_V6: Final = (
    "ALTER TABLE outbox ADD COLUMN held_by TEXT",
    # When that window ended (its release): `delivery.dead_after` counts from here, not from
    # `created_at`, so a weekend's hold never dead-letters an alert at its first failure.
    "ALTER TABLE outbox ADD COLUMN held_until TEXT",
)

# Incidents (issue 16, see `watcher.core.incidents`): one row per incident of a knowledge base,
# at most one open per KB (the partial unique index). `notices` is JSON (per route: the
# elapsed-clock readings reminders and escalation are measured on); the acknowledgement
# columns are written by `watcher ack` alone, never by the daemon's upsert.
_V_INCIDENTS: Final = (
    """CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        kb_uuid TEXT NOT NULL,
        kb_name TEXT,
        opened_at TEXT NOT NULL,
        api_since TEXT,
        failures INTEGER NOT NULL,
        last_kind TEXT NOT NULL,
        last_job_uuid TEXT,
        notices TEXT NOT NULL,
        closed_at TEXT,
        acked_by TEXT,
        acked_at TEXT,
        ack_comment TEXT,
        updated TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX incidents_open_kb ON incidents (kb_uuid) WHERE closed_at IS NULL",
)

# Version 8 (issue 16, silences; the lead renumbers at merge): the silences people add with
# `watcher silence add` (`watcher.core.silences`; NULL matchers mean every KB / every event),
# and the outbox's new state `silenced` with the silence that held the row. A CHECK cannot be
# altered in place, so the outbox is rebuilt under the same name with the same rows and ids
# (standard statements; a PostgreSQL schema would `ALTER TABLE ... DROP/ADD CONSTRAINT`).
_OUTBOX_COLUMNS: Final = (
    "id, event_id, route, state, attempts, created_at, next_attempt_at, claimed_at, claim_token,"
    " sent_at, settled_at, last_error, targets, claim_epoch, claim_clock, claim_expires,"
    " held_by, held_until"
)
_V_SILENCES: Final = (
    """CREATE TABLE silences (
        id TEXT PRIMARY KEY,
        kb_uuid TEXT,
        kb_label TEXT,
        event TEXT,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        expired_by_hand INTEGER NOT NULL DEFAULT 0,
        announced_at TEXT
    )""",
    "CREATE INDEX silences_ends ON silences (announced_at, ends_at)",
    """CREATE TABLE outbox_v8 (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL REFERENCES events (event_id),
        route TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'sending', 'sent', 'dead', 'silenced')),
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        claimed_at TEXT,
        claim_token TEXT,
        sent_at TEXT,
        settled_at TEXT,
        last_error TEXT,
        targets TEXT,
        claim_epoch INTEGER,
        claim_clock TEXT,
        claim_expires REAL,
        held_by TEXT,
        held_until TEXT,
        silence_id TEXT,
        UNIQUE (event_id, route)
    )""",
    f"INSERT INTO outbox_v8 ({_OUTBOX_COLUMNS}) SELECT {_OUTBOX_COLUMNS} FROM outbox",
    "DROP TABLE outbox",
    "ALTER TABLE outbox_v8 RENAME TO outbox",
    "CREATE INDEX outbox_due ON outbox (state, next_attempt_at)",
    "CREATE INDEX outbox_state_created ON outbox (state, created_at)",
    "CREATE INDEX outbox_silence ON outbox (silence_id)",
)

# Version 9 (issue-17a, after the silences): what the extra reads learnt of each knowledge base
# and agent (`watcher.edges.store.facts`): one row per (subject, kind), the value as JSON.
_V_KB_FACTS: Final = (
    """CREATE TABLE kb_facts (
        subject TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        read_at TEXT,
        marker TEXT,
        episode INTEGER NOT NULL DEFAULT 0,
        updated TEXT NOT NULL,
        PRIMARY KEY (subject, kind)
    )""",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    _V1,
    _V2,
    _V3,
    _V4,
    _V5,
    _V6,
    _V_INCIDENTS,
    _V_SILENCES,
    _V_KB_FACTS,
)
"""`MIGRATIONS[n]` takes a store from schema version n to n + 1."""

SCHEMA_VERSION: Final = len(MIGRATIONS)

_HINTS: Final = {
    sqlite3.SQLITE_READONLY: "the file or its directory is read-only for this user: make both "
    "writable by the watcher (SQLite also creates the -wal and -shm files beside it)",
    sqlite3.SQLITE_CANTOPEN: "the file cannot be opened: check that its directory exists and "
    "is writable by the watcher (SQLite creates the -wal and -shm files there)",
    sqlite3.SQLITE_PERM: "access denied: check the permissions of the file and its directory",
    sqlite3.SQLITE_FULL: "the disk is full: free some space; nothing was lost, the watcher "
    "carries on from its last complete cycle",
    sqlite3.SQLITE_IOERR: "the disk reported an I/O error (full, gone or failing); nothing "
    "of the failed write was kept",
    sqlite3.SQLITE_BUSY: "another process kept the store locked for too long",
    sqlite3.SQLITE_LOCKED: "another process kept the store locked for too long",
    sqlite3.SQLITE_CONSTRAINT: "a write broke a constraint of the store (a bug in the watcher); "
    "nothing of it was kept",
}


def to_db(moment: datetime) -> str:
    """Render an aware datetime as fixed-width UTC text; a naive one is a `ValueError`."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} cannot be stored (use UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_db_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else to_db(moment)


@lru_cache(maxsize=1024)
def from_db(text: str) -> datetime:
    """Read back a time written by `to_db` as an aware UTC datetime; the same text gives the
    same (immutable) object, so the times a cycle stamps on many rows are held once."""
    return datetime.fromisoformat(text).astimezone(UTC)


def from_db_or_none(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


def corrupt(path: Path, detail: str) -> StoreCorrupt:
    """The error for a file that is not a usable store, with the way out."""
    return StoreCorrupt(
        f"{path} is not a usable watcher state store ({detail}). It was left untouched. "
        f"Move it away (mv {path} {path}.corrupt) and start again: the watcher then records "
        "the current state silently."
    )


def translate(exc: sqlite3.Error, path: Path, doing: str) -> StoreError:
    """Turn a sqlite3 error into the project's error, naming the file and what to do."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return corrupt(path, str(exc))
    hint = _HINTS.get(primary, "") if primary is not None else ""
    text = f"state store {path}: {doing} failed: {exc}"
    return StoreError(f"{text}; {hint}" if hint else text)


def check_integrity(conn: sqlite3.Connection, path: Path, *, full: bool = True) -> None:
    """Refuse a file that belongs to another program and, when `full`, one that fails
    `PRAGMA quick_check` (which reads the whole file: right for the daemon's start, too much
    for a health probe every 30 s)."""
    if full:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise corrupt(path, "integrity check: " + "; ".join(str(p) for p in problems))
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = schema_version(conn)
    if app_id not in (0, APPLICATION_ID):
        raise corrupt(path, f"it belongs to another program (application_id {app_id:#x})")
    tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
    if version == 0 and tables[0] > 0:
        raise corrupt(path, "it is an SQLite database of another program")
    if version == 0:
        # New stores are built whole under another name (`store_files.create`): a file at
        # the path without a schema was never one of ours.
        raise corrupt(path, "it is an SQLite database without a watcher store in it")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"state store {path} has schema version {version}, but this watcher knows only up "
            f"to {SCHEMA_VERSION}: a newer watcher wrote it. Run that newer version, or point "
            "state.path at another file"
        )


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def configure(conn: sqlite3.Connection, path: Path) -> None:
    """Set the connection's pragmas: busy timeout, foreign keys, WAL, synchronous=FULL."""
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(
            f"state store {path}: SQLite refused WAL mode (got {mode!r}); keep the file on a "
            "local filesystem, not a network share"
        )
    conn.execute("PRAGMA synchronous = FULL")


def migrate(conn: sqlite3.Connection, path: Path, now: datetime) -> int:
    """Bring the schema to `SCHEMA_VERSION` in one transaction; returns the version found.

    A store already at that version is only read (a probe beside the daemon writes nothing).
    """
    if schema_version(conn) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(conn)
        if found > SCHEMA_VERSION:
            raise StoreError(f"state store {path}: schema version {found} is newer than this code")
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        if found < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        if found == 0:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (META_CREATED, to_db(now)),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found

"""The PostgreSQL layout of the state store: SQLite's migrations, translated, run once.

The tables are those of `watcher.edges.store.schema.MIGRATIONS` (one list for both engines),
each statement through `pgdb.translate_ddl`. The version lives in `watcher_schema` (one row).
Several replicas starting at once each open one transaction that first takes the
transaction-level advisory lock `pg_advisory_xact_lock(APPLICATION_ID)`: the first migrates,
the others wait for its commit and then find nothing to do. The lock ends with the
transaction (no session-level lock, which PgBouncer's transaction mode would break).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from watcher.core.errors import StoreError
from watcher.edges.store import schema
from watcher.edges.store.pgdb import PgDb, translate_ddl

_VERSION_TABLE: Final = """CREATE TABLE IF NOT EXISTS watcher_schema (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
)"""


def schema_version(db: PgDb) -> int:
    """The schema version of the current schema (search_path), 0 when there is none yet.

    Whether the table exists is read from `pg_tables` (a plain read, on the statement's
    snapshot) rather than `to_regclass`, whose name cache may still miss a table another
    replica created while this one waited for the migration lock.
    """
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables"
        " WHERE schemaname = current_schema() AND tablename = 'watcher_schema')"
    ).fetchone()
    if not row[0]:
        return 0
    found = db.execute("SELECT version FROM watcher_schema WHERE id = 1").fetchone()
    return 0 if found is None else int(found[0])


def migrate(db: PgDb, now: datetime) -> int:
    """Bring the schema to `schema.SCHEMA_VERSION` in one transaction; the version found.

    A schema already there is only read. Raises `StoreError` for a schema newer than this
    code knows.
    """
    if schema_version(db) == schema.SCHEMA_VERSION:
        return schema.SCHEMA_VERSION
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("SELECT pg_advisory_xact_lock(?)", (schema.APPLICATION_ID,))
        found = schema_version(db)  # again, under the lock: another replica may have migrated
        if found > schema.SCHEMA_VERSION:
            raise StoreError(
                f"the PostgreSQL store has schema version {found}, but this watcher knows only "
                f"up to {schema.SCHEMA_VERSION}: a newer watcher wrote it. Run that version"
            )
        db.execute(_VERSION_TABLE)
        for statements in schema.MIGRATIONS[found:]:
            for statement in statements:
                db.execute(translate_ddl(statement))
        db.execute(
            "INSERT INTO watcher_schema (id, version) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            (schema.SCHEMA_VERSION,),
        )
        if found == 0:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (schema.META_CREATED, schema.to_db(now)),
            )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return found

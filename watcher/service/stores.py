"""Which store a configuration names, opened: the SQLite file `state.path`, or the PostgreSQL
database `state.url` that several replicas share (`watcher.edges.store.postgres`).

Every command opens its store here, so `run`, `once`, `status`, `health`, `retry` and the page
work the same on both engines.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from watcher.edges.store.sqlite import SqliteStore

if TYPE_CHECKING:  # annotations only: `watcher health`'s fast path loads no pydantic model
    from watcher.config import Config


async def open_store(config: Config, now: datetime, *, integrity_check: bool = True) -> SqliteStore:
    """The configured store, open (created or migrated if need be); `StoreError` when it
    cannot be. On PostgreSQL the poller lease is the one of the configured token (a
    fingerprint of it) and outbox claims last `state.claim_lease` on the database's clock."""
    state = config.state
    if state.url is not None:
        # imported here: psycopg is 130 modules a SQLite user (and `watcher health`) never needs
        from watcher.edges.store.postgres import PostgresStore, token_lease

        token = config.token.get_secret_value() if config.token is not None else None
        return await PostgresStore.connect(
            state.url.get_secret_value(),
            now=now,
            lease=state.claim_lease,
            lease_name=token_lease(token),
        )
    return await SqliteStore.open(state.path, now=now, integrity_check=integrity_check)


def store_absent(config: Config) -> bool:
    """Whether no store exists yet to read (an SQLite file not created; a database always
    answers for itself when opened)."""
    return not config.state.shared and not config.state.path.exists()

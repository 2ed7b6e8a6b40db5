"""`watcher health`: the health rule judged from the store by another process.

Kept apart from `watcher.service.commands` so that the probe, run every 30 s in containers,
imports only the stores and the health rule: not the HTTP client, the metrics, the cycle or
the delivery path (`bench/cycle_cost.py` measures its cold start).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeGuard

from watcher.core.errors import StoreError
from watcher.core.health import HEARTBEAT_KEY, Health, Heartbeat, Probe, judge
from watcher.core.replicas import STALE_AFTER
from watcher.edges import host
from watcher.edges.hostclock import monotonic_now
from watcher.edges.store.files import rescued_copies

if TYPE_CHECKING:  # imported by `open_store` only for a shared store (psycopg: 130 modules);
    # the configuration's models only for annotations (`watcher.service.quickhealth` needs none)
    # and the whole SQLite store only by `check_health` (the fast path judges its connection)
    from watcher.config import Config
    from watcher.edges.store.conn import StoreConnection
    from watcher.edges.store.postgres import PostgresStore

__all__ = ["check_health", "judge_store", "no_state", "shared_store"]


async def check_health(config: Config, probe: Probe = Probe.READY) -> Health:
    """The health rule (`watcher.core.health`) judged from the store by another process.

    The daemon records a heartbeat (monotonic readings with the boot id) after each cycle;
    this process reads the same system-wide clock, so the age is measured without the wall
    clock. Readiness also proves the store takes a write.
    """
    from watcher.service.stores import open_store, store_absent

    if store_absent(config):
        return Health(False, no_state(config))
    try:
        # A probe runs every 30 s: no full-file integrity check (the daemon did it at start).
        store = await open_store(config, datetime.now(UTC), integrity_check=False)
    except StoreError as exc:
        return Health(False, str(exc))
    return await judge_store(store, probe)


async def judge_store(store: StoreConnection, probe: Probe) -> Health:
    """The verdict from an open store (closed here): its heartbeat, whether it takes a write
    (`Probe.READY`), and on a shared store this host's replicas."""
    store_error = None
    try:
        if probe is Probe.READY:
            try:
                await store.check_writable()
            except StoreError as exc:
                store_error = str(exc)
        beat = Heartbeat.decode(await store.get_meta(HEARTBEAT_KEY))
        standing = await _standing_by(store) if shared_store(store) else None
    except StoreError as exc:
        return Health(False, str(exc))
    finally:
        await store.close()
    if standing is not None:
        return standing
    verdict = judge(probe, beat, monotonic_now(), store_error=store_error)  # read after it
    return Health(verdict.ok, f"ok: {verdict.reason}" if verdict.ok else verdict.reason)


async def _standing_by(store: PostgresStore) -> Health | None:
    """A shared store's health as this host's replicas tell it: None when one of them polls
    (its cycles' heartbeat is judged as usual), healthy when they stand by and step their
    lease (they deliver), unhealthy when none stepped within `STALE_AFTER` lease periods."""
    me = host.this_process("watcher health", datetime.now(UTC))
    replicas, _, now = await store.replicas()
    mine = [
        r
        for r in replicas
        if (r.holder.host, r.holder.boot, r.holder.pid_ns) == (me.host, me.boot, me.pid_ns)
        and r.live(now)
    ]
    if not mine:
        return Health(
            False,
            f"no watcher replica on {me.host} stepped its lease within {STALE_AFTER:g} lease "
            "periods (not started, stopped, or cut off from the database)",
        )
    if any(r.epoch is not None for r in mine):
        return None
    seen = max(now - max(r.seen for r in mine), 0.0)
    return Health(True, f"ok: standing by and delivering (lease stepped {seen:.0f}s ago)")


def shared_store(store: object) -> TypeGuard[PostgresStore]:
    """Whether `store` is the shared PostgreSQL store (without importing it for SQLite)."""
    module = sys.modules.get("watcher.edges.store.postgres")
    return module is not None and isinstance(store, module.PostgresStore)


def no_state(config: Config) -> str:
    """What `health`, `status`, `ack` and `once` say when the state file is missing."""
    path = config.state.path
    rescued = rescued_copies(path)
    if rescued:
        return (
            f"no state file at {path}, but {rescued[-1]} is the copy a watcher saved when the "
            f"file vanished from under it: move it to {path} to go on with it"
        )
    from watcher.config.preflight import state_path_problem  # only on this rare path

    problem = state_path_problem(path)
    if problem is not None:  # no watcher can ever have run with it
        return f"no state file at {path}, and state.path cannot hold one: {problem}"
    return f"no state file at {path}: the watcher has not run yet"

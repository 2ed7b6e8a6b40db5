"""`watcher health`: the health rule judged from the store by another process.

Kept apart from `watcher.service.commands` so that the probe, run every 30 s in containers,
imports only the store and the health rule: not the HTTP client, the metrics, the cycle or
the delivery path (`bench/cycle_cost.py` measures its cold start).
"""

from __future__ import annotations

from datetime import UTC, datetime

from watcher.config import Config
from watcher.core.errors import StoreError
from watcher.core.health import HEARTBEAT_KEY, Health, Heartbeat, Probe, judge
from watcher.edges.hostclock import monotonic_now
from watcher.edges.store.files import rescued_copies
from watcher.edges.store.sqlite import SqliteStore

__all__ = ["check_health", "no_state"]


async def check_health(config: Config, probe: Probe = Probe.READY) -> Health:
    """The health rule (`watcher.core.health`) judged from the store by another process.

    The daemon records a heartbeat (monotonic readings with the boot id) after each cycle;
    this process reads the same system-wide clock, so the age is measured without the wall
    clock. Readiness also proves the store takes a write.
    """
    if not config.state.path.exists():
        return Health(False, no_state(config))
    try:
        # A probe runs every 30 s: no full-file integrity check (the daemon did it at start).
        now = datetime.now(UTC)
        store = await SqliteStore.open(config.state.path, now=now, integrity_check=False)
    except StoreError as exc:
        return Health(False, str(exc))
    store_error = None
    try:
        if probe is Probe.READY:
            try:
                await store.check_writable()
            except StoreError as exc:
                store_error = str(exc)
        beat = Heartbeat.decode(await store.get_meta(HEARTBEAT_KEY))
    except StoreError as exc:
        return Health(False, str(exc))
    finally:
        await store.close()
    verdict = judge(probe, beat, monotonic_now(), store_error=store_error)  # read after it
    return Health(verdict.ok, f"ok: {verdict.reason}" if verdict.ok else verdict.reason)


def no_state(config: Config) -> str:
    """What `health`, `status` and `once` say when the state file is missing."""
    path = config.state.path
    rescued = rescued_copies(path)
    if rescued:
        return (
            f"no state file at {path}, but {rescued[-1]} is the copy a watcher saved when the "
            f"file vanished from under it: move it to {path} to go on with it"
        )
    return f"no state file at {path}: the watcher has not run yet"

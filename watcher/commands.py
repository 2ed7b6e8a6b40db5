"""The one-shot commands behind the CLI: once, test-notify, health, status."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from watcher import status
from watcher.config import Config
from watcher.cycle import CycleReport
from watcher.edges.store_sqlite import SqliteStore
from watcher.errors import StoreError
from watcher.model import Severity
from watcher.pace import PACE_KEY
from watcher.runtime import build_notifier, open_runtime, utcnow
from watcher.state import Message, SendResult

log = structlog.get_logger(__name__)


async def run_once(config: Config) -> CycleReport:
    """One poll cycle plus delivery of what is due (`watcher once`)."""
    runtime = await open_runtime(config)
    try:
        report = await runtime.cycle.run()
        if report.ok:
            await runtime.store.set_last_cycle_at(utcnow())
        return report
    finally:
        await runtime.close()


def test_message(now: datetime) -> Message:
    """The alert `watcher test-notify` sends."""
    return Message(
        title="🧪 gradient-watcher test alert",
        body=(
            "**This is a test alert from gradient-watcher.**\n\n"
            f"- Sent at: {now.isoformat(timespec='seconds')}\n"
            f"- Events this route can receive: see `events =` in its config\n"
            "\nIf you can read this, the route works.\n"
        ),
        severity=Severity.INFO,
    )


async def send_test(config: Config, route: str | None) -> dict[str, SendResult]:
    """Send a test alert through the real notifier to every route (or one); results by route."""
    notifier = build_notifier(config)
    names = [r.name for r in config.routes if route is None or r.name == route]
    message = test_message(utcnow())
    return {name: await notifier.send(name, message) for name in names}


async def check_health(config: Config, now: datetime) -> tuple[bool, str]:
    """Whether the daemon looks healthy from its store: writable and a recent good cycle."""
    if not config.state.path.exists():
        return False, f"no state file at {config.state.path}: the watcher has not run yet"
    try:
        # A probe runs every 30 s: no full-file integrity check (the daemon did it at start).
        store = await SqliteStore.open(config.state.path, now=now, integrity_check=False)
    except StoreError as exc:
        return False, str(exc)
    try:
        await store.check_writable()
        last = await store.last_cycle_at()
        pace = await store.get_meta(PACE_KEY)
    except StoreError as exc:
        return False, str(exc)
    finally:
        await store.close()
    if last is None:
        return False, "no successful cycle recorded yet"
    age = now - last
    # Two intervals, of the configured one or of the pace the daemon last chose if longer.
    paced = timedelta(seconds=json.loads(pace)["interval_s"]) if pace else timedelta(0)
    limit = 2 * max(config.poll.interval, paced, timedelta(seconds=30))
    if age > limit:
        seconds, most = int(age.total_seconds()), int(limit.total_seconds())
        return False, f"last successful cycle {seconds}s ago (limit {most}s)"
    return True, f"ok: last successful cycle {int(age.total_seconds())}s ago"


async def read_status(config: Config, *, as_json: bool, echo: Callable[[str], None]) -> int:
    """Print what the store knows (`watcher status`); 1 when there is no state file yet."""
    if not config.state.path.exists():
        echo(f"no state file at {config.state.path}: the watcher has not run yet")
        return 1
    now = utcnow()
    store = await SqliteStore.open(config.state.path, now=now)
    try:
        snapshot = await store.snapshot(now)
        pace = await store.get_meta(PACE_KEY)
    finally:
        await store.close()
    if as_json:
        data = status.as_json(snapshot, now)
        data["poll"] = json.loads(pace) if pace else None
        echo(json.dumps(data, indent=2))
    else:
        echo(status.table(snapshot, now))
        if pace:
            p = json.loads(pace)
            echo(f"Polling every {p['interval_s']:g}s ({p['reason']})")
    return 0

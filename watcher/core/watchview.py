"""`watcher status`'s schedules and freshness: each KB's schedule as last read, the run the
watcher waits for, its last successful finish and whether it is stale. Pure.

The values are what the daemon remembers per KB (`watcher.core.schedules.KbWatch`, the store's
`kb_watch/<uuid>` meta values); every time is DigitalOcean's (the API's clock), ISO 8601 UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from watcher.core.inert import inert
from watcher.core.schedules import KbWatch
from watcher.core.snapshot import StoreSnapshot


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="minutes") if moment is not None else None


def as_json(watches: Mapping[str, KbWatch]) -> dict[str, Any]:
    """KB uuid -> {schedule: {active, next_run_at, time, days} | None, waiting_for_run_at,
    last_success_at, stale, stale_since}, for `watcher status --json`."""
    found: dict[str, Any] = {}
    for uuid, watch in watches.items():
        sched = watch.schedule
        found[uuid] = {
            "schedule": None
            if sched is None
            else {
                "active": sched.active,
                "next_run_at": _iso(sched.next_run_at),
                "time": sched.time,
                "days": list(sched.days),
            },
            "waiting_for_run_at": _iso(watch.due_run),
            "last_success_at": _iso(watch.last_success),
            "stale": watch.stale_from is not None,
            "stale_since": _iso(watch.stale_from),
        }
    return found


def lines(snapshot: StoreSnapshot, watches: Mapping[str, KbWatch]) -> list[str]:
    """`Schedules and freshness (DigitalOcean's time):` and one line per KB remembered."""
    said = []
    for kb in snapshot.kbs:
        watch = watches.get(kb.uuid)
        if watch is not None:
            said.append(inert(f"  {kb.label}: {_line(watch)}"))
    return ["", "Schedules and freshness (DigitalOcean's time):", *said] if said else []


def _line(watch: KbWatch) -> str:
    sched = watch.schedule
    if sched is None:
        parts = ["no schedule"]
    elif not sched.active:
        parts = ["schedule off"]
    else:
        parts = [f"next run {_iso(watch.due_run or sched.next_run_at) or 'unknown'}"]
    success = _iso(watch.last_success)
    parts.append(f"last success {success}" if success else "no success seen")
    if watch.stale_from is not None:
        parts.append(f"STALE (no success since {_iso(watch.stale_from)})")
    return "; ".join(parts)

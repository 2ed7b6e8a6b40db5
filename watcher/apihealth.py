"""Self-alerting about the API: `api_unreachable` after a while, `api_recovered` after. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from watcher.model import EventKind
from watcher.state import Transition


@dataclass(frozen=True, slots=True)
class ApiHealth:
    """Since when the API has been failing (None while it answers) and whether we said so."""

    failing_since: datetime | None = None
    alerted: bool = False
    last_error: str | None = None


def api_health(
    previous: ApiHealth, error: str | None, now: datetime, after: timedelta
) -> tuple[ApiHealth, tuple[Transition, ...]]:
    """Fold one cycle's outcome (error text, or None on success) into the API's health."""
    if error is None:
        if previous.alerted and previous.failing_since is not None:
            recovered = _event(EventKind.API_RECOVERED, previous.failing_since, now, None)
            return ApiHealth(), (recovered,)
        return ApiHealth(), ()
    since = previous.failing_since or now
    health = replace(previous, failing_since=since, last_error=error)
    if previous.alerted or now - since < after:
        return health, ()
    detail = f"The API has not answered properly for {_minutes(now - since)}: {error}"
    return replace(health, alerted=True), (_event(EventKind.API_UNREACHABLE, since, now, detail),)


def _event(kind: EventKind, since: datetime, now: datetime, detail: str | None) -> Transition:
    return Transition(
        event_id=f"api/{kind.value}/{since.isoformat()}", kind=kind, at=now, detail=detail
    )


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes else f"{int(delta.total_seconds())} s"

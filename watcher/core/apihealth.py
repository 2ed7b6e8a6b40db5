"""Self-alerting about the API: `api_unreachable` after a while, `api_recovered` after. Pure.

How long the API has failed is measured on the watcher's elapsed clock, so a step of the
wall clock neither raises the alert early nor holds it back. The wall-clock start of the
outage only names it (the event id) and dates it for people. An outage first recorded in an
earlier boot is measured again from now: the alert may come late, never falsely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from watcher.core.clocks import Elapsed, Instant
from watcher.core.model import EventKind
from watcher.core.state import Transition

API_HEALTH_KEY = "api_health"
"""The store's meta key of an account's `ApiHealth` (`accountscope.account_key` prefixes it
with several accounts)."""


@dataclass(frozen=True, slots=True)
class ApiHealth:
    """Since when the API has been failing (None while it answers) and whether we said so.

    `failing_since` is the wall clock (for people and the event id); `failing_for` the
    elapsed-clock reading the outage is measured from.
    """

    failing_since: datetime | None = None
    alerted: bool = False
    last_error: str | None = None
    failing_for: Elapsed | None = None

    def encode(self) -> str:
        """JSON, for the store's meta table."""
        since = self.failing_since
        return json.dumps(
            {
                "failing_since": since.isoformat() if since else None,
                "alerted": self.alerted,
                "last_error": self.last_error,
                "failing_for": self.failing_for.encode() if self.failing_for else None,
            }
        )

    @classmethod
    def decode(cls, raw: str | None) -> ApiHealth:
        """Read `encode`'s JSON back; nothing stored means a healthy API."""
        if not raw:
            return cls()
        data = json.loads(raw)
        since = data.get("failing_since")
        return cls(
            failing_since=datetime.fromisoformat(since) if since else None,
            alerted=bool(data.get("alerted")),
            last_error=data.get("last_error"),
            failing_for=Elapsed.decode(data.get("failing_for")),
        )


def api_health(
    previous: ApiHealth, error: str | None, now: Instant, after: timedelta
) -> tuple[ApiHealth, tuple[Transition, ...]]:
    """Fold one cycle's outcome (error text, or None on success) into the API's health."""
    if error is None:
        if previous.alerted and previous.failing_since is not None:
            recovered = _event(EventKind.API_RECOVERED, previous.failing_since, now, None)
            return ApiHealth(), (recovered,)
        return ApiHealth(), ()
    since = previous.failing_since or now.wall
    start = previous.failing_for
    lasted = now.elapsed.since(start) if start is not None else None
    if lasted is None:  # a new outage, or one whose start another boot measured
        start, lasted = now.elapsed, timedelta(0)
    health = replace(previous, failing_since=since, last_error=error, failing_for=start)
    if previous.alerted or lasted < after:
        return health, ()
    detail = f"The API has not answered properly for {_minutes(lasted)}: {error}"
    return replace(health, alerted=True), (_event(EventKind.API_UNREACHABLE, since, now, detail),)


def _event(kind: EventKind, since: datetime, now: Instant, detail: str | None) -> Transition:
    return Transition(
        event_id=f"api/{kind.value}/{since.isoformat()}", kind=kind, at=now.wall, detail=detail
    )


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes else f"{int(delta.total_seconds())} s"

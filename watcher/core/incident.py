"""An incident, as values: a knowledge base in trouble, from its first failure to its recovery.

Pure frozen data; the rules that open, join, close, remind and escalate are in
`watcher.core.incidents`, the rows in `watcher.edges.store.incidents`.

Clocks: `opened_at`, `closed_at` and `acked_at` are the watcher's wall clock (for people);
`api_since` is DigitalOcean's clock when the first failure was seen (durations told in alerts
are measured on that clock against a later `Transition.api_at`); each `Notice` holds readings of
the elapsed clock, which never steps, so reminders and escalations are timed on it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from watcher.core.clocks import Elapsed
from watcher.core.model import EventKind


@dataclass(frozen=True, slots=True)
class Notice:
    """What one route heard of an incident, on the elapsed clock.

    `first` is when the route first got an alert of it (escalation is measured from there);
    `last` when it last got one, a failure or a reminder (the next reminder is measured from
    there); `reminders` how many reminders it got; `escalated` whether the incident was sent
    on to the route's `escalate_to`.
    """

    route: str
    first: Elapsed
    last: Elapsed
    reminders: int = 0
    escalated: bool = False


@dataclass(frozen=True, slots=True)
class Ack:
    """Who acknowledged an incident, when (wall clock) and why."""

    by: str
    at: datetime
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """A knowledge base's run of failures (failed, partial or stalled jobs) until it recovers.

    `id` is `incident/<the opening event's id>`: deterministic, so a replayed cycle opens the
    same incident. `failures` counts the jobs that failed in a row (a job that stalled and then
    failed counts once); `last_kind` / `last_job_uuid` are the latest problem. `notices` are
    the routes alerted about it. Open while `closed_at` is None; at most one open per KB.
    """

    id: str
    kb_uuid: str
    kb_name: str | None
    opened_at: datetime
    api_since: datetime | None
    failures: int
    last_kind: EventKind
    last_job_uuid: str | None
    notices: tuple[Notice, ...] = ()
    closed_at: datetime | None = None
    ack: Ack | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def since(self) -> datetime:
        """When it began, for people: the API's time of the first failure, else the wall's."""
        return self.api_since or self.opened_at

    def lasted(self, api_at: datetime | None, wall: datetime) -> timedelta:
        """How long it has lasted at a moment read on the API's clock (`api_at`) and the
        wall's: on the API's clock when both ends are on it, else the wall's; never negative."""
        if self.api_since is not None and api_at is not None:
            return max(api_at - self.api_since, timedelta(0))
        return max(wall - self.opened_at, timedelta(0))

    def notice(self, route: str) -> Notice | None:
        """What `route` heard of it, if anything."""
        return next((n for n in self.notices if n.route == route), None)


@dataclass(frozen=True, slots=True)
class IncidentNote:
    """What an alert tells of its KB's incident (carried by the `Transition`).

    `failures` in a row since `since` (the API's clock when known); `duration`: on a closing
    alert how long it lasted, on a reminder or an escalation how long it has been open;
    `closed` on the alert that closed it; `route` and `waited` on an escalation: the route
    that was not acknowledged within `waited`; `reminder` the reminder's number.
    """

    id: str
    failures: int
    since: datetime
    last_kind: EventKind
    duration: timedelta | None = None
    closed: bool = False
    route: str | None = None
    waited: timedelta | None = None
    reminder: int | None = None

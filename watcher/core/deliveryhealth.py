"""Self-alerting about delivery: a route whose alerts keep failing is itself news. Pure.

Per route, like `apihealth` for the API: the route's failures are counted from the first
failed send with no success since. Once they have lasted `after` (or a row of the route was
dead-lettered, which is final), `delivery_failing` is recorded once; the next round in which
every send of the route got through records `delivery_recovered`. Both events name the
route, so routing gives them to every other route that asked for them and never to the
failing route itself.

How long a route has failed is measured on the elapsed clock (`Elapsed`: seconds since boot,
with the boot id), so a step of the wall clock, forward or back, neither raises
`delivery_failing` early nor holds it back. The wall-clock start only names the outage (the
event id) and dates it for people. An outage whose first failure was read in another boot
(or stored before this rule) is measured again from the first failure seen in this one: the
alert may come late after a reboot, never early.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from watcher.core.clocks import Elapsed
from watcher.core.fit import clip
from watcher.core.model import EventKind
from watcher.core.outbox import TargetResult
from watcher.core.state import Transition

_MAX_WHY = 200


@dataclass(frozen=True, slots=True)
class DeliveryHealth:
    """Since when a route's sends have been failing (None while they get through), whether
    that was alerted, and the last failure in words.

    `failing_since` is the wall clock (people, the event id); `failing_for` the elapsed-clock
    reading of the first failure, which the outage is measured from.
    """

    failing_since: datetime | None = None
    alerted: bool = False
    last_error: str | None = None
    failing_for: Elapsed | None = None


@dataclass(frozen=True, slots=True)
class RouteRound:
    """What one delivery round of a route showed: sends tried, fully delivered, rows given
    up, and the targets that failed."""

    route: str
    tried: int
    delivered: int
    dead: int = 0
    failures: tuple[TargetResult, ...] = ()


def delivery_health(
    previous: DeliveryHealth, seen: RouteRound, now: datetime, elapsed: Elapsed, after: timedelta
) -> tuple[DeliveryHealth, tuple[Transition, ...]]:
    """Fold one round of a route into its delivery health, with the events that are due.

    `now` is the wall clock (the events' time), `elapsed` the same moment on the elapsed
    clock: the outage has lasted from `previous.failing_for` to it (see the module).
    """
    if seen.tried == 0:
        return previous, ()
    if not seen.failures:
        if previous.alerted and previous.failing_since is not None:
            event = _event(seen.route, EventKind.DELIVERY_RECOVERED, previous.failing_since, now)
            detail = f"Alerts to route {seen.route!r} get through again."
            return DeliveryHealth(), (replace(event, detail=detail),)
        return DeliveryHealth(), ()
    since = previous.failing_since or now
    start = previous.failing_for
    lasted = elapsed.since(start) if start is not None else None
    if lasted is None:  # a new outage, or one whose start another boot measured
        start, lasted = elapsed, timedelta(0)
    error = describe_failures(seen.failures)
    health = replace(previous, failing_since=since, last_error=error, failing_for=start)
    if previous.alerted or (lasted < after and not seen.dead):
        return health, ()
    given_up = f" ({seen.dead} alert(s) given up)" if seen.dead else ""
    detail = (
        f"Alerts to route {seen.route!r} have not got through for {_duration(lasted)}"
        f"{given_up}: {error}"
    )
    event = replace(_event(seen.route, EventKind.DELIVERY_FAILING, since, now), detail=detail)
    return replace(health, alerted=True), (event,)


def describe_failures(failures: Sequence[TargetResult]) -> str:
    """Each failing target once, by service and masked URL, with why (the notifier's words:
    `E-Mail mailto://…: credentials refused (SMTP 535)`)."""
    seen: dict[tuple[str, str], str] = {}
    for target in failures:
        why = target.detail or (target.cause.explanation if target.cause else "failed")
        seen.setdefault((target.name, target.url), clip(why, _MAX_WHY))
    return "; ".join(f"{name} {url}: {why}" for (name, url), why in seen.items())


def _event(route: str, kind: EventKind, since: datetime, now: datetime) -> Transition:
    return Transition(
        event_id=f"delivery/{route}/{kind.value}/{since.isoformat()}",
        kind=kind,
        at=now,
        route=route,
    )


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes else f"{int(delta.total_seconds())} s"

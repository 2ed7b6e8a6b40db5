"""Incidents, reminders and escalation: what a knowledge base's run of failures becomes. Pure.

Rules (`track` applies them to one cycle's transitions, in order):
- A `failed`, `partial` or `stalled` job opens an incident for its KB, or joins the one open
  (one open incident per KB). A job that stalled and then failed counts as one failure.
- A later `completed` or `no_changes` job closes it; so does a `recovered` of the very job
  whose stall is the incident's latest problem (another job moving again says nothing of an
  earlier failure, and a `recovered` of a job that ended is told by its outcome).
- Every alert of an incident says so: "3rd failure in a row since <time>", and on the one that
  closes it "resolved after 2h 10m". That closing alert goes to every route that heard of the
  incident (its failures, reminders, or the escalation to its `escalate_to`), as Alertmanager's
  `send_resolved` does, whatever the route's `events`. Durations are on the API's clock
  (`Transition.api_at` against the API's time of the first failure), the wall clock only where
  either is missing.
- The routes that got an alert of an incident are its `notices` (`watcher.core.reminders`
  decides what is due of the next two rules). A route with `repeat_after`
  gets a `reminder` while the incident is open and not acknowledged, one per period after
  the route last heard of it (a new failure alert counts); after a pause of any length, one
  reminder, never one per missed period. A route with `escalate_after` sends the incident on
  to its `escalate_to` route, once, when it is not acknowledged that long after the route
  first heard of it.
- Those periods are measured on the elapsed clock (`Elapsed`, which never steps), so a step
  of the wall clock can neither fire a burst nor hold reminders back. A reading from another
  boot cannot be compared: the period starts again at the first cycle after the reboot (late
  rather than a burst).
- Each reminder and escalation has a deterministic event id (`<incident>/reminder/<route>/<n>`,
  `<incident>/escalated/<route>`) and its outbox row names the incident, so it is delivered at
  least once, and never written once the incident is acknowledged (see `Delivery.incident`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from watcher.core.clocks import Instant
from watcher.core.incident import Incident, IncidentNote, Notice
from watcher.core.model import EventKind
from watcher.core.reminders import IncidentRule, nudge
from watcher.core.state import Delivery, Transition

OPENS = frozenset({EventKind.FAILED, EventKind.PARTIAL, EventKind.STALLED})
CLOSES = frozenset({EventKind.COMPLETED, EventKind.NO_CHANGES})


class Step(StrEnum):
    """What one transition did to its KB's incident."""

    OPENED = "opened"
    JOINED = "joined"
    CLOSED = "closed"
    UNTOUCHED = "untouched"


@dataclass(frozen=True, slots=True)
class Tracked:
    """One cycle's incident work: its transitions (annotated with their incident) plus the
    reminders and escalations due, every delivery, and the incidents to write (closed first,
    so that a KB's new incident never meets its old one open in the store)."""

    transitions: tuple[Transition, ...]
    deliveries: tuple[Delivery, ...]
    incidents: tuple[Incident, ...]


def track(
    open_incidents: Mapping[str, Incident],
    transitions: Sequence[Transition],
    deliveries: Sequence[Delivery],
    rules: Iterable[IncidentRule],
    now: Instant,
) -> Tracked:
    """Follow the cycle's transitions into the open incidents (by KB uuid), then add what is
    due of reminders and escalations under `rules`; see the module's rules."""
    annotated, changed = follow(open_incidents, transitions, deliveries, now)
    latest = {i.id: i for i in open_incidents.values()} | changed  # by id: a closed one stays so
    still_open = {i.kb_uuid: i for i in latest.values() if i.is_open}
    by_route = {rule.route: rule for rule in rules}
    resolved = tell_resolved(annotated, changed.values(), deliveries, by_route)
    nudges, extra, nudged = nudge(still_open.values(), by_route, now)
    written = {**changed, **{i.id: i for i in nudged}}
    ordered = sorted(written.values(), key=lambda i: (i.is_open, i.id))
    return Tracked(annotated + nudges, tuple(deliveries) + resolved + extra, tuple(ordered))


def tell_resolved(
    annotated: Iterable[Transition],
    changed: Iterable[Incident],
    deliveries: Iterable[Delivery],
    by_route: Mapping[str, IncidentRule],
) -> tuple[Delivery, ...]:
    """Alertmanager's `send_resolved`: the alert that closes an incident also goes to every
    configured route that heard of it (its failures, reminders, or the escalation sent to its
    `escalate_to`), even when that route's `events` leave completed/no_changes out; not a
    route that gets another alert of the closing job this cycle (one message per ending)."""
    closing = {t.incident.id: t for t in annotated if t.incident and t.incident.closed}
    job_of = {t.event_id: t.job_uuid for t in annotated if t.job_uuid is not None}
    told = {(job_of.get(d.event_id), d.route) for d in deliveries}  # this cycle, per job
    sent = {(d.event_id, d.route) for d in deliveries}
    extra = []
    for incident in changed:
        t = closing.get(incident.id)
        if t is None:
            continue
        for name in _told(incident, by_route):
            if name not in by_route or (t.event_id, name) in sent:
                continue
            if t.job_uuid is not None and (t.job_uuid, name) in told:
                continue  # it hears of that job's ending already (`recovered` as an ending)
            sent.add((t.event_id, name))
            extra.append(Delivery(t.event_id, name))
    return tuple(extra)


def _told(incident: Incident, by_route: Mapping[str, IncidentRule]) -> tuple[str, ...]:
    routes = []
    for notice in incident.notices:
        routes.append(notice.route)
        rule = by_route.get(notice.route)
        if notice.escalated and rule is not None and rule.escalate_to is not None:
            routes.append(rule.escalate_to)
    return tuple(dict.fromkeys(routes))


def follow(
    open_incidents: Mapping[str, Incident],
    transitions: Sequence[Transition],
    deliveries: Sequence[Delivery],
    now: Instant,
) -> tuple[tuple[Transition, ...], dict[str, Incident]]:
    """The transitions, each carrying its incident's note, and the incidents they changed
    (by incident id); the routes of `deliveries` become the incidents' notices."""
    current = dict(open_incidents)
    changed: dict[str, Incident] = {}
    out = []
    heard = _routes_by_event(deliveries)
    for t in transitions:
        incident, step = step_of(current.get(t.kb_uuid or ""), t)
        if incident is None or step is Step.UNTOUCHED:
            out.append(t)
            continue
        if step is not Step.CLOSED:
            incident = _heard(incident, heard.get(t.event_id, ()), now)
        if step is Step.CLOSED:
            current.pop(incident.kb_uuid, None)
        else:
            current[incident.kb_uuid] = incident
        changed[incident.id] = incident
        out.append(replace(t, incident=note(incident, t, step)))
    return tuple(out), changed


def step_of(incident: Incident | None, t: Transition) -> tuple[Incident | None, Step]:
    """The KB's incident after transition `t`, and what `t` did to it (`incident`: the one
    open for `t`'s KB, if any)."""
    if t.kb_uuid is None or not t.kind.is_about_a_job:
        return incident, Step.UNTOUCHED
    if t.kind in OPENS:
        if incident is None:
            return _opened(t), Step.OPENED
        again = t.job_uuid is not None and t.job_uuid == incident.last_job_uuid
        failures = incident.failures + (0 if again else 1)
        joined = replace(incident, failures=failures, last_kind=t.kind, last_job_uuid=t.job_uuid)
        return joined, Step.JOINED
    if incident is not None and _closes(incident, t):
        return replace(incident, closed_at=t.at), Step.CLOSED
    return incident, Step.UNTOUCHED


def _closes(incident: Incident, t: Transition) -> bool:
    if t.kind in CLOSES:
        return True
    moving_again = t.kind is EventKind.RECOVERED and t.job is not None and not t.job.is_terminal
    stalled_here = incident.last_kind is EventKind.STALLED and incident.last_job_uuid == t.job_uuid
    return moving_again and stalled_here


def _opened(t: Transition) -> Incident:
    return Incident(
        id=f"incident/{t.event_id}",
        kb_uuid=t.kb_uuid or "",
        kb_name=t.kb_name,
        opened_at=t.at,
        api_since=t.api_at,
        failures=1,
        last_kind=t.kind,
        last_job_uuid=t.job_uuid,
    )


def _routes_by_event(deliveries: Iterable[Delivery]) -> dict[str, tuple[str, ...]]:
    routes: dict[str, tuple[str, ...]] = {}
    for d in deliveries:
        routes[d.event_id] = (*routes.get(d.event_id, ()), d.route)
    return routes


def _heard(incident: Incident, routes: Iterable[str], now: Instant) -> Incident:
    """`routes` got an alert of the incident now: the next reminder is a period from now."""
    notices = {n.route: n for n in incident.notices}
    for name in routes:
        kept = notices.get(name)
        notices[name] = (
            replace(kept, last=now.elapsed)
            if kept is not None
            else Notice(route=name, first=now.elapsed, last=now.elapsed)
        )
    return replace(incident, notices=tuple(notices.values()))


def note(incident: Incident, t: Transition, step: Step) -> IncidentNote:
    """What `t`'s alert tells of the incident."""
    closed = step is Step.CLOSED
    return IncidentNote(
        id=incident.id,
        failures=incident.failures,
        since=incident.since,
        last_kind=incident.last_kind,
        duration=incident.lasted(t.api_at, t.at) if closed else None,
        closed=closed,
    )

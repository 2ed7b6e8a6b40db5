"""Reminders and escalation of open incidents: what is due now, per route. Pure.

A route with `repeat_after` gets a `reminder` of an open, unacknowledged incident one period
after it last heard of it (a failure alert or a reminder); a route with `escalate_after` sends
the incident on to its `escalate_to`, once, that long after it first heard of it. The rules
in full, and why the periods are measured on the elapsed clock, are in
`watcher.core.incidents`, whose `track` calls `nudge` after each cycle's transitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum

from watcher.core.clocks import Elapsed, Instant
from watcher.core.incident import Incident, IncidentNote, Notice
from watcher.core.model import EventKind
from watcher.core.state import Delivery, Transition


@dataclass(frozen=True, slots=True)
class IncidentRule:
    """One route's incident settings: `repeat_after`, `escalate_after` and `escalate_to`."""

    route: str
    repeat_after: timedelta | None = None
    escalate_after: timedelta | None = None
    escalate_to: str | None = None


def nudge(
    incidents: Iterable[Incident], rules: Mapping[str, IncidentRule], now: Instant
) -> tuple[tuple[Transition, ...], tuple[Delivery, ...], tuple[Incident, ...]]:
    """The reminders and escalations due now for open, unacknowledged incidents, their
    deliveries, and the incidents whose notices changed (a reminder or escalation recorded,
    or a period started again after a reboot)."""
    transitions: list[Transition] = []
    deliveries: list[Delivery] = []
    changed: list[Incident] = []
    for incident in incidents:
        if not incident.is_open or incident.ack is not None:
            continue
        notices = []
        for notice in incident.notices:
            rule = rules.get(notice.route)
            if rule is not None:
                notice = _remind(incident, notice, rule, now, transitions, deliveries)
                notice = _escalate(incident, notice, rule, now, transitions, deliveries)
            notices.append(notice)
        if tuple(notices) != incident.notices:
            changed.append(replace(incident, notices=tuple(notices)))
    return tuple(transitions), tuple(deliveries), tuple(changed)


class Due(StrEnum):
    """Whether a period measured on the elapsed clock has passed."""

    DUE = "due"
    WAITING = "waiting"
    OTHER_BOOT = "other_boot"  # the reading cannot be compared: start the period again


def due(since: Elapsed, period: timedelta, now: Instant) -> Due:
    """Whether `period` has passed since the elapsed-clock reading `since`."""
    waited = now.elapsed.since(since)
    if waited is None:
        return Due.OTHER_BOOT
    return Due.DUE if waited >= period else Due.WAITING


def _remind(
    incident: Incident,
    notice: Notice,
    rule: IncidentRule,
    now: Instant,
    transitions: list[Transition],
    deliveries: list[Delivery],
) -> Notice:
    if rule.repeat_after is None:
        return notice
    match due(notice.last, rule.repeat_after, now):
        case Due.OTHER_BOOT:
            return replace(notice, last=now.elapsed)
        case Due.WAITING:
            return notice
        case Due.DUE:
            number = notice.reminders + 1
            event_id = f"{incident.id}/reminder/{notice.route}/{number}"
            transitions.append(_event(incident, EventKind.REMINDER, event_id, now, number=number))
            deliveries.append(Delivery(event_id, notice.route, incident=incident.id))
            return replace(notice, last=now.elapsed, reminders=number)


def _escalate(
    incident: Incident,
    notice: Notice,
    rule: IncidentRule,
    now: Instant,
    transitions: list[Transition],
    deliveries: list[Delivery],
) -> Notice:
    if rule.escalate_after is None or rule.escalate_to is None or notice.escalated:
        return notice
    match due(notice.first, rule.escalate_after, now):
        case Due.OTHER_BOOT:
            return replace(notice, first=now.elapsed)
        case Due.WAITING:
            return notice
        case Due.DUE:
            event_id = f"{incident.id}/escalated/{notice.route}"
            event = _event(
                incident, EventKind.ESCALATED, event_id, now, route=notice.route, waited=rule
            )
            transitions.append(event)
            deliveries.append(Delivery(event_id, rule.escalate_to, incident=incident.id))
            return replace(notice, escalated=True)


def _event(
    incident: Incident,
    kind: EventKind,
    event_id: str,
    now: Instant,
    *,
    number: int | None = None,
    route: str | None = None,
    waited: IncidentRule | None = None,
) -> Transition:
    told = IncidentNote(
        id=incident.id,
        failures=incident.failures,
        since=incident.since,
        last_kind=incident.last_kind,
        duration=incident.lasted(now.api, now.wall),
        route=route,
        waited=waited.escalate_after if waited is not None else None,
        reminder=number,
    )
    return Transition(
        event_id=event_id,
        kind=kind,
        at=now.wall,
        kb_uuid=incident.kb_uuid,
        kb_name=incident.kb_name,
        api_at=now.api,
        incident=told,
    )

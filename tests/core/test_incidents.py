"""Incident rules, table-driven: (open incident, transitions, now) -> incident and alert notes;
(open incidents, route rules, now) -> reminders and escalations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.clocks import Elapsed, Instant
from watcher.core.incident import Ack, Incident, Notice
from watcher.core.incidents import Step, step_of, track
from watcher.core.model import EventKind, Job, Phase, Status
from watcher.core.reminders import IncidentRule
from watcher.core.state import Delivery, Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NOW_I = Instant.aligned(NOW)
KB = "kb-1"
E = EventKind
H = timedelta(hours=1)
M = timedelta(minutes=1)


def job(uuid: str = "job-2", *, ended: bool = True) -> Job:
    if ended:
        return Job(uuid=uuid, knowledge_base_uuid=KB, phase=Phase.FAILED, status=Status.FAILED)
    return Job(uuid=uuid, knowledge_base_uuid=KB, phase=Phase.RUNNING, status=Status.IN_PROGRESS)


def event(
    kind: EventKind, job_uuid: str = "job-2", *, ended: bool = True, api_at: datetime = NOW
) -> Transition:
    return Transition(
        event_id=f"{job_uuid}/{kind.value}",
        kind=kind,
        at=NOW,
        kb_uuid=KB,
        kb_name="docs",
        job=job(job_uuid, ended=ended),
        api_at=api_at,
    )


def ago(delta: timedelta, now: Instant = NOW_I) -> Elapsed:
    return now.elapsed.minus(delta)


def incident(
    failures: int = 1,
    last_kind: EventKind = E.FAILED,
    last_job: str = "job-1",
    notices: tuple[Notice, ...] = (),
    **fields: object,
) -> Incident:
    """An incident of KB open since 2h 10m ago (on both clocks), `failures` in a row."""
    base = Incident(
        id="incident/job-1/failed",
        kb_uuid=KB,
        kb_name="docs",
        opened_at=NOW - 2 * H - 10 * M,
        api_since=NOW - 2 * H - 10 * M,
        failures=failures,
        last_kind=last_kind,
        last_job_uuid=last_job,
        notices=notices,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def heard(
    route: str = "ops", first: timedelta = H, last: timedelta = H, **fields: object
) -> Notice:
    """`route` first heard of the incident `first` ago, last `last` ago (elapsed clock)."""
    return replace(Notice(route, first=ago(first), last=ago(last)), **fields)  # type: ignore[arg-type]


# --- opening, joining, closing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "transition", "step", "failures"),
    [
        # a failed job on a KB with no incident opens one
        (None, event(E.FAILED), Step.OPENED, 1),
        # so does a partial job
        (None, event(E.PARTIAL), Step.OPENED, 1),
        # and a stalled one
        (None, event(E.STALLED, ended=False), Step.OPENED, 1),
        # a cancelled job is somebody's decision, not a failure
        (None, event(E.CANCELLED), Step.UNTOUCHED, None),
        # a completed job with nothing open changes nothing
        (None, event(E.COMPLETED), Step.UNTOUCHED, None),
        # a second failing job joins the open incident: 2 in a row
        (incident(), event(E.FAILED), Step.JOINED, 2),
        # a third, partial this time: 3 in a row
        (incident(failures=2), event(E.PARTIAL), Step.JOINED, 3),
        # the job that stalled and then failed is still one failure
        (incident(last_kind=E.STALLED, last_job="job-2"), event(E.FAILED), Step.JOINED, 1),
        # a completed job closes it
        (incident(failures=3), event(E.COMPLETED), Step.CLOSED, 3),
        # so does a job with no changes to index
        (incident(), event(E.NO_CHANGES), Step.CLOSED, 1),
        # the stalled job moving again closes its own stall's incident
        (
            incident(last_kind=E.STALLED, last_job="job-2"),
            event(E.RECOVERED, ended=False),
            Step.CLOSED,
            1,
        ),
        # another job moving again says nothing of an earlier failure
        (incident(), event(E.RECOVERED, ended=False), Step.UNTOUCHED, 1),
        # a `recovered` of a job that ended is told by its outcome, not here
        (incident(last_kind=E.STALLED, last_job="job-2"), event(E.RECOVERED), Step.UNTOUCHED, 1),
        # a started job changes nothing
        (incident(), event(E.STARTED, ended=False), Step.UNTOUCHED, 1),
        # nor does a cancelled one
        (incident(), event(E.CANCELLED), Step.UNTOUCHED, 1),
    ],
)
def test_each_transition_opens_joins_closes_or_leaves_the_kbs_incident(
    before: Incident | None, transition: Transition, step: Step, failures: int | None
) -> None:
    after, found = step_of(before, transition)
    assert found is step
    assert (after.failures if after else None) == failures
    if step is Step.CLOSED:
        assert after is not None and after.closed_at == NOW


def test_events_about_the_watcher_itself_never_touch_an_incident() -> None:
    api = Transition(event_id="api/1", kind=E.API_UNREACHABLE, at=NOW)
    assert step_of(incident(), api) == (incident(), Step.UNTOUCHED)


# --- what the alerts say ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "transition", "failures", "closed", "duration"),
    [
        # the first failure opens an incident since its own API time
        (None, event(E.FAILED), 1, False, None),
        # the third failure in a row says so
        (incident(failures=2), event(E.FAILED), 3, False, None),
        # the closing alert says how long it lasted, on the API's clock: 2h 10m
        (incident(failures=3), event(E.COMPLETED), 3, True, 2 * H + 10 * M),
        # with the API's clock 5 minutes behind the wall's, still the API's 2h 5m
        (incident(), event(E.COMPLETED, api_at=NOW - 5 * M), 1, True, 2 * H + 5 * M),
        # an incident opened without an API time falls back on the wall clock at both ends
        (incident(api_since=None), event(E.COMPLETED, api_at=NOW - 5 * M), 1, True, 2 * H + 10 * M),
    ],
)
def test_each_alert_carries_its_incident_note(
    before: Incident | None,
    transition: Transition,
    failures: int,
    closed: bool,
    duration: timedelta | None,
) -> None:
    opened = {KB: before} if before else {}
    tracked = track(opened, [transition], [Delivery(transition.event_id, "ops")], [], NOW_I)
    told = tracked.transitions[0].incident
    assert told is not None
    assert (told.failures, told.closed, told.duration) == (failures, closed, duration)
    assert told.since == (before.since if before else NOW)


def test_a_kb_whose_incident_closes_and_fails_again_in_one_cycle_opens_a_new_one() -> None:
    done, again = event(E.COMPLETED, "job-2"), event(E.FAILED, "job-3")
    tracked = track({KB: incident()}, [done, again], [], [], NOW_I)
    closed, opened = tracked.incidents  # the closed one first: written before the new one
    assert (closed.id, closed.is_open) == ("incident/job-1/failed", False)
    assert (opened.id, opened.failures, opened.is_open) == ("incident/job-3/failed", 1, True)


def test_the_routes_an_alert_went_to_become_the_incidents_notices() -> None:
    failed = event(E.FAILED)
    deliveries = [Delivery(failed.event_id, "ops"), Delivery(failed.event_id, "mail")]
    (opened,) = track({}, [failed], deliveries, [], NOW_I).incidents
    assert {n.route for n in opened.notices} == {"ops", "mail"}
    assert all(n.first == n.last == NOW_I.elapsed for n in opened.notices)


# --- reminders -------------------------------------------------------------------------------

REMIND = IncidentRule("ops", repeat_after=4 * H)


@pytest.mark.parametrize(
    ("open_incident", "now", "reminders"),
    [
        # last heard 1h ago, reminded every 4h: nothing yet
        (incident(notices=(heard(last=H),)), NOW_I, []),
        # last heard exactly 4h ago: the first reminder
        (incident(notices=(heard(last=4 * H),)), NOW_I, ["incident/job-1/failed/reminder/ops/1"]),
        # after two reminders, the third carries its number
        (
            incident(notices=(heard(last=5 * H, reminders=2),)),
            NOW_I,
            ["incident/job-1/failed/reminder/ops/3"],
        ),
        # the watcher was down for 13h (three periods missed): one reminder, not three
        (incident(notices=(heard(last=13 * H),)), NOW_I, ["incident/job-1/failed/reminder/ops/1"]),
        # the wall clock stepped 10h ahead, the elapsed clock 1h: nothing (no burst)
        (
            incident(notices=(heard(last=H),)),
            Instant(NOW + 10 * H, NOW, NOW_I.elapsed),
            [],
        ),
        # acknowledged: no more reminders
        (incident(notices=(heard(last=5 * H),), ack=Ack("ana", NOW - H)), NOW_I, []),
        # closed: none either
        (incident(notices=(heard(last=5 * H),), closed_at=NOW - M), NOW_I, []),
        # a route without repeat_after is never reminded
        (incident(notices=(heard("mail", last=5 * H),)), NOW_I, []),
        # last heard on another boot: no reminder now, the period starts again
        (
            incident(notices=(heard(last=5 * H),)),
            Instant(NOW, NOW, Elapsed(60.0, "boot-2")),
            [],
        ),
    ],
)
def test_reminders_come_once_a_period_while_an_incident_is_open_and_unacknowledged(
    open_incident: Incident, now: Instant, reminders: list[str]
) -> None:
    tracked = track({KB: open_incident}, [], [], [REMIND], now)
    assert [t.event_id for t in tracked.transitions] == reminders
    assert [(d.event_id, d.route, d.incident) for d in tracked.deliveries] == [
        (r, "ops", open_incident.id) for r in reminders
    ]
    assert all(t.kind is E.REMINDER for t in tracked.transitions)


def test_a_reminder_restarts_the_period_and_counts_itself() -> None:
    tracked = track({KB: incident(notices=(heard(last=5 * H),))}, [], [], [REMIND], NOW_I)
    (after,) = tracked.incidents
    (notice,) = after.notices
    assert (notice.last, notice.reminders) == (NOW_I.elapsed, 1)
    again = track({KB: after}, [], [], [REMIND], NOW_I)
    assert again.transitions == () and again.incidents == ()


def test_a_reboot_starts_the_period_again_from_the_first_cycle_after_it() -> None:
    rebooted = Instant(NOW, NOW, Elapsed(60.0, "boot-2"))
    (after,) = track(
        {KB: incident(notices=(heard(last=5 * H),))}, [], [], [REMIND], rebooted
    ).incidents
    assert after.notices[0].last == rebooted.elapsed


def test_a_new_failure_alert_counts_as_hearing_of_it_and_holds_the_reminder_back() -> None:
    before = incident(notices=(heard(last=5 * H),))
    failed = event(E.FAILED)
    tracked = track({KB: before}, [failed], [Delivery(failed.event_id, "ops")], [REMIND], NOW_I)
    assert [t.kind for t in tracked.transitions] == [E.FAILED]


def test_a_reminder_says_how_long_the_incident_is_open_and_how_many_failed() -> None:
    tracked = track(
        {KB: incident(failures=3, notices=(heard(last=4 * H),))}, [], [], [REMIND], NOW_I
    )
    told = tracked.transitions[0].incident
    assert told is not None
    assert (told.failures, told.duration, told.reminder) == (3, 2 * H + 10 * M, 1)


# --- escalation ------------------------------------------------------------------------------

ESCALATE = IncidentRule("ops", escalate_after=30 * M, escalate_to="pager")


@pytest.mark.parametrize(
    ("open_incident", "now", "escalations"),
    [
        # first heard 10 minutes ago: not yet
        (incident(notices=(heard(first=10 * M, last=10 * M),)), NOW_I, []),
        # first heard 30 minutes ago and not acknowledged: on to the pager route
        (
            incident(notices=(heard(first=30 * M, last=30 * M),)),
            NOW_I,
            [("incident/job-1/failed/escalated/ops", "pager")],
        ),
        # a later failure alert does not put it off: measured from when the route first heard
        (
            incident(notices=(heard(first=40 * M, last=M),)),
            NOW_I,
            [("incident/job-1/failed/escalated/ops", "pager")],
        ),
        # once escalated, never again
        (incident(notices=(heard(first=5 * H, escalated=True),)), NOW_I, []),
        # acknowledged in time: no escalation
        (incident(notices=(heard(first=H),), ack=Ack("ana", NOW - 50 * M)), NOW_I, []),
        # the wall clock stepped an hour ahead, the elapsed clock 10 minutes: not yet
        (
            incident(notices=(heard(first=10 * M, last=10 * M),)),
            Instant(NOW + H, NOW, NOW_I.elapsed),
            [],
        ),
        # another route's notice does not escalate through this rule
        (incident(notices=(heard("mail", first=H),)), NOW_I, []),
    ],
)
def test_an_incident_not_acknowledged_in_time_is_escalated_once(
    open_incident: Incident, now: Instant, escalations: list[tuple[str, str]]
) -> None:
    tracked = track({KB: open_incident}, [], [], [ESCALATE], now)
    assert [(d.event_id, d.route) for d in tracked.deliveries] == escalations
    assert all(t.kind is E.ESCALATED for t in tracked.transitions)
    for t in tracked.transitions:
        assert t.incident is not None
        assert (t.incident.route, t.incident.waited) == ("ops", 30 * M)


def test_an_escalation_is_recorded_so_the_next_cycle_does_not_repeat_it() -> None:
    tracked = track({KB: incident(notices=(heard(first=H),))}, [], [], [ESCALATE], NOW_I)
    (after,) = tracked.incidents
    assert after.notices[0].escalated
    assert track({KB: after}, [], [], [ESCALATE], NOW_I).deliveries == ()


# --- resolved (send_resolved) ----------------------------------------------------------------

OPS, MAIL, PAGER = (
    IncidentRule("ops", escalate_after=30 * M, escalate_to="pager"),
    *(IncidentRule(name) for name in ("mail", "pager")),
)
DONE = event(E.COMPLETED)


@pytest.mark.parametrize(
    ("open_incident", "routed", "resolved"),
    [
        # ops heard the failure and its events leave completed out: it hears it resolved
        (incident(notices=(heard(),)), [], ["ops"]),
        # ops asked for completed: one delivery, not two
        (incident(notices=(heard(),)), ["ops"], ["ops"]),
        # escalated to the pager: the pager hears it resolved too
        (incident(notices=(heard(escalated=True),)), [], ["ops", "pager"]),
        # not escalated: the pager heard nothing, so it is told nothing
        (incident(notices=(heard(),)), [], ["ops"]),
        # a route that never heard of it is not told (mail asked for nothing)
        (incident(notices=(heard("ops"),)), [], ["ops"]),
        # a route since removed from the config is not delivered to
        (incident(notices=(heard("gone"), heard("mail"))), [], ["mail"]),
    ],
)
def test_the_alert_that_closes_an_incident_goes_to_every_route_that_heard_of_it(
    open_incident: Incident, routed: list[str], resolved: list[str]
) -> None:
    deliveries = [Delivery(DONE.event_id, name) for name in routed]
    tracked = track({KB: open_incident}, [DONE], deliveries, [OPS, MAIL, PAGER], NOW_I)
    assert sorted(d.route for d in tracked.deliveries if d.event_id == DONE.event_id) == resolved
    assert all(d.incident is None for d in tracked.deliveries)  # an ack does not hold it back


def test_an_incident_that_stays_open_tells_no_one_it_resolved() -> None:
    failed = event(E.FAILED, "job-3")
    tracked = track({KB: incident(notices=(heard(),))}, [failed], [], [MAIL, PAGER], NOW_I)
    assert tracked.deliveries == ()


def test_an_incident_that_closes_when_a_reminder_or_escalation_is_due_closes_without_either() -> (
    None
):
    due = incident(notices=(heard(first=5 * H, last=5 * H),))
    rules = [IncidentRule("ops", repeat_after=H, escalate_after=H, escalate_to="pager")]
    tracked = track({KB: due}, [event(E.COMPLETED)], [], rules, NOW_I)
    (closed,) = tracked.incidents
    assert not closed.is_open  # written closed, not back open by the reminder's notice
    assert [t.kind for t in tracked.transitions] == [E.COMPLETED]
    assert tracked.deliveries == (Delivery(event(E.COMPLETED).event_id, "ops"),)  # resolved


def test_a_route_told_of_the_closing_jobs_ending_by_recovered_is_not_sent_the_outcome_too() -> None:
    moved = event(E.RECOVERED)  # the same job (job-2) moved and ended: `recovered` as an ending
    deliveries = [Delivery(moved.event_id, "mail")]
    open_incident = incident(notices=(heard("mail"), heard("ops")))
    tracked = track({KB: open_incident}, [moved, DONE], deliveries, [OPS, MAIL, PAGER], NOW_I)
    assert [d.route for d in tracked.deliveries if d.event_id == DONE.event_id] == ["ops"]

"""Silences, table-driven: which silence holds which delivery, and what the end of one announces."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.incident import Ack, Incident
from watcher.core.model import EventKind, Job
from watcher.core.outbox import DeliveryState, OutboxItem
from watcher.core.silences import (
    HeldRow,
    Silence,
    announcement,
    due_announcements,
    held_opener,
    held_rows,
    hold,
    holding,
    unclosed_openers,
)
from watcher.core.state import OpenProblem, Transition

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
E = EventKind
KB1, KB2, KB3 = "kb-1", "kb-2", "kb-3"


def silence(
    sid: str = "s1",
    kb: str | None = None,
    event: EventKind | None = None,
    ends_in: float = 3600,
    **fields: object,
) -> Silence:
    base = Silence(
        id=sid,
        kb_uuid=kb,
        event=event,
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(seconds=ends_in),
        created_by="alice",
        comment="maintenance",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def event(kind: EventKind = E.FAILED, kb: str | None = KB1) -> Transition:
    job = Job(uuid=f"job-{kb}", knowledge_base_uuid=kb) if kind.is_about_a_job else None
    return Transition(event_id=f"{kb}/{kind}", kind=kind, at=NOW, kb_uuid=kb, job=job)


# --- matching ---------------------------------------------------------------------------------

MATCHING = [
    # every KB, every event: holds a job's failure
    (silence(), event(), "s1"),
    # the KB's uuid matches its events
    (silence(kb=KB1), event(), "s1"),
    # another KB's events are not held
    (silence(kb=KB2), event(), None),
    # the event word matches that kind only
    (silence(event=E.FAILED), event(E.FAILED), "s1"),
    (silence(event=E.FAILED), event(E.PARTIAL), None),
    # both matchers must match
    (silence(kb=KB1, event=E.STALLED), event(E.STALLED, KB1), "s1"),
    (silence(kb=KB1, event=E.STALLED), event(E.STALLED, KB2), None),
    (silence(kb=KB1, event=E.STALLED), event(E.FAILED, KB1), None),
    # an event about no KB (the API, a route) is held by a silence of every KB
    (silence(event=E.API_UNREACHABLE), event(E.API_UNREACHABLE, None), "s1"),
    (silence(event=E.DELIVERY_FAILING), event(E.DELIVERY_FAILING, None), "s1"),
    # a silence of an event also holds the event that closes it (nobody hears a lone closer)
    (silence(event=E.API_UNREACHABLE), event(E.API_RECOVERED, None), "s1"),
    (silence(event=E.STALLED, kb=KB1), event(E.RECOVERED, KB1), "s1"),
    (silence(event=E.KNOWLEDGE_BASE_MISSING), event(E.KNOWLEDGE_BASE_FOUND), "s1"),
    (silence(event=E.DELIVERY_FAILING), event(E.DELIVERY_RECOVERED, None), "s1"),
    # ... and never the other way round, nor another closer
    (silence(event=E.API_RECOVERED), event(E.API_UNREACHABLE, None), None),
    (silence(event=E.API_UNREACHABLE), event(E.KNOWLEDGE_BASE_FOUND), None),
    # ... never by a silence of one KB
    (silence(kb=KB1), event(E.API_UNREACHABLE, None), None),
    # a silence that ended holds nothing (its end is exclusive)
    (silence(ends_in=0), event(), None),
    (silence(ends_in=-60), event(), None),
    # one that ends a second from now still holds
    (silence(ends_in=1), event(), "s1"),
    # added on a host whose clock is ahead (it starts "later"): holds at once
    (silence(starts_at=NOW + timedelta(minutes=5)), event(), "s1"),
]


@pytest.mark.parametrize(("the_silence", "the_event", "held_by"), MATCHING)
def test_a_silence_holds_the_events_both_its_matchers_match_until_its_end(
    the_silence: Silence, the_event: Transition, held_by: str | None
) -> None:
    found = holding(the_event, [the_silence], NOW)
    assert (found.id if found else None) == held_by


ROUTE_A = replace(event(E.DELIVERY_FAILING, None), route="a")
HELD_OPENER = [
    # the latest outage was held by s1: its recovery is held by s1 too
    (event(E.API_RECOVERED, None), [(event(E.API_UNREACHABLE, None), "s1")], "s1"),
    # the latest outage was sent: its recovery goes out (an older held one does not count)
    (
        event(E.API_RECOVERED, None),
        [(event(E.API_UNREACHABLE, None), None), (event(E.API_UNREACHABLE, None), "s1")],
        None,
    ),
    # no opener on the route (it was not routed there): the closer goes out
    (event(E.API_RECOVERED, None), [], None),
    # a stall held on another KB's job says nothing about this job's recovery
    (event(E.RECOVERED, KB1), [(event(E.STALLED, KB2), "s1")], None),
    (event(E.RECOVERED, KB1), [(event(E.STALLED, KB2), "s2"), (event(E.STALLED, KB1), "s1")], "s1"),
    # a route's failing held: its own recovery is held, another route's is not
    (replace(event(E.DELIVERY_RECOVERED, None), route="a"), [(ROUTE_A, "s1")], "s1"),
    (replace(event(E.DELIVERY_RECOVERED, None), route="b"), [(ROUTE_A, "s1")], None),
    # an event that closes nothing is never held this way
    (event(E.COMPLETED), [(event(E.FAILED), "s1")], None),
]


@pytest.mark.parametrize(("closer", "earlier", "held_by"), HELD_OPENER)
def test_a_closer_is_held_by_the_silence_that_held_the_latest_opener_it_closes(
    closer: Transition, earlier: list[tuple[Transition, str | None]], held_by: str | None
) -> None:
    assert held_opener(closer, earlier) == held_by


UNCLOSED = [
    # an outage held and not over: sent when the silence ends
    ([(1, "ops", event(E.API_UNREACHABLE, None))], [1]),
    # held and over within the silence: neither is sent
    ([(1, "ops", event(E.API_UNREACHABLE, None)), (2, "ops", event(E.API_RECOVERED, None))], []),
    # over on one route only: the other route still hears of it
    ([(1, "a", event(E.API_UNREACHABLE, None)), (2, "b", event(E.API_UNREACHABLE, None)),
      (3, "a", event(E.API_RECOVERED, None))], [2]),
    # a second outage after the first was over: the second is sent
    ([(1, "ops", event(E.API_UNREACHABLE, None)), (2, "ops", event(E.API_RECOVERED, None)),
      (3, "ops", event(E.API_UNREACHABLE, None))], [3]),
    # a KB still missing is sent; another KB found closes nothing of it
    ([(1, "ops", event(E.KNOWLEDGE_BASE_MISSING, KB1)),
      (2, "ops", event(E.KNOWLEDGE_BASE_FOUND, KB2))], [1]),
    # a route's failing, closed by that route's recovery only
    ([(1, "ops", ROUTE_A), (2, "ops", replace(event(E.DELIVERY_RECOVERED, None), route="b"))],
     [1]),
    # a job's problems are the announcement's (its latest job), never released
    ([(1, "ops", event(E.STALLED)), (2, "ops", event(E.FAILED))], []),
]  # fmt: skip


@pytest.mark.parametrize(("held", "released"), UNCLOSED)
def test_the_end_of_a_silence_sends_the_outages_it_held_that_nothing_held_closed(
    held: list[tuple[int, str, Transition]], released: list[int]
) -> None:
    assert unclosed_openers(held) == released


OVERLAPS = [
    # of two matching silences, the one that ends last holds (its end is when it comes back)
    ([silence("a", ends_in=600), silence("b", kb=KB1, ends_in=7200)], "b"),
    ([silence("a", ends_in=7200), silence("b", kb=KB1, ends_in=600)], "a"),
    # the same end: the smaller id, so every process picks the same one
    ([silence("b", ends_in=600), silence("a", ends_in=600)], "a"),
    # an ended one never wins over an active one
    ([silence("a", ends_in=-1), silence("b", ends_in=60)], "b"),
    # none matches
    ([silence("a", kb=KB2), silence("b", event=E.PARTIAL)], None),
]


@pytest.mark.parametrize(("silences", "held_by"), OVERLAPS)
def test_of_several_matching_silences_the_one_that_ends_last_holds(
    silences: list[Silence], held_by: str | None
) -> None:
    found = holding(event(), silences, NOW)
    assert (found.id if found else None) == held_by


def item(n: int, transition: Transition, attempts: int = 0) -> OutboxItem:
    return OutboxItem(n, "ops", transition, "c", NOW, attempts=attempts)


def test_hold_keeps_the_order_of_what_goes_and_settles_what_is_held_as_silenced() -> None:
    """Held rows are recorded silenced, with the silence, their attempts unspent."""
    rows = [item(1, event(kb=KB1)), item(2, event(kb=KB2), attempts=3), item(3, event(kb=KB3))]
    send, held = hold(rows, [silence("s9", kb=KB2)], NOW)
    assert [r.id for r in send] == [1, 3]
    [h] = held
    settled = h.settlement(NOW)
    assert (settled.outbox_id, settled.state, settled.silence_id) == (
        2,
        DeliveryState.SILENCED,
        "s9",
    )
    assert settled.attempts == 3 and settled.at == NOW


def test_hold_without_silences_sends_everything() -> None:
    rows = [item(1, event())]
    assert hold(rows, [], NOW) == (rows, [])


DUE = [
    # active: not yet
    ([silence("a")], []),
    # ended, not announced: due
    ([silence("a", ends_in=-1)], ["a"]),
    # ended exactly now: due
    ([silence("a", ends_in=0)], ["a"]),
    # ended and announced already: never again
    ([silence("a", ends_in=-1, announced_at=NOW)], []),
    # several: the oldest end first
    ([silence("b", ends_in=-1), silence("a", ends_in=-60)], ["a", "b"]),
]


@pytest.mark.parametrize(("silences", "due"), DUE)
def test_a_silence_is_announced_once_after_it_ended(
    silences: list[Silence], due: list[str]
) -> None:
    assert [s.id for s in due_announcements(silences, NOW)] == due


# --- what is still open: the KB's open incident ----------------------------------------------

SINCE = NOW - timedelta(hours=5)


def incident(kb: str, name: str, kind: EventKind = E.FAILED, **fields: object) -> Incident:
    base = Incident(
        id=f"incident/{kb}",
        kb_uuid=kb,
        kb_name=name,
        opened_at=SINCE + timedelta(minutes=1),
        api_since=SINCE,
        failures=3,
        last_kind=kind,
        last_job_uuid=f"job-{kb}",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


ACKED = Ack("ana", NOW - timedelta(hours=1), "on it")

OPEN = [
    # its latest job failed and its incident is open: announced, with the incident's count,
    # since when (the API's clock) and latest problem
    (incident(KB1, "docs"), OpenProblem(KB1, E.FAILED, "docs", "job-kb-1", 3, SINCE)),
    # its retry is running (no outcome yet) but the incident is still open: announced
    # (the latest job says nothing yet; the incident closes only on a success)
    (
        incident(KB1, "docs", E.STALLED),
        OpenProblem(KB1, E.STALLED, "docs", "job-kb-1", 3, SINCE),
    ),
    # acknowledged: announced, saying who acknowledged it and when
    (
        incident(KB1, "docs", ack=ACKED),
        OpenProblem(KB1, E.FAILED, "docs", "job-kb-1", 3, SINCE, "ana", ACKED.at),
    ),
    # no API time known: since when on the wall clock
    (
        incident(KB1, "docs", E.PARTIAL, api_since=None, failures=1),
        OpenProblem(KB1, E.PARTIAL, "docs", "job-kb-1", 1, SINCE + timedelta(minutes=1)),
    ),
    # its latest job failed but its incident is closed (it recovered and that failure is not
    # an incident of its own): not announced
    (incident(KB1, "docs", closed_at=NOW - timedelta(minutes=5)), None),
    # no incident at all (whatever its latest job): not announced
    (None, None),
]


@pytest.mark.parametrize(("found", "problem"), OPEN)
def test_a_held_kb_is_announced_while_it_has_an_open_incident_whatever_its_latest_job(
    found: Incident | None, problem: OpenProblem | None
) -> None:
    incidents = {KB1: found} if found is not None else {}
    transitions, _ = announcement(silence(ends_in=-1), [HeldRow("ops", KB1)], incidents, NOW)
    assert [p for t in transitions for p in t.open_problems] == ([problem] if problem else [])


# --- the announcement -------------------------------------------------------------------------

INCIDENTS = {
    KB1: incident(KB1, "docs"),
    KB2: incident(KB2, "wiki", E.STALLED),
    KB3: incident(KB3, "faq", closed_at=NOW - timedelta(hours=1)),
}

ANNOUNCE = [
    # one route held one KB whose incident is open: one message naming it
    ([HeldRow("ops", KB1)], {"ops": [KB1]}),
    # its incident closed meanwhile: nothing at all
    ([HeldRow("ops", KB3)], {}),
    # two alerts of one KB to one route: the KB once
    ([HeldRow("ops", KB1), HeldRow("ops", KB1)], {"ops": [KB1]}),
    # one message per route, each listing its own KBs still open (by name)
    (
        [HeldRow("ops", KB2), HeldRow("ops", KB1), HeldRow("pager", KB2), HeldRow("ops", KB3)],
        {"ops": [KB1, KB2], "pager": [KB2]},
    ),
    # a route whose KBs all recovered gets nothing, the others theirs
    ([HeldRow("ops", KB3), HeldRow("pager", KB1)], {"pager": [KB1]}),
    # events about no KB (api_unreachable) announce nothing: their recovery tells its own
    ([HeldRow("ops", None)], {}),
    # a KB with no incident (or one the store forgot) counts as recovered
    ([HeldRow("ops", "kb-gone")], {}),
    # nothing held: nothing to say
    ([], {}),
]


@pytest.mark.parametrize(("held", "expected"), ANNOUNCE)
def test_the_end_of_a_silence_announces_per_route_the_held_kbs_still_open(
    held: list[HeldRow], expected: dict[str, list[str]]
) -> None:
    ended = silence("s1", ends_in=-1)
    transitions, deliveries = announcement(ended, held, INCIDENTS, NOW)
    assert {d.route: d.event_id for d in deliveries} == {
        r: f"silence/s1/ended/{r}" for r in expected
    }
    by_id = {t.event_id: t for t in transitions}
    for d in deliveries:
        t = by_id[d.event_id]
        assert t.kind is E.SILENCE_ENDED and t.silence_id == "s1" and t.at == NOW
        assert [p.kb_uuid for p in t.open_problems] == expected[d.route]
    assert len(transitions) == len(deliveries)


def test_the_announcement_carries_the_comment_and_each_incident_with_its_latest_job() -> None:
    [t], _ = announcement(silence(ends_in=-1), [HeldRow("ops", KB1)], INCIDENTS, NOW)
    assert t.detail == "maintenance"
    assert t.open_problems == (OpenProblem(KB1, E.FAILED, "docs", "job-kb-1", 3, SINCE),)


def test_an_announcement_another_silence_held_hides_the_kbs_it_listed() -> None:
    """So when that silence ends, those problems are announced in turn (if still open)."""
    problems = (OpenProblem(KB1, E.FAILED, "docs"), OpenProblem(KB2, E.STALLED, "wiki"))
    held_announcement = Transition(
        "silence/x/ended/ops", E.SILENCE_ENDED, NOW, open_problems=problems
    )
    assert held_rows("ops", held_announcement) == [
        HeldRow("ops", KB1, "docs"),
        HeldRow("ops", KB2, "wiki"),
    ]
    assert held_rows("ops", event(kb=KB3)) == [HeldRow("ops", KB3, None)]

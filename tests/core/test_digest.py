"""Digests, table-driven: when a slot is due (wall clock in the schedule's timezone, DST in
Berlin and New York), what a missed slot does, and what a digest says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from watcher.core.digest import (
    DigestDue,
    DigestSchedule,
    KbLatest,
    Period,
    digest_text,
    due,
    latest_slot,
    summarize,
)
from watcher.core.incident import Ack, Incident
from watcher.core.model import EventKind, Job, Phase, Status
from watcher.core.state import Transition

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DAILY_9_BERLIN = DigestSchedule(Period.DAILY, 9 * 60, BERLIN)
MONDAY_9_BERLIN = DigestSchedule(Period.WEEKLY, 9 * 60, BERLIN, weekday=0)
DAILY_0230_BERLIN = DigestSchedule(Period.DAILY, 2 * 60 + 30, BERLIN)  # in the DST hours
DAILY_0130_NEW_YORK = DigestSchedule(Period.DAILY, 90, NEW_YORK)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("schedule", "now", "slot"),
    [
        # Tuesday 2026-12-01 10:00 CET: today's 09:00 CET (08:00 UTC)
        (DAILY_9_BERLIN, utc(2026, 12, 1, 9, 0), utc(2026, 12, 1, 8, 0)),
        # 08:59 CET: yesterday's
        (DAILY_9_BERLIN, utc(2026, 12, 1, 7, 59), utc(2026, 11, 30, 8, 0)),
        # exactly 09:00 CET: today's
        (DAILY_9_BERLIN, utc(2026, 12, 1, 8, 0), utc(2026, 12, 1, 8, 0)),
        # summer: 09:00 CEST is 07:00 UTC
        (DAILY_9_BERLIN, utc(2026, 7, 1, 12, 0), utc(2026, 7, 1, 7, 0)),
        # weekly on Mondays, asked on Tuesday: Monday's 09:00
        (MONDAY_9_BERLIN, utc(2026, 12, 1, 9, 0), utc(2026, 11, 30, 8, 0)),
        # weekly, asked on Monday 08:00 CET: the Monday before
        (MONDAY_9_BERLIN, utc(2026, 11, 30, 7, 0), utc(2026, 11, 23, 8, 0)),
        # Berlin, 2026-03-29: 02:30 does not exist; the slot is the jump (01:00 UTC = 03:00)
        (DAILY_0230_BERLIN, utc(2026, 3, 29, 2, 0), utc(2026, 3, 29, 1, 0)),
        # Berlin, 2026-10-25: 02:30 happens twice; the slot is the first (00:30 UTC)
        (DAILY_0230_BERLIN, utc(2026, 10, 25, 1, 45), utc(2026, 10, 25, 0, 30)),
        # New York, 2026-11-01: 01:30 happens twice (EDT 05:30 UTC, EST 06:30 UTC): the first
        (DAILY_0130_NEW_YORK, utc(2026, 11, 1, 7, 0), utc(2026, 11, 1, 5, 30)),
        # New York, 2026-03-08: 01:30 EST, the day the clocks jump at 02:00: 06:30 UTC
        (DAILY_0130_NEW_YORK, utc(2026, 3, 8, 8, 0), utc(2026, 3, 8, 6, 30)),
    ],
)
def test_the_latest_slot_is_the_last_scheduled_wall_clock_time_before_now(
    schedule: DigestSchedule, now: datetime, slot: datetime
) -> None:
    assert latest_slot(schedule, now) == slot


TODAY_9 = utc(2026, 12, 1, 8, 0)
YESTERDAY_9 = TODAY_9 - timedelta(days=1)


@pytest.mark.parametrize(
    ("now", "mark", "expected"),
    [
        # the first run: only mark the last slot, send nothing
        (TODAY_9 + timedelta(hours=1), None, DigestDue(TODAY_9, None, send=False)),
        # the slot passed since the last digest: one digest for [last, slot)
        (TODAY_9 + timedelta(minutes=1), YESTERDAY_9, DigestDue(TODAY_9, YESTERDAY_9)),
        # already sent for this slot: nothing
        (TODAY_9 + timedelta(hours=3), TODAY_9, None),
        # down for three days: one digest covering them all, not three
        (
            TODAY_9 + timedelta(hours=2),
            TODAY_9 - timedelta(days=3),
            DigestDue(TODAY_9, TODAY_9 - timedelta(days=3)),
        ),
        # the wall clock stepped back before the last slot: nothing, never a repeat
        (TODAY_9 - timedelta(hours=2), TODAY_9, None),
        # a slot marked while the wall clock was a year ahead (then set right): marked again
        # at the last real slot, silently; else no digest would come for a year
        (
            TODAY_9 + timedelta(hours=1),
            TODAY_9 + timedelta(days=365),
            DigestDue(TODAY_9, None, send=False),
        ),
        # a mark less than a period ahead: waited for, as after a small step (never a repeat)
        (TODAY_9 + timedelta(hours=1), TODAY_9 + timedelta(hours=23), None),
    ],
)
def test_a_digest_is_due_once_per_slot_and_once_for_slots_missed_while_down(
    now: datetime, mark: datetime | None, expected: DigestDue | None
) -> None:
    assert due(DAILY_9_BERLIN, now, mark) == expected


def outcome(
    kind: EventKind, kb: str, job: str, minutes: int, tokens: int, detail: str = ""
) -> Transition:
    status = {EventKind.COMPLETED: Status.COMPLETED, EventKind.FAILED: Status.FAILED}[kind]
    started = TODAY_9 - timedelta(hours=3)
    return Transition(
        event_id=f"{job}/{kind}",
        kind=kind,
        at=started + timedelta(minutes=minutes),
        kb_uuid=kb,
        kb_name=f"{kb}-name",
        job=Job(
            uuid=job,
            phase=Phase.SUCCEEDED if kind is EventKind.COMPLETED else Phase.FAILED,
            status=status,
            started_at=started,
            finished_at=started + timedelta(minutes=minutes),
            total_tokens=tokens,
        ),
        detail=detail or None,
    )


def incident(kb: str, failures: int, *, ack: Ack | None = None, closed: bool = False) -> Incident:
    return Incident(
        id=f"incident/{kb}",
        kb_uuid=kb,
        kb_name=None,
        opened_at=utc(2026, 12, 1, 5, 12),
        api_since=utc(2026, 12, 1, 5, 10),
        failures=failures,
        last_kind=EventKind.STALLED,
        last_job_uuid="j",
        closed_at=utc(2026, 12, 1, 6) if closed else None,
        ack=ack,
    )


ANA = Ack("ana", utc(2026, 12, 1, 6, 30), "on it,\nretrying")


@pytest.mark.parametrize(
    ("latest", "incidents", "lines"),
    [
        # the open incidents, not the KBs whose latest job went wrong: wiki's retry is running,
        # its incident is still open (3 in a row, since 06:10 Berlin, acknowledged by ana)
        (
            [KbLatest("wiki", "wiki-name", "j2", None)],
            [incident("wiki", 3, ack=ANA)],
            [
                "Open incident: wiki-name, 3 failures in a row since Tue 01 Dec 06:10"
                " (latest stalled); acknowledged by ana at Tue 01 Dec 07:30: on it, retrying"
            ],
        ),
        # docs' latest job failed but no incident is open (closed): nothing open
        (
            [KbLatest("docs", "docs-name", "j", EventKind.FAILED)],
            [incident("docs", 1, closed=True)],
            ["Open incidents: none."],
        ),
        # one not acknowledged, its name from the incident's KB uuid when the KB is unknown
        (
            [],
            [incident("gone", 1)],
            [
                "Open incident: gone, 1 failure in a row since Tue 01 Dec 06:10"
                " (latest stalled); not acknowledged"
            ],
        ),
    ],
)
def test_a_digest_lists_the_open_incidents_with_since_when_how_many_and_who_acknowledged(
    latest: list[KbLatest], incidents: list[Incident], lines: list[str]
) -> None:
    text = digest_text(summarize([], latest, YESTERDAY_9, TODAY_9, incidents), DAILY_9_BERLIN)
    assert text.splitlines()[2:] == lines


def test_a_digest_tells_per_kb_the_outcomes_failures_tokens_and_the_slowest_job() -> None:
    outcomes = [
        outcome(EventKind.COMPLETED, "docs", "d1", 10, 1000),
        outcome(EventKind.COMPLETED, "docs", "d2", 45, 2500),
        outcome(EventKind.FAILED, "wiki", "w1", 3, 0, "FILE_PARSE_ERROR"),
    ]
    latest = [KbLatest("docs", "docs-name", "d2", EventKind.COMPLETED)]
    latest.append(KbLatest("wiki", "wiki-name", "w1", EventKind.FAILED))
    wiki = incident("wiki", 1)
    text = digest_text(summarize(outcomes, latest, YESTERDAY_9, TODAY_9, [wiki]), DAILY_9_BERLIN)
    assert text.splitlines() == [
        "Indexing digest (daily 09:00 Europe/Berlin): Mon 30 Nov 09:00 to Tue 01 Dec 09:00",
        "docs-name: 2 jobs (2 completed); 3,500 tokens; slowest 45m 00s (job d2)",
        "wiki-name: 1 job (1 failed); 0 tokens; slowest 3m 00s (job w1)",
        "wiki-name: job w1 failed: FILE_PARSE_ERROR",
        "Open incident: wiki-name, 1 failure in a row since Tue 01 Dec 06:10 (latest stalled);"
        " not acknowledged",
    ]


def test_a_quiet_period_says_so() -> None:
    text = digest_text(summarize([], [], YESTERDAY_9, TODAY_9), DAILY_9_BERLIN)
    assert "No indexing job finished in this period." in text
    assert "Open incidents: none." in text


def corrected(first: Transition, kind: EventKind, minutes: int, tokens: int) -> Transition:
    """The job's real outcome after `first` was corrected (`job/failed/2`)."""
    again = outcome(kind, first.kb_uuid or "", first.job_uuid or "", minutes, tokens)
    return Transition(**{**_fields(again), "event_id": f"{again.event_id}/2"})


def _fields(t: Transition) -> dict[str, object]:
    return {name: getattr(t, name) for name in Transition.__dataclass_fields__}


@pytest.mark.parametrize(
    ("outcomes", "scope", "lines"),
    [
        # a job told completed, then corrected and failed: ONE job, its last outcome, its tokens
        (
            [
                outcome(EventKind.COMPLETED, "docs", "d1", 10, 1000),
                corrected(
                    outcome(EventKind.COMPLETED, "docs", "d1", 10, 1000), EventKind.FAILED, 30, 1500
                ),
            ],
            frozenset({"*"}),
            ["docs-name: 1 job (1 failed); 1,500 tokens; slowest 30m 00s (job d1)"],
        ),
        # a route for docs alone hears of docs alone (not of wiki, nor that wiki needs attention)
        (
            [
                outcome(EventKind.COMPLETED, "docs", "d1", 10, 1000),
                outcome(EventKind.FAILED, "wiki", "w1", 3, 0, "FILE_PARSE_ERROR"),
            ],
            frozenset({"docs-name"}),
            ["docs-name: 1 job (1 completed); 1,000 tokens; slowest 10m 00s (job d1)"],
        ),
    ],
)
def test_a_digest_counts_each_job_once_and_only_the_routes_knowledge_bases(
    outcomes: list[Transition], scope: frozenset[str], lines: list[str]
) -> None:
    latest = [KbLatest("docs", "docs-name", "d1", EventKind.COMPLETED)]
    latest.append(KbLatest("wiki", "wiki-name", "w1", EventKind.FAILED))
    wiki = [incident("wiki", 1)]  # wiki's open incident is no news to a route for docs alone
    digest = summarize(outcomes, latest, YESTERDAY_9, TODAY_9, wiki, knowledge_bases=scope)
    text = digest_text(digest, DAILY_9_BERLIN).splitlines()
    assert [line for line in text if line.startswith(("docs", "wiki"))][: len(lines)] == lines
    assert all("wiki" not in line for line in text) or "*" in scope

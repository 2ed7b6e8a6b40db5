"""Golden files pin every rendered alert: each event kind, a grouped alert, the test alert and a
hostile one, in each body format (markdown, text, html), title included.

A change to how alerts read shows up here as a diff to review. To accept it, regenerate the
files and look at `git diff tests/core/golden/` before committing:

    WATCHER_UPDATE_GOLDEN=1 python -m pytest tests/core/test_render_golden.py
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from watcher.core.clocks import Instant
from watcher.core.cost import JobCost, Spike
from watcher.core.digest import (
    DigestDue,
    DigestSchedule,
    KbLatest,
    Period,
    digest_text,
    digest_transition,
    summarize,
)
from watcher.core.incident import Ack, Incident, IncidentNote
from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Status
from watcher.core.outbox import BodyFormat, Budget, Message
from watcher.core.quiet import render_released
from watcher.core.render import render, render_group, render_test
from watcher.core.report import ErrorSummary, ReportFate, report_note
from watcher.core.schedules import (
    Freshness,
    KbWatch,
    Schedule,
    ScheduleRules,
    judge,
    read_schedule,
)
from watcher.core.state import OpenProblem, StallReason, Transition

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("WATCHER_UPDATE_GOLDEN") == "1"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SUFFIX = {BodyFormat.MARKDOWN: "md", BodyFormat.TEXT: "txt", BodyFormat.HTML: "html"}
KB = "0c6b9a8e-1d2f-4a3b-9c8d-7e6f5a4b3c2d"
HOSTILE = "[EU] <prod> **docs** & \x1b]0;owned\x07\x1b[2J\nCOMPLETED \u202etxt.exe # `x`"

_STATUS = {
    EventKind.STARTED: (Phase.RUNNING, Status.IN_PROGRESS),
    EventKind.COMPLETED: (Phase.SUCCEEDED, Status.COMPLETED),
    EventKind.NO_CHANGES: (Phase.SUCCEEDED, Status.NO_CHANGES),
    EventKind.PARTIAL: (Phase.SUCCEEDED, Status.PARTIAL),
    EventKind.FAILED: (Phase.FAILED, Status.FAILED),
    EventKind.CANCELLED: (Phase.CANCELLED, Status.CANCELLED),
    EventKind.STALLED: (Phase.RUNNING, Status.IN_PROGRESS),
    EventKind.RECOVERED: (Phase.RUNNING, Status.IN_PROGRESS),
    EventKind.CORRECTED: (Phase.RUNNING, Status.IN_PROGRESS),
    EventKind.COST_SPIKE: (Phase.SUCCEEDED, Status.COMPLETED),
    EventKind.REMEDIATED: (Phase.RUNNING, Status.IN_PROGRESS),
    EventKind.DIGEST: (Phase.RUNNING, Status.IN_PROGRESS),
}
COST = JobCost(tokens=48_210, per_million=0.09, amount=0.0043389, model="GTE Large EN v1.5")


def job_for(kind: EventKind) -> Job:
    phase, status = _STATUS[kind]
    done = kind.is_terminal
    bad = kind in (EventKind.FAILED, EventKind.PARTIAL)
    return Job(
        uuid="5f0e3c2a-9b8d-4e7f-a6b5-c4d3e2f1a0b9",
        knowledge_base_uuid=KB,
        phase=phase,
        status=status,
        created_at=NOW - timedelta(minutes=15),
        started_at=NOW - timedelta(minutes=14, seconds=30),
        finished_at=NOW if done else None,
        updated_at=NOW,
        completed_datasources=1 if bad else 2,
        total_datasources=2,
        total_tokens=48_210,
        data_source_jobs=(
            DataSourceJob(
                data_source_uuid="d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a",
                status=DataSourceStatus.UPDATED,
                indexed_item_count=180,
            ),
            DataSourceJob(
                data_source_uuid="a9b8c7d6-e5f4-4a3b-2c1d-0e9f8a7b6c5d",
                status=DataSourceStatus.FAILED if bad else DataSourceStatus.UPDATED,
                indexed_item_count=12 if bad else 40,
                failed_item_count=28 if bad else 0,
                error_msg="FILE_PARSE_ERROR" if bad else None,
                error_details="28 PDF files could not be parsed" if bad else None,
            ),
        ),
    )


def kb_event(kind: EventKind) -> Transition:
    """A schedule or freshness event, made by the rules themselves (`core/schedules.py`)."""
    now = Instant.aligned(NOW)
    run = NOW - timedelta(minutes=42)
    daily = Schedule(uuid="s", is_active=True, next_run_at=run, updated_at=NOW)
    rules = ScheduleRules(freshness=Freshness(default=timedelta(hours=26)))
    watch = KbWatch(kb_uuid=KB, since=NOW - timedelta(days=30), schedule=daily)
    last = NOW - timedelta(hours=27, minutes=5)
    match kind:
        case EventKind.SCHEDULE_MISSED:
            events = judge(replace(watch, due_run=run, last_success=NOW), [], now, rules)[1]
        case EventKind.SCHEDULE_DISABLED:
            events = read_schedule(watch, replace(daily, is_active=False), now)[1]
        case EventKind.STALE:
            events = judge(replace(watch, last_success=last), [], now, rules)[1]
        case _:
            stale = replace(watch, last_success=last, stale_from=last)
            done = replace(job_for(EventKind.COMPLETED), finished_at=NOW - timedelta(minutes=3))
            events = judge(stale, [done], now, rules)[1]
    (event,) = [e for e in events if e.kind is kind]
    return replace(event, kb_name="product-docs")


def note(kind: EventKind) -> IncidentNote:
    """The incident a reminder or an escalation tells of: 3 failures since 2h 10m ago."""
    escalated = kind is EventKind.ESCALATED
    return IncidentNote(
        id="incident/5f0e3c2a-9b8d-4e7f-a6b5-c4d3e2f1a0b9/failed",
        failures=3,
        since=NOW - timedelta(hours=2, minutes=10),
        last_kind=EventKind.FAILED,
        duration=timedelta(hours=2, minutes=10),
        route="ops" if escalated else None,
        waited=timedelta(minutes=30) if escalated else None,
        reminder=None if escalated else 2,
    )


def transition(kind: EventKind, **extra: object) -> Transition:
    if kind is EventKind.SILENCE_ENDED:
        problems = (
            OpenProblem(
                KB,
                EventKind.FAILED,
                "product-docs",
                "5f0e3c2a-9b8d-4e7f-a6b5-c4d3e2f1a0b9",
                failures=3,
                since=NOW - timedelta(hours=5, minutes=10),
            ),
            OpenProblem(
                "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                EventKind.STALLED,
                "wiki (EU)",
                failures=1,
                since=NOW - timedelta(hours=2),
                acked_by="ana",
                acked_at=NOW - timedelta(hours=1, minutes=30),
            ),
        )
        fields = {
            "event_id": "silence/4f2a9c01d3/ended/ops",
            "kind": kind,
            "at": NOW,
            "detail": "DO maintenance window, ticket OPS-112",
            "silence_id": "4f2a9c01d3",
            "open_problems": problems,
        }
        return Transition(**{**fields, **extra})  # type: ignore[arg-type]
    if kind in (EventKind.REMINDER, EventKind.ESCALATED):
        return Transition(
            event_id=f"incident/{kind}",
            kind=kind,
            at=NOW,
            kb_uuid=KB,
            kb_name="product-docs",
            api_at=NOW,
            incident=note(kind),
        )
    if kind is EventKind.DIGEST:
        return digest_transition("ops", DigestDue(NOW, NOW - timedelta(days=1)), DIGEST_TEXT, NOW)
    if kind in (
        EventKind.SCHEDULE_MISSED,
        EventKind.SCHEDULE_DISABLED,
        EventKind.STALE,
        EventKind.FRESH,
    ):
        return kb_event(kind)
    if kind in (EventKind.API_UNREACHABLE, EventKind.API_RECOVERED):
        detail = (
            "The API has not answered properly for 12 min: HTTP 503 service_unavailable"
            if kind is EventKind.API_UNREACHABLE
            else None
        )
        return Transition(event_id=f"api/{kind}", kind=kind, at=NOW, detail=detail)
    if kind in (EventKind.DELIVERY_FAILING, EventKind.DELIVERY_RECOVERED):
        failing = (
            "Alerts to route 'ops' have not got through for 12 min: E-Mail "
            "mailto://****@smtp.example.com: credentials refused (SMTP 535)"
        )
        detail = failing if kind is EventKind.DELIVERY_FAILING else "Alerts get through again."
        return Transition(
            event_id=f"delivery/{kind}", kind=kind, at=NOW, route="ops", detail=detail
        )
    if kind in (EventKind.KNOWLEDGE_BASE_MISSING, EventKind.KNOWLEDGE_BASE_FOUND):
        detail = "Not found in the account since 2026-11-28T11:48:00+00:00: the uuid has a typo"
        return Transition(
            event_id=f"kb/{kind}",
            kind=kind,
            at=NOW,
            kb_uuid=KB,
            kb_name="product-docs",
            detail=detail if kind is EventKind.KNOWLEDGE_BASE_MISSING else "Listed again.",
        )
    if kind in (EventKind.DATABASE_UNHEALTHY, EventKind.DATABASE_RECOVERED):
        status = "POWEROFF" if kind is EventKind.DATABASE_UNHEALTHY else "ONLINE"
        return Transition(
            event_id=f"database/{kind}",
            kind=kind,
            at=NOW,
            kb_uuid=KB,
            kb_name="product-docs",
            database_status=status,
        )
    if kind is EventKind.COST_SPIKE:
        spike = Spike(amount=0.0043389, median=0.0009, ratio=4.821, factor=3.0)
        extra = {"cost": COST, "detail": spike.text(), **extra}
    if kind is EventKind.REMEDIATED:
        done = (
            "Cancelled the stalled job. Started a new indexing job "
            "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d. (attempt 1 for this incident)"
        )
        return Transition(
            event_id=f"job/{kind}/1",
            kind=kind,
            at=NOW,
            kb_uuid=KB,
            kb_name="product-docs",
            job=Job(uuid="5f0e3c2a-9b8d-4e7f-a6b5-c4d3e2f1a0b9", knowledge_base_uuid=KB),
            detail=done,
            api_at=NOW,
        )
    if kind is EventKind.CORRECTED:
        extra = {
            "detail": "This job was reported completed; the API now reports it running "
            "(updated 2026-11-28T11:59:00+00:00, after the answer it was judged on, updated "
            "2026-11-28T11:55:00+00:00).",
            "corrects": EventKind.COMPLETED,
            **extra,
        }
    stall = StallReason.NO_PROGRESS if kind in (EventKind.STALLED, EventKind.RECOVERED) else None
    fields: dict[str, object] = {
        "event_id": f"job/{kind}",
        "kind": kind,
        "at": NOW,
        "kb_uuid": KB,
        "kb_name": "product-docs",
        "job": job_for(kind),
        "stall_reason": stall,
    }
    return Transition(**{**fields, **extra})  # type: ignore[arg-type]


BERLIN_NINE = DigestSchedule(Period.DAILY, 9 * 60, ZoneInfo("Europe/Berlin"))
DIGEST_TEXT = digest_text(
    summarize(
        [
            replace(  # an earlier job of the KB (one job counts once, by its last outcome)
                transition(EventKind.COMPLETED),
                event_id="a",
                job=replace(
                    job_for(EventKind.COMPLETED), uuid="0e9d8c7b-6a5f-4e3d-8c1b-0a9f8e7d6c5b"
                ),
            ),
            replace(transition(EventKind.FAILED), event_id="b", detail="FILE_PARSE_ERROR"),
        ],
        [KbLatest(KB, "product-docs", "5f0e3c2a-9b8d-4e7f-a6b5-c4d3e2f1a0b9", EventKind.FAILED)],
        NOW - timedelta(days=1),
        NOW,
        [
            Incident(  # the open incident the failure opened, acknowledged
                id="incident/b",
                kb_uuid=KB,
                kb_name="product-docs",
                opened_at=NOW - timedelta(hours=2),
                api_since=NOW - timedelta(hours=2, minutes=10),
                failures=2,
                last_kind=EventKind.FAILED,
                last_job_uuid="5f0e3c2a-9b8d-4e7f-a6b5-c4d3e2f1a0b9",
                ack=Ack("ana", NOW - timedelta(hours=1), "re-uploading the PDFs"),
            )
        ],
    ),
    BERLIN_NINE,
)
CASES: dict[str, Message] = {kind.value: render(transition(kind)) for kind in EventKind}
CASES["group"] = render_group(
    [transition(EventKind.COMPLETED), transition(EventKind.FAILED, kb_name="wiki (EU)")]
)
CASES["test_alert"] = render_test(NOW)
# the 3rd failure in a row, and the completed job that resolves the incident
CASES["failed_third_in_a_row"] = render(
    transition(EventKind.FAILED, incident=replace(note(EventKind.FAILED), duration=None))
)
CASES["completed_resolved"] = render(
    transition(EventKind.COMPLETED, incident=replace(note(EventKind.COMPLETED), closed=True))
)
CASES["completed_priced"] = render(transition(EventKind.COMPLETED, cost=COST))
# a running job seen stalled at `api_at` (DigitalOcean's clock): the ETA from its progress
_RUNNING = replace(
    job_for(EventKind.STALLED),
    completed_datasources=1,
    data_source_jobs=tuple(
        replace(ds, status=DataSourceStatus.IN_PROGRESS, indexed_file_count=n, total_file_count=60)
        for ds, n in zip(job_for(EventKind.STALLED).data_source_jobs, (30, 0), strict=True)
    ),
)
CASES["stalled_eta"] = render(transition(EventKind.STALLED, job=_RUNNING, api_at=NOW))
# Held during quiet hours: a job that stalled then completed (one line), a failure, and the
# API unreachable then reachable again (resolved while held).
CASES["released"] = render_released(
    [
        transition(EventKind.STALLED, at=NOW - timedelta(hours=6)),
        replace(transition(EventKind.API_UNREACHABLE), at=NOW - timedelta(hours=5)),
        replace(transition(EventKind.API_RECOVERED), at=NOW - timedelta(hours=4)),
        transition(EventKind.COMPLETED, stall_reason=StallReason.NO_PROGRESS),
        transition(
            EventKind.FAILED,
            kb_name="wiki (EU)",
            job=replace(job_for(EventKind.FAILED), uuid="9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"),
        ),
    ],
    "weekday-nights",
)
_MANY = replace(
    job_for(EventKind.PARTIAL),
    data_source_jobs=tuple(
        DataSourceJob(
            data_source_uuid=f"d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f{n:02d}",
            status=DataSourceStatus.FAILED if n % 4 == 0 else DataSourceStatus.UPDATED,
            indexed_item_count=10,
            failed_item_count=5 if n % 4 == 0 else 0,
            error_msg="FILE_PARSE_ERROR" if n % 4 == 0 else None,
            error_details="a long explanation " * 20 if n % 4 == 0 else None,
        )
        for n in range(40)
    ),
)
# fitted into 1,000 characters, title included (a small Discord-like budget)
CASES["partial_fitted"] = render(
    transition(EventKind.PARTIAL, job=_MANY),
    budget=Budget(body=1000, title=250, title_in_body=True),
)
# what the extra reads add: sources by name, an unhealthy database, the agents fed
CASES["failed_with_facts"] = render(
    transition(
        EventKind.FAILED,
        source_names=(
            ("d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a", "web crawler https://docs.example.com"),
            ("a9b8c7d6-e5f4-4a3b-2c1d-0e9f8a7b6c5d", "Spaces docs-bucket/manuals/"),
        ),
        database_status="POWEROFF",
        agents=("sales-bot", "support-bot"),
    )
)
CASES["stalled_with_facts"] = render(
    transition(
        EventKind.STALLED,
        source_names=(("d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a", "file handbook.pdf"),),
        agents=("support-bot",),
    )
)
# a silence's id and comment are typed by people: made inert and escaped like any outside text
CASES["silence_hostile"] = render(
    transition(EventKind.SILENCE_ENDED, silence_id=HOSTILE, detail=HOSTILE)
)
CASES["partial_report"] = render(
    transition(
        EventKind.PARTIAL,
        report=report_note(
            "5f0e3c2a-9b8d-4e7f-a6b5-c4d3e2f1a0b9",
            ReportFate.KEPT,
            ErrorSummary(
                (("unsupported file type", 17), ("could not extract text", 9), ("timeout", 2)),
                28,
                220,
            ),
        ),
    )
)
CASES["failed_report_not_kept"] = render(
    transition(EventKind.FAILED, report=report_note("x", ReportFate.NOT_KEPT, None))
)
CASES["hostile"] = render(
    transition(EventKind.FAILED, kb_name=HOSTILE, detail=HOSTILE),
)


@pytest.mark.parametrize("fmt", list(BodyFormat))
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_rendered_alert_matches_its_golden_file(name: str, fmt: BodyFormat) -> None:
    """The title and the body in this format are exactly what the golden file holds."""
    message = CASES[name]
    rendered = f"{message.title}\n---\n{message.body_in(fmt)}"
    path = GOLDEN / f"{name}.{SUFFIX[fmt]}"
    if UPDATE:
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with WATCHER_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8")


def test_every_golden_file_belongs_to_a_case() -> None:
    """No stale golden file survives a renamed case."""
    expected = {f"{name}.{suffix}" for name in CASES for suffix in SUFFIX.values()}
    assert {p.name for p in GOLDEN.iterdir()} == expected

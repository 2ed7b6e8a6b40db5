"""`watcher status` from a store snapshot: the state words, the table people read, the JSON
scripts read. Pure: every case is a hand-made `StoreSnapshot` and a fixed `NOW`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core import status_view
from watcher.core.account import MissingKb, UnmatchedRef
from watcher.core.facts import DataSource, SourceType
from watcher.core.incident import Ack, Incident
from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryState
from watcher.core.snapshot import DeadLetter, KbSnapshot, RouteBacklog, StoreSnapshot
from watcher.core.state import JobCondition, StallReason

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KB = KbSnapshot("9f3c1b2a-4d5e-11ef-8a1b-0242ac120002", "docs", NOW, job_uuid="job-1")


def snapshot(*kbs: KbSnapshot, **changes: object) -> StoreSnapshot:
    """A snapshot of `kbs` with an empty outbox, never a cycle, unless `changes` say otherwise."""
    empty = StoreSnapshot(
        at=NOW,
        kbs=kbs,
        outbox_by_state=dict.fromkeys(DeliveryState, 0),
        routes=(),
        oldest_undelivered_at=None,
        dead_letters=(),
        jobs_by_state=dict.fromkeys(JobCondition, 0),
        events_by_kind={},
        last_cycle_at=None,
        created_at=NOW,
        schema_version=1,
    )
    return replace(empty, **changes)


@pytest.mark.parametrize(
    ("kb", "word"),
    [
        # a knowledge base whose first job the watcher has not seen
        (replace(KB, job_uuid=None), "no jobs"),
        # a stall says which rule fired, whatever else is known
        (replace(KB, stalled=StallReason.NO_PROGRESS, condition=JobCondition.STALLED),
         "stalled (no_progress)"),
        # a finished job says how it ended
        (replace(KB, outcome=EventKind.PARTIAL, condition=JobCondition.DONE), "partial"),
        # a job in the API's known states says which
        (replace(KB, condition=JobCondition.PENDING), "pending"),
        (replace(KB, condition=JobCondition.RUNNING), "running"),
        # done without an outcome (recorded silently as finished)
        (replace(KB, condition=JobCondition.DONE), "done"),
        # a state this version does not know names the API's word for it
        (replace(KB, status="INDEX_JOB_STATUS_PAUSED", condition=JobCondition.UNKNOWN),
         "unknown (paused)"),
        # no status: the phase's word; neither: "unknown"
        (replace(KB, phase="BATCH_JOB_PHASE_QUEUED"), "unknown (queued)"),
        (KB, "unknown (unknown)"),
    ],
)  # fmt: skip
def test_each_job_gets_one_state_word(kb: KbSnapshot, word: str) -> None:
    assert status_view.state_word(kb) == word


def test_the_table_lines_up_one_row_per_knowledge_base_under_its_headings() -> None:
    done = replace(
        KB,
        outcome=EventKind.COMPLETED,
        completed_datasources=3,
        total_datasources=3,
        finished_at=NOW - timedelta(seconds=65),
        condition=JobCondition.DONE,
    )
    other = KbSnapshot("0b7d2e4c-6f81-11ef-9c2d-0242ac120002", None, NOW)
    lines = status_view.table(snapshot(done, other), NOW).splitlines()
    assert lines[:3] == [
        "KNOWLEDGE BASE                        LATEST JOB  STATE      PROGRESS  AGE",
        "docs                                  job-1       completed  3/3       1m 05s ago",
        "0b7d2e4c-6f81-11ef-9c2d-0242ac120002  -           no jobs    -         -",
    ]


def test_ages_are_measured_on_the_api_clock_when_it_is_known() -> None:
    """A job's times are DigitalOcean's: its age is judged against DigitalOcean's now."""
    moved = replace(KB, updated_at=NOW, condition=JobCondition.RUNNING)
    text = status_view.table(snapshot(moved), NOW, api_now=NOW + timedelta(minutes=2))
    assert "2m 00s ago" in text.splitlines()[1]
    # a job time ahead of the clock it is judged on is no negative age
    assert "0s ago" in status_view.table(snapshot(moved), NOW - timedelta(hours=1)).splitlines()[1]


def test_an_empty_store_says_how_to_fill_it() -> None:
    text = status_view.table(snapshot(), NOW)
    assert "(no knowledge base seen yet: run `watcher once` or `watcher run`)" in text
    assert "Last successful cycle: never" in text


def test_a_hostile_name_can_neither_drive_the_terminal_nor_forge_a_row() -> None:
    hostile = replace(KB, name="docs\x1b]0;owned\x07\nforged  row\u202e")
    text = status_view.table(snapshot(hostile), NOW)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert len(text.splitlines()) == len(status_view.table(snapshot(KB), NOW).splitlines())
    assert "docs\\x1b]0;owned\\x07 forged  row\\u202e" in text


def test_the_backlog_dead_letters_and_last_cycle_follow_the_table() -> None:
    dead = DeadLetter(
        7, "ops", "job-1/failed/1", "failed", KB.uuid, "job-1", 3, "HTTP 400", NOW, NOW
    )
    busy = snapshot(
        KB,
        outbox_by_state={**dict.fromkeys(DeliveryState, 0), DeliveryState.PENDING: 2,
                         DeliveryState.SENDING: 1, DeliveryState.DEAD: 1},
        routes=(RouteBacklog("ops", 2, 1, 1),),
        oldest_undelivered_at=NOW - timedelta(seconds=65),
        dead_letters=(dead,),
        last_cycle_at=NOW - timedelta(seconds=12),
    )  # fmt: skip
    lines = status_view.table(busy, NOW).splitlines()
    assert lines[-4:] == [
        "Deliveries: 3 pending, 1 dead, oldest waiting 1m 05s",
        "  ops: 3 pending, 1 dead",
        "  dead #7 ops failed job job-1 after 3 attempts: HTTP 400",
        "Last successful cycle: 2026-12-01T11:59:48+00:00 (12s ago)",
    ]


def test_setup_findings_are_listed_between_the_table_and_the_backlog() -> None:
    setup = status_view.SetupFindings(
        missing=(MissingKb(KB.uuid, "docs", NOW - timedelta(minutes=5)),),
        unmatched=(UnmatchedRef("ops", 0, 1, "suport-articles", "support-articles"),),
    )
    lines = status_view.table(snapshot(KB), NOW, setup).splitlines()
    assert lines[2:6] == [
        "",
        "docs: not found in the account since 2026-12-01T11:55:00+00:00 (5m 00s ago)",
        "route ops: routes[0].knowledge_bases[1]: 'suport-articles' matches no knowledge base "
        "of the account; did you mean 'support-articles'?",
        "",
    ]


def test_json_has_the_same_facts_under_stable_keys() -> None:
    stalled = replace(
        KB, stalled=StallReason.MAX_RUNTIME, updated_at=NOW, condition=JobCondition.STALLED
    )
    setup = status_view.SetupFindings(missing=(MissingKb(KB.uuid, None, NOW),))
    data = status_view.as_json(
        snapshot(stalled, oldest_undelivered_at=NOW - timedelta(seconds=3)),
        NOW,
        setup,
        api_now=NOW,
    )
    assert set(data) == {
        "at",
        "api_clock_at",
        "last_successful_cycle_at",
        "knowledge_bases",
        "missing_knowledge_bases",
        "unmatched_route_entries",
        "deliveries",
        "jobs_by_state",
        "events_by_kind",
        "silences",
        "incidents",
    }
    [kb] = data["knowledge_bases"]
    assert kb["state"] == "stalled (max_runtime)" and kb["stalled"] == "max_runtime"
    assert kb["updated_at"] == "2026-12-01T12:00:00+00:00" and kb["finished_at"] is None
    assert data["missing_knowledge_bases"] == [
        {"uuid": KB.uuid, "name": None, "since": "2026-12-01T12:00:00+00:00"}
    ]
    # every state of the closed sets is a key, at 0 when nothing is in it
    assert data["deliveries"]["by_state"] == {
        "pending": 0,
        "sending": 0,
        "sent": 0,
        "dead": 0,
        "silenced": 0,
    }
    assert data["jobs_by_state"] == dict.fromkeys(JobCondition, 0)
    assert data["deliveries"]["oldest_undelivered_age_s"] == 3.0


OPEN = Incident(
    id="incident/job-1/failed",
    kb_uuid=KB.uuid,
    kb_name="docs",
    opened_at=NOW - timedelta(hours=2),
    api_since=NOW - timedelta(hours=2, minutes=1),
    failures=3,
    last_kind=EventKind.FAILED,
    last_job_uuid="job-3",
)


def test_status_lists_open_incidents_and_says_how_to_acknowledge_them() -> None:
    lines = status_view.table(snapshot(KB, incidents=(OPEN,)), NOW).splitlines()
    assert lines[2:5] == [
        "",
        "Open incidents: 1",
        "  docs: 3 failures in a row since 2026-12-01T09:59:00+00:00, latest failed; "
        f"not acknowledged (watcher ack {KB.uuid})",
    ]


def test_status_says_who_acknowledged_an_incident_and_when() -> None:
    acked = replace(OPEN, ack=Ack("ana", NOW - timedelta(minutes=5), "reindexing by hand"))
    text = status_view.table(snapshot(KB, incidents=(acked,)), NOW)
    assert (
        "acknowledged by ana at 2026-12-01T11:55:00+00:00 (5m 00s ago): reindexing by hand" in text
    )
    [listed] = status_view.as_json(snapshot(KB, incidents=(acked,)), NOW)["incidents"]
    assert listed["acknowledged"] == {
        "by": "ana",
        "at": "2026-12-01T11:55:00+00:00",
        "comment": "reindexing by hand",
    }
    assert (listed["failures"], listed["latest"], listed["since"]) == (
        3,
        "failed",
        "2026-12-01T09:59:00+00:00",
    )


def test_with_several_accounts_the_fact_lines_name_each_kbs_account() -> None:
    source = DataSource("ds-1", SourceType.WEB_CRAWLER, "https://docs.example.com")
    prod = replace(KB, sources=(source,), database="DEGRADED", account="prod")
    staging = replace(KB, uuid="0c6b9a8e-1d2f-4a3b-9c8d-7e6f5a4b3c2d", account="staging")
    text = status_view.table(snapshot(prod, replace(staging, sources=(source,))), NOW)
    assert f"  docs [prod]: {source.label}" in text
    assert "  docs [prod]: database DEGRADED (not online)" in text
    assert f"  docs [staging]: {source.label}" in text
    alone = status_view.table(snapshot(replace(prod, account=None)), NOW)
    assert f"  docs: {source.label}" in alone  # one account: today's text


STALLED_KB = replace(
    KB,
    uuid="kb-stuck",
    name="stuck",
    stalled=StallReason.NO_PROGRESS,
    condition=JobCondition.STALLED,
)
NEW_KB = replace(KB, uuid="kb-new", name="new", job_uuid=None)


def test_only_keeps_the_kbs_named_by_name_or_uuid_with_their_incidents() -> None:
    other = replace(OPEN, id="incident/2", kb_uuid=STALLED_KB.uuid)
    whole = snapshot(KB, STALLED_KB, NEW_KB, incidents=(OPEN, other))
    kept = status_view.only(whole, kbs=["stuck", KB.uuid])
    assert [kb.name for kb in kept.kbs] == ["docs", "stuck"]
    assert kept.incidents == (OPEN, other)
    assert status_view.only(whole, kbs=["new"]).incidents == ()


def test_only_matches_a_state_by_the_first_word_of_the_table_s_state() -> None:
    whole = snapshot(KB, STALLED_KB, NEW_KB)
    assert [kb.name for kb in status_view.only(whole, states=["stalled"]).kbs] == ["stuck"]
    assert [kb.name for kb in status_view.only(whole, states=["none"]).kbs] == ["new"]
    both = status_view.only(whole, kbs=["stuck", "new"], states=["stalled"])
    assert [kb.name for kb in both.kbs] == ["stuck"]
    assert status_view.only(whole) == whole


def test_only_names_every_kb_it_does_not_know_and_lists_the_known_ones() -> None:
    with pytest.raises(status_view.UnknownKbError) as raised:
        status_view.only(snapshot(KB, STALLED_KB), kbs=["docs", "nope", "gone"])
    assert str(raised.value) == (
        "no knowledge base named 'nope', 'gone' in the store (known: docs, stuck)"
    )


def test_only_done_keeps_every_finished_job_whatever_its_outcome() -> None:
    failed = replace(
        KB, uuid="kb-f", name="f", outcome=EventKind.FAILED, condition=JobCondition.DONE
    )
    silent = replace(KB, uuid="kb-s", name="s", condition=JobCondition.DONE)
    running = replace(KB, uuid="kb-r", name="r", condition=JobCondition.RUNNING)
    kept = status_view.only(snapshot(failed, silent, running, STALLED_KB), states=["done"])
    assert [kb.name for kb in kept.kbs] == ["f", "s"]
    assert [kb.name for kb in status_view.only(snapshot(failed), states=["failed"]).kbs] == ["f"]


def test_a_table_filtered_to_nothing_says_so_instead_of_asking_for_a_first_run() -> None:
    text = status_view.table(snapshot(), NOW, empty="(no knowledge base matches --state failed)")
    assert "(no knowledge base matches --state failed)" in text
    assert "no knowledge base seen yet" not in text


def test_status_help_names_every_state_word_the_filter_takes() -> None:
    """The help lists the words literally (the CLI does not import the view to start): each
    must be one `--state` takes, and each it takes must be listed."""
    from click.testing import CliRunner

    from watcher.cli import main

    helped = " ".join(CliRunner().invoke(main, ["status", "--help"]).stdout.split())
    listed = helped.split("STATE's first word: ")[1].split("; repeatable")[0]
    words = {w.strip(" ,").removeprefix("or ").split(" (")[0] for w in listed.split(", ")}
    assert words == set(status_view.STATE_WORDS)

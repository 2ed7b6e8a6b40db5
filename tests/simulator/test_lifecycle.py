"""Job lifecycles, DigitalOcean's per-KB rules and scenarios, on a ManualClock."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from tests.simulator import START, job, kb, manual, scenario, start
from watcher.simulator import (
    ScenarioError,
    Simulator,
    bundled_scenarios,
    generated_scenario,
    load_scenario,
)
from watcher.simulator.clock import ZERO_TIME
from watcher.simulator.lifecycle import Stall
from watcher.simulator.loading import parse_scenario
from watcher.simulator.scenario import CancelJob, Event

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _counts(found: dict[str, Any]) -> tuple[int, str, str, list[str]]:
    indexed = [ds["indexed_item_count"] for ds in found["data_source_jobs"]]
    return found["completed_datasources"], found["total_tokens"], found["updated_at"], indexed


def test_pending_job_reads_pending_with_unset_start_and_finish() -> None:
    sim = manual(scenario(start(0, "j", pending=5, run=10)))
    sim.advance(2)
    found = job(sim, "j")
    assert (found["phase"], found["status"]) == (
        "BATCH_JOB_PHASE_PENDING",
        "INDEX_JOB_STATUS_PENDING",
    )
    assert found["started_at"] == ZERO_TIME
    assert found["finished_at"] == ZERO_TIME
    assert found["total_tokens"] == "0"


def test_running_job_moves_counters_and_updated_at_as_time_passes() -> None:
    sim = manual(scenario(start(0, "j", pending=1, run=20), kbs=(kb(items=(100, 100)),)))
    sim.advance(3)
    early = job(sim, "j")
    sim.advance(10)
    later = job(sim, "j")
    assert later["phase"] == "BATCH_JOB_PHASE_RUNNING"
    assert later["status"] == "INDEX_JOB_STATUS_IN_PROGRESS"
    assert later["started_at"] == "2026-01-05T09:00:01Z"
    assert later["finished_at"] == ZERO_TIME
    assert int(later["total_tokens"]) > int(early["total_tokens"]) > 0
    assert later["updated_at"] > early["updated_at"]
    assert (early["completed_datasources"], later["completed_datasources"]) == (0, 1)


OUTCOMES = [
    # outcome, phase, status, per-source statuses (3 sources), failed items expected
    (
        "completed",
        "BATCH_JOB_PHASE_SUCCEEDED",
        "INDEX_JOB_STATUS_COMPLETED",
        ["UPDATED", "UPDATED", "UPDATED"],
        False,
    ),
    (
        "no_changes",
        "BATCH_JOB_PHASE_SUCCEEDED",
        "INDEX_JOB_STATUS_NO_CHANGES",
        ["NOT_UPDATED", "NOT_UPDATED", "NOT_UPDATED"],
        False,
    ),
    # partial: one source fails outright, the last one partially
    (
        "partial",
        "BATCH_JOB_PHASE_SUCCEEDED",
        "INDEX_JOB_STATUS_PARTIAL",
        ["UPDATED", "FAILED", "PARTIALLY_UPDATED"],
        True,
    ),
    ("failed", "BATCH_JOB_PHASE_FAILED", "INDEX_JOB_STATUS_FAILED", ["FAILED"] * 3, True),
    # error: phase ERROR, status FAILED
    ("error", "BATCH_JOB_PHASE_ERROR", "INDEX_JOB_STATUS_FAILED", ["FAILED"] * 3, True),
]


@pytest.mark.parametrize(("outcome", "phase", "status", "sources", "has_failures"), OUTCOMES)
def test_each_outcome_ends_with_its_phase_status_and_source_states(
    outcome: str, phase: str, status: str, sources: list[str], has_failures: bool
) -> None:
    scn = scenario(start(0, "j", pending=1, run=10, outcome=outcome), kbs=(kb(items=(50, 30, 20)),))
    sim = manual(scn)
    sim.advance(11)
    found = job(sim, "j")
    assert (found["phase"], found["status"]) == (phase, status)
    assert found["finished_at"] == "2026-01-05T09:00:11Z"
    assert [ds["status"] for ds in found["data_source_jobs"]] == [
        f"DATA_SOURCE_STATUS_{s}" for s in sources
    ]
    failed = sum(int(ds["failed_item_count"]) for ds in found["data_source_jobs"])
    assert (failed > 0) is has_failures
    errors = [ds for ds in found["data_source_jobs"] if ds.get("error_msg")]
    assert bool(errors) is has_failures
    assert all(ds["error_details"] for ds in errors)


def test_partial_job_reports_which_items_failed_through_data_sources_endpoint() -> None:
    scn = scenario(
        start(0, "j", run=5, outcome="partial", error_msg="file_parse_error", error_details="bad"),
        kbs=(kb(items=(40, 30)),),
    )
    sim = manual(scn)
    sim.advance(10)
    uuid = sim.job_uuid("j")
    sources = sim.read(lambda world, now: world.job_sources(uuid, now))
    last = sources[-1]
    assert last["status"] == "DATA_SOURCE_STATUS_PARTIALLY_UPDATED"
    assert (last["failed_item_count"], last["indexed_item_count"]) == ("3", "27")
    assert (last["error_msg"], last["error_details"]) == ("file_parse_error", "bad")
    assert job(sim, "j")["is_report_available"] is True


def test_cancelled_job_freezes_counters_and_reads_cancelled() -> None:
    scn = scenario(start(0, "j", pending=0, run=100), Event(30, CancelJob("j")))
    sim = manual(scn)
    sim.advance(30)
    at_cancel = job(sim, "j")
    sim.advance(50)
    found = job(sim, "j")
    assert (found["phase"], found["status"]) == (
        "BATCH_JOB_PHASE_CANCELLED",
        "INDEX_JOB_STATUS_CANCELLED",
    )
    assert found["finished_at"] == "2026-01-05T09:00:30Z"
    assert found["total_tokens"] == at_cancel["total_tokens"] != "0"
    assert found["data_source_jobs"][0]["status"] == "DATA_SOURCE_STATUS_CANCELLED"
    assert found["is_report_available"] is False


def test_stuck_job_stays_running_with_frozen_counters_and_updated_at() -> None:
    sim = manual(scenario(start(0, "j", pending=0, run=60, stalls=(Stall(10, None),))))
    sim.advance(15)
    before = job(sim, "j")
    sim.advance(3600)
    after = job(sim, "j")
    assert after["phase"] == "BATCH_JOB_PHASE_RUNNING"
    assert _counts(after) == _counts(before)
    assert after["updated_at"] == "2026-01-05T09:00:10Z"


def test_stall_that_ends_resumes_progress_and_extends_the_run() -> None:
    sim = manual(scenario(start(0, "j", pending=0, run=20, stalls=(Stall(5, 10),))))
    sim.advance(12)
    stalled = job(sim, "j")
    sim.advance(6)
    resumed = job(sim, "j")
    assert stalled["updated_at"] == "2026-01-05T09:00:05Z"
    assert int(resumed["total_tokens"]) > int(stalled["total_tokens"])
    sim.advance(11)  # t=29: 20 s of progress need 30 s with the 10 s stall
    assert job(sim, "j")["status"] == "INDEX_JOB_STATUS_IN_PROGRESS"
    sim.advance(1)
    assert job(sim, "j")["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert job(sim, "j")["finished_at"] == "2026-01-05T09:00:30Z"


def test_job_without_a_pending_end_stays_pending_forever() -> None:
    sim = manual(scenario(start(0, "j", pending=None)))
    sim.advance(86400)
    assert job(sim, "j")["phase"] == "BATCH_JOB_PHASE_PENDING"


def test_second_start_on_a_busy_kb_is_skipped() -> None:
    sim = manual(scenario(start(0, "a", run=30), start(10, "b", run=5), start(40, "c", run=5)))
    sim.advance(50)
    assert [s.action for s in sim.skipped] == ["start_job b"]
    assert job(sim, "c")["status"] == "INDEX_JOB_STATUS_COMPLETED"


def test_kb_keeps_only_the_latest_15_jobs_everywhere() -> None:
    events = [start(i * 10, f"j{i}", pending=0, run=1) for i in range(18)]
    sim = manual(scenario(*events))
    sim.advance(200)
    kb_uuid = sim.kb_uuid("kb")
    kb_jobs = sim.read(lambda world, now: world.kb_jobs(kb_uuid, now))
    all_jobs = sim.read(lambda world, now: world.jobs(now))
    newest_first = [sim.job_uuid(f"j{i}") for i in reversed(range(3, 18))]
    assert [j["uuid"] for j in kb_jobs] == newest_first
    assert [j["uuid"] for j in all_jobs] == newest_first
    with pytest.raises(LookupError):
        job(sim, "j2")


def test_two_jobs_between_polls_leave_the_first_only_in_the_kb_job_list() -> None:
    scn = scenario(start(11, "one", pending=0.3, run=1.5), start(13.5, "two", pending=0.3, run=1))
    sim = manual(scn)
    sim.advance(10)
    kb_uuid = sim.kb_uuid("kb")
    assert "last_indexing_job" not in sim.read(lambda w, now: w.knowledge_base(kb_uuid, now))
    sim.advance(10)
    latest = sim.read(lambda w, now: w.knowledge_base(kb_uuid, now))["last_indexing_job"]
    listed = sim.read(lambda w, now: w.kb_jobs(kb_uuid, now))
    assert latest["uuid"] == sim.job_uuid("two")
    assert [j["uuid"] for j in listed] == [sim.job_uuid("two"), sim.job_uuid("one")]
    assert {j["status"] for j in listed} == {"INDEX_JOB_STATUS_COMPLETED"}


def test_transitions_report_simulated_and_wall_time_of_each_moment() -> None:
    sim = manual(scenario(start(5, "j", pending=2, run=10, stalls=(Stall(3, 2),))))
    sim.advance(4)
    assert sim.transitions() == []
    sim.advance(30)
    seen = [(t.kind, (t.at - START).total_seconds()) for t in sim.transitions()]
    assert seen == [
        ("created", 5),
        ("running", 7),
        ("stalled", 10),
        ("recovered", 12),
        ("completed", 19),
    ]
    assert all(t.wall is not None for t in sim.transitions())


def test_counters_are_json_strings_and_timestamps_are_rfc3339_z() -> None:
    sim = manual(scenario(start(0, "j", run=10)))
    sim.advance(5)
    found = job(sim, "j")
    assert isinstance(found["total_tokens"], str)
    assert isinstance(found["completed_datasources"], int)
    for ds in found["data_source_jobs"]:
        for key in ("indexed_item_count", "failed_item_count", "total_bytes", "total_file_count"):
            assert isinstance(ds[key], str)
    for key in ("created_at", "started_at", "finished_at", "updated_at"):
        assert RFC3339_Z.match(found[key])


def _outcomes_by_id(sim: Simulator) -> dict[str, str]:
    """The moments after `running` of every named job, e.g. "stalled,recovered,completed"."""
    names = {uuid: name for name, uuid in sim.world.job_keys.items()}
    found: dict[str, list[str]] = {}
    for record in sim.transitions():
        if record.job_uuid in names and record.kind not in ("created", "running"):
            found.setdefault(names[record.job_uuid], []).append(record.kind)
    return {name: ",".join(kinds) for name, kinds in found.items()}


def test_demo_scenario_shows_every_event_kind_within_45_seconds() -> None:
    sim = manual(load_scenario("demo"))
    sim.advance(45)
    assert _outcomes_by_id(sim) == {
        "wiki-nightly": "stalled,recovered,completed",
        "docs-refresh": "completed",
        "support-sync": "partial",
        "pricing-crawl": "failed",
        "legal-reindex": "cancelled",
        "releases-quick-1": "completed",
        "releases-quick-2": "no_changes",
    }
    assert job(sim, "onboarding-waiting")["phase"] == "BATCH_JOB_PHASE_PENDING"
    docs = sim.read(lambda w, now: w.kb_jobs(sim.kb_uuid("docs"), now))
    assert len(docs) == 4
    assert sim.skipped == []


def test_quiet_scenario_has_finished_history_and_nothing_active() -> None:
    sim = manual(load_scenario("quiet"))
    jobs = sim.read(lambda w, now: w.jobs(now))
    assert jobs
    assert all(j["finished_at"] != ZERO_TIME for j in jobs)
    statuses = {j["status"] for j in jobs}
    assert "INDEX_JOB_STATUS_CANCELLED" in statuses
    changelog = sim.read(lambda w, now: w.kb_jobs(sim.kb_uuid("busy-history"), now))
    assert len(changelog) == 15


def test_generated_scenario_is_reproducible_and_busy_runs_jobs_that_finish() -> None:
    assert generated_scenario(50, True, seed=3) == generated_scenario(50, True, seed=3)
    idle = manual(generated_scenario(50, False))
    assert all("last_indexing_job" in k for k in idle.read(lambda w, now: w.knowledge_bases(now)))
    assert not any(j["finished_at"] == ZERO_TIME for j in idle.read(lambda w, now: w.jobs(now)))
    busy = manual(generated_scenario(50, True))
    busy.advance(60)
    active = [j for j in busy.read(lambda w, now: w.jobs(now)) if j["finished_at"] == ZERO_TIME]
    assert active
    busy.advance(3600)
    assert all(j["finished_at"] != ZERO_TIME for j in busy.read(lambda w, now: w.jobs(now)))


def test_every_bundled_scenario_loads() -> None:
    assert {"demo", "quiet", "flaky"} <= set(bundled_scenarios())
    for name in bundled_scenarios():
        assert load_scenario(name).name == name


def test_unknown_scenario_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError, match="demo, facts, flaky, quiet"):
        load_scenario("nope")


BAD_SCENARIOS = [
    # unknown top-level key
    ({"knowledge_bases": [], "timelime": []}, "unknown keys"),
    # job on a KB that does not exist
    (
        {"knowledge_bases": [], "timeline": [{"at": 0, "start_job": {"kb": "x"}}]},
        "unknown knowledge",
    ),
    # cancel of a job that was never started
    ({"knowledge_bases": [], "timeline": [{"at": 0, "cancel_job": "x"}]}, "names no earlier job"),
    # outcome outside the list
    (
        {
            "knowledge_bases": [{"key": "k", "data_sources": [{"key": "d"}]}],
            "timeline": [{"at": 0, "start_job": {"kb": "k", "outcome": "meh"}}],
        },
        "outcome must be one of",
    ),
    # overlapping stalls
    (
        {
            "knowledge_bases": [{"key": "k", "data_sources": [{"key": "d"}]}],
            "timeline": [
                {
                    "at": 0,
                    "start_job": {
                        "kb": "k",
                        "stalls": [{"after": 1, "for": 10}, {"after": 5, "for": 1}],
                    },
                }
            ],
        },
        "overlap",
    ),
    # unknown fault kind
    ({"knowledge_bases": [], "timeline": [{"at": 0, "fault": {"kind": "x"}}]}, "fault kind"),
]


@pytest.mark.parametrize(("data", "message"), BAD_SCENARIOS)
def test_inconsistent_scenario_is_rejected_with_a_reason(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data, "bad")


def test_history_entries_are_jobs_in_the_past() -> None:
    data = {
        "knowledge_bases": [
            {"key": "k", "data_sources": [{"key": "d"}], "history": [{"ago": 3600, "run": 60}]}
        ]
    }
    sim = manual(parse_scenario(data, "h"))
    (found,) = sim.read(lambda w, now: w.jobs(now))
    assert found["created_at"] == (START - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert found["status"] == "INDEX_JOB_STATUS_COMPLETED"

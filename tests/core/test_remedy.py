"""Remediation decisions, table-driven: (transition, policy, the KB's records) -> what to do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watcher.core import remedy
from watcher.core.model import EventKind, Job
from watcher.core.remedy import (
    Call,
    CallResult,
    Decision,
    OnStalled,
    RemedyPolicy,
    RemedyRecord,
    Step,
    Verdict,
    decide,
)
from watcher.core.state import Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KB = "kb-1"
ON = RemedyPolicy(OnStalled.CANCEL_AND_REINDEX, max_attempts=2)
DRY = RemedyPolicy(OnStalled.CANCEL_AND_REINDEX, max_attempts=2, dry_run=True)
OFF = RemedyPolicy()


def replace_attempts(policy: RemedyPolicy, attempts: int) -> RemedyPolicy:
    return RemedyPolicy(policy.on_stalled, attempts, policy.dry_run)


def stalled(job: str = "job-1", kind: EventKind = EventKind.STALLED) -> Transition:
    return Transition(f"{job}/{kind}/1", kind, NOW, KB, "docs", Job(job, KB))


def record(
    stalled_job: str,
    incident: str,
    attempt: int,
    new_job: str | None = None,
    step: Step = Step.DONE,
) -> RemedyRecord:
    return RemedyRecord(KB, incident, attempt, stalled_job, step, "docs", new_job)


@pytest.mark.parametrize(
    ("t", "policy", "history", "expected"),
    [
        # off by default: never acts
        (stalled(), OFF, [], Decision(Verdict.OFF)),
        # a stall with remediation on: act, attempt 1 of a new incident named by the job
        (stalled(), ON, [], Decision(Verdict.ACT, "job-1", 1)),
        # in dry run: decided, not sent
        (stalled(), DRY, [], Decision(Verdict.DRY_RUN, "job-1", 1)),
        # only stalls are remediated
        (stalled(kind=EventKind.FAILED), ON, [], Decision(Verdict.NOT_A_STALL)),
        # a stalled job already acted on (or its intent recorded): never again
        (
            stalled(),
            ON,
            [record("job-1", "job-1", 1, step=Step.INTENT)],
            Decision(Verdict.ALREADY_TRIED),
        ),
        # the job a remediation started stalls too: same incident, attempt 2
        (
            stalled("job-2"),
            ON,
            [record("job-1", "job-1", 1, "job-2")],
            Decision(Verdict.ACT, "job-1", 2),
        ),
        # and its successor once max_attempts (2) are spent: exhausted
        (
            stalled("job-3"),
            ON,
            [record("job-1", "job-1", 1, "job-2"), record("job-2", "job-1", 2, "job-3")],
            Decision(Verdict.EXHAUSTED, "job-1", 2),
        ),
        # another job's stall on the same KB (not started by us) is a new incident
        (
            stalled("job-9"),
            ON,
            [record("job-1", "job-1", 1, "job-2")],
            Decision(Verdict.ACT, "job-9", 1),
        ),
        # a dry run counts as an attempt: a dry-run chain cannot loop either
        (
            stalled("job-2"),
            replace_attempts(DRY, 1),
            [record("job-1", "job-1", 1, "job-2", Step.DRY_RUN)],
            Decision(Verdict.EXHAUSTED, "job-1", 1),
        ),
        # the KB's last remediation's new job is unknown (a watcher killed after its calls, or
        # a call that did not answer): a stall that follows may be of that job, same incident
        (
            stalled("job-2"),
            replace_attempts(ON, 1),
            [record("job-1", "job-1", 1, step=Step.UNKNOWN)],
            Decision(Verdict.EXHAUSTED, "job-1", 1),
        ),
        # the same in the first cycle of the next process, the intent still open
        (
            stalled("job-2"),
            ON,
            [record("job-1", "job-1", 1, step=Step.INTENT)],
            Decision(Verdict.ACT, "job-1", 2),
        ),
    ],
)
def test_a_stall_is_remediated_at_most_max_attempts_times_per_incident(
    t: Transition, policy: RemedyPolicy, history: list[RemedyRecord], expected: Decision
) -> None:
    assert decide(t, policy, history) == expected


def test_plan_records_an_intent_per_stall_and_says_once_when_attempts_are_spent() -> None:
    spent = {KB: (record("job-1", "job-1", 1, "job-2"), record("job-2", "job-1", 2, "job-3"))}
    added = remedy.plan([stalled("job-3"), stalled("job-7")], ON, spent)
    assert [(r.stalled_job, r.step, r.incident, r.attempt) for r in added] == [
        ("job-3", Step.GAVE_UP, "job-1", 2),
        ("job-7", Step.INTENT, "job-7", 1),
    ]
    again = remedy.merge(spent, added)
    assert remedy.plan([stalled("job-3"), stalled("job-7")], ON, again) == ()  # said, done once


def test_an_intent_left_open_reads_as_unknown_and_is_never_acted_on_again() -> None:
    records = {KB: (record("job-1", "job-1", 1, step=Step.INTENT),)}
    (left,) = remedy.dangling(records)
    assert left.step is Step.UNKNOWN
    assert "not repeated" in (left.detail or "")
    assert decide(stalled("job-1"), ON, remedy.merge(records, [left])[KB]).verdict is (
        Verdict.ALREADY_TRIED
    )


@pytest.mark.parametrize(
    ("cancel", "start", "step", "said"),
    [
        # both calls did their part
        (
            Call(CallResult.OK),
            Call(CallResult.OK, job_uuid="job-2"),
            Step.DONE,
            "Cancelled the stalled job. Started a new indexing job job-2.",
        ),
        # DigitalOcean skipped the new job: said as a skip, not a failure
        (
            Call(CallResult.OK),
            Call(CallResult.SKIPPED, "conflict"),
            Step.PARTLY,
            "DigitalOcean skipped the new job because a job is still running",
        ),
        # the token cannot cancel: the 403's text (scope, token source) is passed on
        (
            Call(CallResult.FORBIDDEN, "lacks the genai:update scope"),
            None,
            Step.FAILED,
            "Could not cancel the stalled job: lacks the genai:update scope",
        ),
        # the token can cancel but not start
        (
            Call(CallResult.OK),
            Call(CallResult.FORBIDDEN, "lacks the genai:create scope"),
            Step.PARTLY,
            "Could not start a new job: lacks the genai:create scope",
        ),
        # the job ended meanwhile: nothing more to do
        (Call(CallResult.ENDED, "422"), None, Step.FAILED, "had already ended"),
    ],
)
def test_the_outcome_of_the_calls_says_what_was_done(
    cancel: Call, start: Call | None, step: Step, said: str
) -> None:
    settled = remedy.settle(record("job-1", "job-1", 1, step=Step.INTENT), cancel, start)
    assert settled.step is step
    assert said in (settled.detail or "")
    assert settled.new_job == (start.job_uuid if step is Step.DONE and start else None)


def test_records_survive_their_meta_value() -> None:
    records = {KB: (record("job-1", "job-1", 1, "job-2"),)}
    assert remedy.decode(remedy.encode(records)) == records
    assert remedy.decode("{not json") == {}

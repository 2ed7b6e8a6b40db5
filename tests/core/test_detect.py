"""Detection rules, table-driven: (previous, observation, now) -> expected events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.detect import detect, stall_deadline
from watcher.model import DataSourceJob, EventKind, Job, KnowledgeBase, Phase, Status
from watcher.state import JobState, KbState, Observation, Policy, StallReason, WatchState

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POLICY = Policy(
    pending_after=timedelta(minutes=20),
    no_progress_after=timedelta(minutes=30),
    max_runtime=timedelta(hours=6),
)
KB = "kb-1"
E = EventKind


def job(
    uuid: str = "job-1",
    phase: Phase = Phase.RUNNING,
    status: Status = Status.IN_PROGRESS,
    **fields: object,
) -> Job:
    """A job of KB with the given state; like the wire parser, raw strings only when unknown."""
    base = Job(
        uuid=uuid,
        knowledge_base_uuid=KB,
        phase=phase,
        status=status,
        created_at=NOW - timedelta(minutes=5),
        started_at=NOW - timedelta(minutes=4),
        updated_at=NOW - timedelta(minutes=1),
        completed_datasources=1,
        total_datasources=3,
        total_tokens=100,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


PENDING = dict(phase=Phase.PENDING, status=Status.PENDING)
RUNNING = dict(phase=Phase.RUNNING, status=Status.IN_PROGRESS)
COMPLETED = dict(phase=Phase.SUCCEEDED, status=Status.COMPLETED)
NO_CHANGES = dict(phase=Phase.SUCCEEDED, status=Status.NO_CHANGES)
PARTIAL = dict(phase=Phase.SUCCEEDED, status=Status.PARTIAL)
FAILED = dict(phase=Phase.FAILED, status=Status.FAILED)
ERROR = dict(phase=Phase.ERROR, status=Status.UNKNOWN)
CANCELLED = dict(phase=Phase.CANCELLED, status=Status.CANCELLED)
CANCELLED_BY_STATUS = dict(phase=Phase.RUNNING, status=Status.CANCELLED)
SUCCEEDED_ONLY = dict(phase=Phase.SUCCEEDED, status=Status.UNKNOWN)
UNKNOWN_BOTH = dict(
    phase=Phase.UNKNOWN,
    phase_raw="BATCH_JOB_PHASE_COMPLETED",
    status=Status.UNKNOWN,
    status_raw="INDEX_JOB_STATUS_QUEUED",
)


def known_kb(first_seen: datetime = NOW - timedelta(days=1)) -> dict[str, KbState]:
    return {KB: KbState(uuid=KB, name="docs", first_seen_at=first_seen)}


def tracked(j: Job, **fields: object) -> JobState:
    """A job the watcher follows since an hour ago, started alerted, progress just now."""
    state = JobState(
        job=j,
        kb_uuid=KB,
        first_seen_at=NOW - timedelta(hours=1),
        progress_at=NOW - timedelta(minutes=1),
        started_alerted=True,
    )
    return replace(state, **fields)  # type: ignore[arg-type]


def observe(*jobs: Job, at: datetime = NOW) -> Observation:
    last = jobs[-1] if jobs else None
    return Observation(
        at=at, kbs=(KnowledgeBase(uuid=KB, name="docs", last_indexing_job=last),), jobs=jobs
    )


def kinds(previous: WatchState, observation: Observation, now: datetime = NOW) -> list[EventKind]:
    _, transitions = detect(previous, observation, now, POLICY)
    return [t.kind for t in transitions]


# --- first sight -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # a finished job on a KB seen for the first time is history: recorded silently
        (COMPLETED, []),
        (FAILED, []),
        (PARTIAL, []),
        (CANCELLED, []),
        # a job still pending or running on first sight is alerted as started
        (PENDING, [E.STARTED]),
        (RUNNING, [E.STARTED]),
        # a job in states nobody knows is tracked but produces no event
        (UNKNOWN_BOTH, []),
    ],
)
def test_first_run_alerts_only_on_jobs_still_running(
    fields: dict[str, object], expected: list[EventKind]
) -> None:
    assert kinds(WatchState(), observe(job(**fields))) == expected


def test_first_run_records_finished_jobs_as_done() -> None:
    """Jobs recorded silently are marked done so they can never alert later."""
    state, _ = detect(WatchState(), observe(job(**FAILED)), NOW, POLICY)
    assert state.jobs["job-1"].done
    assert KB in state.kbs


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # a new job on a known KB that started and finished between two polls is still alerted
        (COMPLETED, [E.COMPLETED]),
        (NO_CHANGES, [E.NO_CHANGES]),
        (PARTIAL, [E.PARTIAL]),
        (FAILED, [E.FAILED]),
        (ERROR, [E.FAILED]),
        (CANCELLED, [E.CANCELLED]),
        (CANCELLED_BY_STATUS, [E.CANCELLED]),
        (SUCCEEDED_ONLY, [E.COMPLETED]),
        (PENDING, [E.STARTED]),
    ],
)
def test_new_job_on_known_kb_is_alerted_with_its_outcome(
    fields: dict[str, object], expected: list[EventKind]
) -> None:
    assert kinds(WatchState(kbs=known_kb()), observe(job(**fields))) == expected


def test_old_history_returned_by_the_latest_15_list_stays_silent() -> None:
    """A finished job created before the watcher first saw the KB is not a new event."""
    old = job("old", **COMPLETED, created_at=NOW - timedelta(days=3))
    assert kinds(WatchState(kbs=known_kb()), observe(old)) == []


def test_two_jobs_finishing_between_polls_each_get_their_outcome() -> None:
    first = job("a", **FAILED)
    second = job("b", **COMPLETED)
    assert kinds(WatchState(kbs=known_kb()), observe(first, second)) == [E.FAILED, E.COMPLETED]


def test_jobs_are_reported_oldest_first_whatever_order_the_api_lists_them_in() -> None:
    """The latest-15 list is newest first; alerts should read in the order things happened."""
    older = job("a", **FAILED, created_at=NOW - timedelta(minutes=3))
    newer = job("b", **COMPLETED, created_at=NOW - timedelta(minutes=1))
    assert kinds(WatchState(kbs=known_kb()), observe(newer, older)) == [E.FAILED, E.COMPLETED]


# --- following a job ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # pending to running is no event (started was already sent)
        (PENDING, RUNNING, []),
        (RUNNING, COMPLETED, [E.COMPLETED]),
        (RUNNING, NO_CHANGES, [E.NO_CHANGES]),
        (RUNNING, PARTIAL, [E.PARTIAL]),
        (RUNNING, FAILED, [E.FAILED]),
        (RUNNING, ERROR, [E.FAILED]),
        (PENDING, CANCELLED, [E.CANCELLED]),
        (RUNNING, CANCELLED_BY_STATUS, [E.CANCELLED]),
        # an unknown value in the middle of a run is neither an end nor an event
        (RUNNING, UNKNOWN_BOTH, []),
    ],
)
def test_followed_job_transitions(
    before: dict[str, object], after: dict[str, object], expected: list[EventKind]
) -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": tracked(job(**before))})
    assert kinds(previous, observe(job(**after))) == expected


def test_a_job_in_an_unknown_state_that_becomes_running_is_alerted_started_once() -> None:
    previous = WatchState(
        kbs=known_kb(), jobs={"job-1": tracked(job(**UNKNOWN_BOTH), started_alerted=False)}
    )
    state, transitions = detect(previous, observe(job(**RUNNING)), NOW, POLICY)
    assert [t.kind for t in transitions] == [E.STARTED]
    assert kinds(state, observe(job(**RUNNING, updated_at=NOW))) == []


def test_terminal_event_is_emitted_once_even_if_the_job_keeps_being_seen() -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": tracked(job(**RUNNING))})
    state, first = detect(previous, observe(job(**FAILED)), NOW, POLICY)
    later = NOW + timedelta(minutes=1)
    _, second = detect(state, observe(job(**FAILED, updated_at=later), at=later), later, POLICY)
    assert [t.kind for t in first] == [E.FAILED]
    assert second == ()


def test_a_finished_job_that_flips_back_to_running_produces_nothing() -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": tracked(job(**COMPLETED), done=True)})
    assert kinds(previous, observe(job(**RUNNING))) == []


def test_event_ids_are_deterministic_so_replays_are_idempotent() -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": tracked(job(**RUNNING))})
    _, a = detect(previous, observe(job(**PARTIAL)), NOW, POLICY)
    _, b = detect(previous, observe(job(**PARTIAL)), NOW, POLICY)
    assert [t.event_id for t in a] == [t.event_id for t in b] == ["job-1/partial"]


def test_transitions_carry_the_kb_name_and_the_job() -> None:
    _, found = detect(WatchState(kbs=known_kb()), observe(job(**FAILED)), NOW, POLICY)
    assert found[0].kb_name == "docs"
    assert found[0].kb_uuid == KB
    assert found[0].job_uuid == "job-1"


def test_a_job_without_any_knowledge_base_is_ignored() -> None:
    orphan = job(**FAILED, knowledge_base_uuid=None)
    assert kinds(WatchState(kbs=known_kb()), observe(orphan)) == []


# --- stalls ------------------------------------------------------------------------------------

STUCK_SINCE = NOW - timedelta(minutes=31)


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        # no progress for exactly the threshold: stalled (the edge is inclusive)
        (tracked(job(), progress_at=NOW - timedelta(minutes=30)), NOW, [E.STALLED]),
        # one second before the threshold: nothing yet
        (tracked(job(), progress_at=NOW - timedelta(minutes=30) + timedelta(seconds=1)), NOW, []),
        # pending for longer than pending_after (since created_at)
        (tracked(job(**PENDING, created_at=NOW - timedelta(minutes=20))), NOW, [E.STALLED]),
        (tracked(job(**PENDING, created_at=NOW - timedelta(minutes=19))), NOW, []),
        # running longer than max_runtime even while progressing
        (tracked(job(started_at=NOW - timedelta(hours=6))), NOW, [E.STALLED]),
        (tracked(job(started_at=NOW - timedelta(hours=5, minutes=59))), NOW, []),
        # a job already stalled is not alerted again
        (tracked(job(), progress_at=STUCK_SINCE, stalled=StallReason.NO_PROGRESS), NOW, []),
    ],
)
def test_stall_rules_fire_at_their_deadline(
    state: JobState, now: datetime, expected: list[EventKind]
) -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": state})
    # the same observation as before: nothing moved
    assert kinds(previous, observe(state.job, at=now), now) == expected


def test_stall_reason_names_the_rule_that_fired() -> None:
    state = tracked(job(**PENDING, created_at=NOW - timedelta(hours=1)))
    previous = WatchState(kbs=known_kb(), jobs={"job-1": state})
    _, found = detect(previous, observe(state.job), NOW, POLICY)
    assert found[0].stall_reason is StallReason.PENDING_TOO_LONG


def test_stalled_job_that_moves_again_recovers_once_then_can_stall_again() -> None:
    stuck = tracked(job(), progress_at=STUCK_SINCE)
    state, found = detect(
        WatchState(kbs=known_kb(), jobs={"job-1": stuck}), observe(stuck.job), NOW, POLICY
    )
    assert [t.kind for t in found] == [E.STALLED]
    moved = job(completed_datasources=2, updated_at=NOW)
    later = NOW + timedelta(minutes=1)
    state, found = detect(state, observe(moved, at=later), later, POLICY)
    assert [(t.kind, t.event_id) for t in found] == [(E.RECOVERED, "job-1/recovered/1")]
    much_later = later + timedelta(minutes=30)
    _, found = detect(state, observe(moved, at=much_later), much_later, POLICY)
    assert [(t.kind, t.event_id) for t in found] == [(E.STALLED, "job-1/stalled/2")]


def test_stalled_job_that_ends_gets_recovered_and_its_outcome() -> None:
    stuck = tracked(job(), progress_at=STUCK_SINCE, stalled=StallReason.NO_PROGRESS, stall_count=1)
    previous = WatchState(kbs=known_kb(), jobs={"job-1": stuck})
    assert kinds(previous, observe(job(**COMPLETED))) == [E.RECOVERED, E.COMPLETED]


def test_a_job_over_max_runtime_recovers_only_by_ending() -> None:
    long = tracked(
        job(started_at=NOW - timedelta(hours=7)), stalled=StallReason.MAX_RUNTIME, stall_count=1
    )
    previous = WatchState(kbs=known_kb(), jobs={"job-1": long})
    moving = job(started_at=NOW - timedelta(hours=7), total_tokens=999, updated_at=NOW)
    assert kinds(previous, observe(moving)) == []
    assert kinds(previous, observe(job(**FAILED))) == [E.RECOVERED, E.FAILED]


def test_pending_stall_recovers_when_the_job_starts_running() -> None:
    stuck = tracked(
        job(**PENDING, created_at=NOW - timedelta(hours=1)),
        stalled=StallReason.PENDING_TOO_LONG,
        stall_count=1,
    )
    previous = WatchState(kbs=known_kb(), jobs={"job-1": stuck})
    assert kinds(previous, observe(job(**RUNNING, updated_at=NOW))) == [E.RECOVERED]


@pytest.mark.parametrize(
    "moved",
    [
        # each progress signal on its own counts as movement
        {"updated_at": NOW},
        {"completed_datasources": 2},
        {"total_tokens": 101},
        {"data_source_jobs": (DataSourceJob(data_source_uuid="ds", indexed_item_count=5),)},
    ],
)
def test_any_progress_signal_moving_resets_the_no_progress_clock(moved: dict[str, object]) -> None:
    state = tracked(job(), progress_at=NOW - timedelta(minutes=29))
    previous = WatchState(kbs=known_kb(), jobs={"job-1": state})
    later = NOW + timedelta(minutes=5)
    new_state, found = detect(previous, observe(job(**moved), at=later), later, POLICY)  # type: ignore[arg-type]
    assert found == ()
    assert new_state.jobs["job-1"].progress_at == later


def test_a_followed_job_missing_from_the_observation_still_stalls_at_its_deadline() -> None:
    stuck = tracked(job(), progress_at=STUCK_SINCE)
    previous = WatchState(kbs=known_kb(), jobs={"job-1": stuck})
    assert kinds(previous, observe()) == [E.STALLED]


def test_a_phase_change_alone_counts_as_progress() -> None:
    """Pending to running with every counter still is movement: the no-progress clock resets."""
    state = tracked(job(**PENDING), progress_at=NOW - timedelta(minutes=29))
    previous = WatchState(kbs=known_kb(), jobs={"job-1": state})
    new_state, _ = detect(previous, observe(job(**RUNNING)), NOW, POLICY)
    assert new_state.jobs["job-1"].progress_at == NOW


def test_stall_deadline_is_stored_for_running_jobs_and_cleared_when_done() -> None:
    state, _ = detect(WatchState(kbs=known_kb()), observe(job(**RUNNING)), NOW, POLICY)
    running = state.jobs["job-1"]
    assert running.deadline == running.progress_at + POLICY.no_progress_after
    later = NOW + timedelta(minutes=1)
    state, _ = detect(state, observe(job(**COMPLETED), at=later), later, POLICY)
    assert state.jobs["job-1"].deadline is None
    assert stall_deadline(state.jobs["job-1"], POLICY) is None


def test_first_sight_of_a_job_stuck_for_hours_stalls_at_once() -> None:
    """updated_at from the API seeds the no-progress clock, so an old stuck job is caught."""
    old = job(updated_at=NOW - timedelta(hours=2), started_at=NOW - timedelta(hours=3))
    assert kinds(WatchState(), observe(old)) == [E.STARTED, E.STALLED]


def test_the_terminal_observation_wins_when_a_job_is_seen_twice_in_one_cycle() -> None:
    """The KB list and the latest-15 list may disagree; the more advanced view counts."""
    previous = WatchState(kbs=known_kb(), jobs={"job-1": tracked(job(**RUNNING))})
    assert kinds(previous, observe(job(**COMPLETED), job(**RUNNING))) == [E.COMPLETED]

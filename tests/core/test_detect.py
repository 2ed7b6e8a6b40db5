"""Detection rules, table-driven: (previous, observation, now) -> expected events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.clocks import Elapsed, Instant
from watcher.core.detect import detect
from watcher.core.model import DataSourceJob, EventKind, Job, KnowledgeBase, Phase, Status
from watcher.core.render import render
from watcher.core.stall import stall_due
from watcher.core.state import (
    JobState,
    KbState,
    Observation,
    Policy,
    Sighting,
    StallReason,
    WatchState,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NOW_I = Instant.aligned(NOW)
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
    return {KB: KbState(uuid=KB, name="docs", first_seen_at=first_seen, news_since=first_seen)}


def ago(delta: timedelta, now: Instant = NOW_I) -> Elapsed:
    """The elapsed-clock reading `delta` before `now`."""
    return now.elapsed.minus(delta)


def tracked(j: Job, moved_ago: timedelta = timedelta(minutes=1), **fields: object) -> JobState:
    """A job the watcher follows since an hour ago, started alerted, last seen moving then."""
    state = JobState(
        job=j,
        kb_uuid=KB,
        first_seen_at=NOW - timedelta(hours=1),
        progress_at=NOW - moved_ago,
        started_alerted=True,
        sighting=Sighting(first=ago(timedelta(hours=1)), moved=ago(moved_ago)),
    )
    return replace(state, **fields)  # type: ignore[arg-type]


def observe(*jobs: Job, at: datetime = NOW, began: datetime | None = None) -> Observation:
    last = jobs[-1] if jobs else None
    kb = KnowledgeBase(uuid=KB, name="docs", last_indexing_job=last)
    return Observation(at=at, kbs=(kb,), jobs=jobs, api_began=began or at)


def kinds(
    previous: WatchState, observation: Observation, now: Instant = NOW_I, policy: Policy = POLICY
) -> list[EventKind]:
    _, transitions = detect(previous, observation, now, policy)
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


def test_first_run_records_finished_jobs_as_done_and_sets_the_baseline() -> None:
    """Jobs recorded silently are marked done so they can never alert later."""
    state, _ = detect(WatchState(), observe(job(**FAILED)), NOW_I, POLICY)
    assert state.jobs["job-1"].done
    assert KB in state.kbs
    # the first read began at NOW on the API's clock: news begins one second before it
    assert state.baseline == NOW - timedelta(seconds=1)
    assert state.kbs[KB].news_since == NOW - timedelta(seconds=1)


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
    """A finished job created before the watcher first read the KB is not a new event."""
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


# --- history or news, on the API's clock, whatever the local clock says ------------------------

# The API's clock against the watcher's: behind and ahead by 0 s, 1 s, 90 s and 10 minutes.
SKEWS = [timedelta(seconds=s) for s in (0, 1, -1, 90, -90, 600, -600)]
POLL = datetime(2026, 11, 28, 12, 0, 5, 700_000, tzinfo=UTC)  # true time of the first poll


def skewed(true: datetime, skew: timedelta) -> Instant:
    """The watcher's three clocks at true time `true`, the API's clock `skew` off the wall's."""
    return Instant(wall=true, api=true + skew, elapsed=Elapsed((true - NOW).total_seconds(), "b"))


def first_run(skew: timedelta, *jobs: Job, kbs: tuple[str, ...] = (KB,)) -> WatchState:
    """The state after a first poll at POLL that read `kbs` with these jobs."""
    now = skewed(POLL, skew)
    views = tuple(
        KnowledgeBase(uuid=kb, name=kb, created_at=NOW - timedelta(days=30)) for kb in kbs
    )
    views = tuple(replace(v, last_indexing_job=jobs[-1] if jobs else None) for v in views)
    first = Observation(at=now.wall, kbs=views, jobs=jobs, api_began=now.api)
    state, _ = detect(WatchState(), first, now, POLICY)
    return state


def second_poll(
    state: WatchState, skew: timedelta, *jobs: Job, kb: KnowledgeBase | None = None
) -> list[EventKind]:
    """What a poll 15 s after the first finds, with these jobs (of KB, or of `kb`)."""
    now = skewed(POLL + timedelta(seconds=15), skew)
    view = kb or KnowledgeBase(uuid=KB, name=KB, created_at=NOW - timedelta(days=30))
    view = replace(view, last_indexing_job=jobs[-1] if jobs else None)
    observation = Observation(at=now.wall, kbs=(view,), jobs=jobs, api_began=now.api)
    _, transitions = detect(state, observation, now, POLICY)
    return [t.kind for t in transitions]


def api_time(true: datetime, skew: timedelta) -> datetime:
    """What the API stamps (whole seconds, on its own clock) for something at true time `true`."""
    return (true + skew).replace(microsecond=0)


@pytest.mark.parametrize("skew", SKEWS, ids=str)
def test_a_job_created_in_the_same_second_as_the_first_poll_and_finished_by_the_next_is_news(
    skew: timedelta,
) -> None:
    """Created 0.2 s after the first poll read its KB, stamped with that poll's whole second."""
    state = first_run(skew, job("old", **COMPLETED, created_at=api_time(NOW, skew)))
    created = api_time(POLL + timedelta(seconds=0.2), skew)
    fresh = job("new", **FAILED, created_at=created, updated_at=created + timedelta(seconds=9))
    assert second_poll(state, skew, fresh) == [E.FAILED]


@pytest.mark.parametrize("skew", SKEWS, ids=str)
def test_a_job_created_a_second_before_the_first_poll_but_unseen_by_it_is_still_news(
    skew: timedelta,
) -> None:
    """The read began at POLL; a job stamped one second earlier is within the margin."""
    state = first_run(skew, job("old", **COMPLETED, created_at=api_time(NOW, skew)))
    created = api_time(POLL - timedelta(seconds=1), skew)
    assert second_poll(state, skew, job("new", **FAILED, created_at=created)) == [E.FAILED]


@pytest.mark.parametrize("skew", SKEWS, ids=str)
def test_history_from_before_the_first_poll_stays_silent_whatever_the_skew(
    skew: timedelta,
) -> None:
    state = first_run(skew, job("old", **COMPLETED, created_at=api_time(NOW, skew)))
    created = api_time(POLL - timedelta(seconds=3), skew)
    assert second_poll(state, skew, job("older", **FAILED, created_at=created)) == []


@pytest.mark.parametrize("skew", SKEWS, ids=str)
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # creating a KB starts a job: its outcome between two polls is news, never history
        (FAILED, [E.FAILED]),
        (COMPLETED, [E.COMPLETED]),
        (RUNNING, [E.STARTED]),
    ],
)
def test_a_knowledge_base_created_after_the_first_run_has_only_news(
    skew: timedelta, fields: dict[str, object], expected: list[EventKind]
) -> None:
    state = first_run(skew)
    born = api_time(POLL + timedelta(seconds=3), skew)
    fresh = KnowledgeBase(uuid="kb-new", name="new", created_at=born)
    first_job = replace(
        job("first", **fields, created_at=born, updated_at=born + timedelta(seconds=8)),
        knowledge_base_uuid="kb-new",
    )
    assert second_poll(state, skew, first_job, kb=fresh) == expected


@pytest.mark.parametrize("skew", SKEWS, ids=str)
def test_a_knowledge_base_that_existed_before_the_first_run_keeps_its_history_silent(
    skew: timedelta,
) -> None:
    """A KB added to the config later (or missed by a read) existed: no storm of old news."""
    state = first_run(skew)
    old = KnowledgeBase(uuid="kb-old", name="old", created_at=api_time(NOW, skew) - timedelta(1))
    finished = replace(
        job("done", **FAILED, created_at=api_time(NOW, skew)), knowledge_base_uuid="kb-old"
    )
    assert second_poll(state, skew, finished, kb=old) == []


def test_an_empty_account_on_the_first_run_still_sets_the_baseline_for_kbs_created_later() -> None:
    state = first_run(timedelta(0), kbs=())
    assert state.baseline is not None
    born = api_time(POLL + timedelta(seconds=5), timedelta(0))
    fresh = KnowledgeBase(uuid="kb-new", name="new", created_at=born)
    first = replace(job("j", **FAILED, created_at=born), knowledge_base_uuid="kb-new")
    assert second_poll(state, timedelta(0), first, kb=fresh) == [E.FAILED]


@pytest.mark.parametrize("skew", SKEWS, ids=str)
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # a replica ahead of the API's own Date header: a future timestamp is news, not history
        (FAILED, [E.FAILED]),
        # and never a stall: nothing has waited a negative time
        (PENDING, [E.STARTED]),
        (RUNNING, [E.STARTED]),
    ],
)
def test_future_timestamps_are_news_and_never_stall(
    skew: timedelta, fields: dict[str, object], expected: list[EventKind]
) -> None:
    state = first_run(skew)
    future = api_time(POLL + timedelta(minutes=50), skew)
    ahead = job("ahead", **fields, created_at=future, started_at=future, updated_at=future)
    assert second_poll(state, skew, ahead) == expected


# --- stalls judged on the right clock ---------------------------------------------------------

QUICK = Policy(
    pending_after=timedelta(minutes=2),
    no_progress_after=timedelta(seconds=60),
    max_runtime=timedelta(hours=1),
)


@pytest.mark.parametrize("skew", SKEWS, ids=str)
def test_a_job_that_moved_a_moment_ago_on_the_apis_clock_is_not_stalled_on_first_sight(
    skew: timedelta,
) -> None:
    now = skewed(POLL, skew)
    moving = job(
        updated_at=api_time(POLL - timedelta(seconds=5), skew),
        created_at=api_time(POLL - timedelta(minutes=5), skew),
        started_at=api_time(POLL - timedelta(minutes=4), skew),
    )
    assert kinds(WatchState(), observe(moving, began=now.api), now, QUICK) == [E.STARTED]


@pytest.mark.parametrize("skew", SKEWS, ids=str)
@pytest.mark.parametrize(
    ("waited", "expected"),
    [
        # pending for pending_after on the API's clock: stalled, whatever the local clock says
        (timedelta(minutes=2), [E.STARTED, E.STALLED]),
        (timedelta(minutes=2) - timedelta(seconds=2), [E.STARTED]),
    ],
)
def test_the_pending_deadline_is_measured_on_the_apis_clock(
    skew: timedelta, waited: timedelta, expected: list[EventKind]
) -> None:
    now = skewed(POLL, skew)
    created = api_time(POLL, skew) - waited
    pending = job(**PENDING, created_at=created, updated_at=created, started_at=None)
    assert kinds(WatchState(), observe(pending, began=now.api), now, QUICK) == expected


@pytest.mark.parametrize(
    ("wall_step", "elapsed", "expected"),
    [
        # the wall clock steps two hours ahead, one real minute passes: not stalled
        (timedelta(hours=2), timedelta(seconds=30), []),
        (timedelta(hours=-2), timedelta(seconds=30), []),
        # an unmoving job stalls when the elapsed clock says so, whatever the wall clock did
        (timedelta(hours=-2), timedelta(seconds=61), [E.STALLED]),
        (timedelta(0), timedelta(seconds=61), [E.STALLED]),
    ],
)
def test_no_progress_is_measured_on_the_watchers_elapsed_clock_not_the_wall_clock(
    wall_step: timedelta, elapsed: timedelta, expected: list[EventKind]
) -> None:
    state = tracked(job(), moved_ago=timedelta(0))
    previous = WatchState(kbs=known_kb(), jobs={"job-1": state})
    later = Instant(wall=NOW + wall_step, api=NOW + elapsed, elapsed=NOW_I.elapsed.minus(-elapsed))
    assert kinds(previous, observe(state.job, at=later.wall), later, QUICK) == expected


@pytest.mark.parametrize(
    ("updated_ago", "expected"),
    [
        # after a reboot the watcher's sightings cannot be compared: re-seeded from updated_at
        (timedelta(seconds=10), []),
        (timedelta(minutes=5), [E.STALLED]),
    ],
)
def test_a_sighting_from_another_boot_is_reseeded_from_the_apis_updated_at(
    updated_ago: timedelta, expected: list[EventKind]
) -> None:
    stale = tracked(job(updated_at=NOW - updated_ago), moved_ago=timedelta(0))
    stale = replace(stale, sighting=Sighting(Elapsed(9e9, "old-boot"), Elapsed(9e9, "old-boot")))
    previous = WatchState(kbs=known_kb(), jobs={"job-1": stale})
    assert kinds(previous, observe(stale.job), NOW_I, QUICK) == expected


def test_a_store_written_before_sightings_existed_is_reseeded_without_a_false_stall() -> None:
    legacy = replace(tracked(job(updated_at=NOW)), sighting=None)
    previous = WatchState(kbs=known_kb(), jobs={"job-1": legacy})
    state, found = detect(previous, observe(legacy.job), NOW_I, QUICK)
    assert found == ()
    assert state.jobs["job-1"].sighting is not None


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
    state, transitions = detect(previous, observe(job(**RUNNING)), NOW_I, POLICY)
    assert [t.kind for t in transitions] == [E.STARTED]
    assert kinds(state, observe(job(**RUNNING, updated_at=NOW))) == []


def test_terminal_event_is_emitted_once_even_if_the_job_keeps_being_seen() -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": tracked(job(**RUNNING))})
    state, first = detect(previous, observe(job(**FAILED)), NOW_I, POLICY)
    later = NOW + timedelta(minutes=1)
    again = observe(job(**FAILED, updated_at=later), at=later)
    _, second = detect(state, again, Instant.aligned(later), POLICY)
    assert [t.kind for t in first] == [E.FAILED]
    assert second == ()


def test_a_finished_job_that_flips_back_to_running_produces_nothing() -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": tracked(job(**COMPLETED), done=True)})
    assert kinds(previous, observe(job(**RUNNING))) == []


def test_event_ids_are_deterministic_so_replays_are_idempotent() -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": tracked(job(**RUNNING))})
    _, a = detect(previous, observe(job(**PARTIAL)), NOW_I, POLICY)
    _, b = detect(previous, observe(job(**PARTIAL)), NOW_I, POLICY)
    assert [t.event_id for t in a] == [t.event_id for t in b] == ["job-1/partial"]


def test_transitions_carry_the_kb_name_the_job_and_the_wall_clock_time() -> None:
    now = Instant(wall=NOW, api=NOW - timedelta(minutes=10), elapsed=NOW_I.elapsed)
    _, found = detect(WatchState(kbs=known_kb()), observe(job(**FAILED)), now, POLICY)
    assert found[0].kb_name == "docs"
    assert found[0].kb_uuid == KB
    assert found[0].job_uuid == "job-1"
    assert found[0].at == NOW


def test_a_job_without_any_knowledge_base_is_ignored() -> None:
    orphan = job(**FAILED, knowledge_base_uuid=None)
    assert kinds(WatchState(kbs=known_kb()), observe(orphan)) == []


# --- stalls ------------------------------------------------------------------------------------

STUCK = timedelta(minutes=31)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # no progress for exactly the threshold: stalled (the edge is inclusive)
        (tracked(job(), moved_ago=timedelta(minutes=30)), [E.STALLED]),
        # one second before the threshold: nothing yet
        (tracked(job(), moved_ago=timedelta(minutes=30) - timedelta(seconds=1)), []),
        # pending for longer than pending_after (since created_at)
        (tracked(job(**PENDING, created_at=NOW - timedelta(minutes=20))), [E.STALLED]),
        (tracked(job(**PENDING, created_at=NOW - timedelta(minutes=19))), []),
        # pending with no created_at: since the watcher first saw it (an hour ago)
        (tracked(job(**PENDING, created_at=None)), [E.STALLED]),
        # running longer than max_runtime even while progressing
        (tracked(job(started_at=NOW - timedelta(hours=6))), [E.STALLED]),
        (tracked(job(started_at=NOW - timedelta(hours=5, minutes=59))), []),
        # a job already stalled is not alerted again
        (tracked(job(), moved_ago=STUCK, stalled=StallReason.NO_PROGRESS), []),
    ],
)
def test_stall_rules_fire_at_their_deadline(state: JobState, expected: list[EventKind]) -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": state})
    # the same observation as before: nothing moved
    assert kinds(previous, observe(state.job)) == expected


def test_stall_reason_names_the_rule_that_fired() -> None:
    state = tracked(job(**PENDING, created_at=NOW - timedelta(hours=1)))
    previous = WatchState(kbs=known_kb(), jobs={"job-1": state})
    _, found = detect(previous, observe(state.job), NOW_I, POLICY)
    assert found[0].stall_reason is StallReason.PENDING_TOO_LONG


def test_stalled_job_that_moves_again_recovers_once_then_can_stall_again() -> None:
    stuck = tracked(job(), moved_ago=STUCK)
    state, found = detect(
        WatchState(kbs=known_kb(), jobs={"job-1": stuck}), observe(stuck.job), NOW_I, POLICY
    )
    assert [t.kind for t in found] == [E.STALLED]
    moved = job(completed_datasources=2, updated_at=NOW)
    later = Instant.aligned(NOW + timedelta(minutes=1))
    state, found = detect(state, observe(moved, at=later.wall), later, POLICY)
    assert [(t.kind, t.event_id) for t in found] == [(E.RECOVERED, "job-1/recovered/1")]
    much_later = Instant.aligned(later.wall + timedelta(minutes=30))
    _, found = detect(state, observe(moved, at=much_later.wall), much_later, POLICY)
    assert [(t.kind, t.event_id) for t in found] == [(E.STALLED, "job-1/stalled/2")]


def test_stalled_job_that_ends_gets_recovered_and_its_outcome() -> None:
    stuck = tracked(job(), moved_ago=STUCK, stalled=StallReason.NO_PROGRESS, stall_count=1)
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
    state = tracked(job(), moved_ago=timedelta(minutes=29))
    previous = WatchState(kbs=known_kb(), jobs={"job-1": state})
    later = Instant.aligned(NOW + timedelta(minutes=5))
    observation = observe(job(**moved), at=later.wall)  # type: ignore[arg-type]
    new_state, found = detect(previous, observation, later, POLICY)
    assert found == ()
    sighting = new_state.jobs["job-1"].sighting
    assert sighting is not None and sighting.moved == later.elapsed
    assert new_state.jobs["job-1"].progress_at == later.wall


def test_a_followed_job_missing_from_the_observation_still_stalls_at_its_deadline() -> None:
    stuck = tracked(job(), moved_ago=STUCK)
    previous = WatchState(kbs=known_kb(), jobs={"job-1": stuck})
    assert kinds(previous, observe()) == [E.STALLED]


def test_a_phase_change_alone_counts_as_progress() -> None:
    """Pending to running with every counter still is movement: the no-progress clock resets."""
    state = tracked(job(**PENDING), moved_ago=timedelta(minutes=29))
    previous = WatchState(kbs=known_kb(), jobs={"job-1": state})
    new_state, _ = detect(previous, observe(job(**RUNNING)), NOW_I, POLICY)
    sighting = new_state.jobs["job-1"].sighting
    assert sighting is not None and sighting.moved == NOW_I.elapsed


def test_the_next_stall_deadline_is_noted_for_people_and_cleared_when_done() -> None:
    state, _ = detect(WatchState(kbs=known_kb()), observe(job(**RUNNING)), NOW_I, POLICY)
    running = state.jobs["job-1"]
    # updated a minute ago on the API's clock: 29 minutes left of no_progress_after
    assert running.deadline == NOW + timedelta(minutes=29)
    later = Instant.aligned(NOW + timedelta(minutes=1))
    state, _ = detect(state, observe(job(**COMPLETED), at=later.wall), later, POLICY)
    assert state.jobs["job-1"].deadline is None
    assert stall_due(state.jobs["job-1"], later, POLICY) is None


def test_first_sight_of_a_job_stuck_for_hours_stalls_at_once() -> None:
    """updated_at (on the API's clock) seeds the no-progress clock: an old stuck job is caught."""
    old = job(updated_at=NOW - timedelta(hours=2), started_at=NOW - timedelta(hours=3))
    assert kinds(WatchState(), observe(old)) == [E.STARTED, E.STALLED]


def test_the_terminal_observation_wins_when_a_job_is_seen_twice_in_one_cycle() -> None:
    """The KB list and the latest-15 list may disagree; the more advanced view counts."""
    previous = WatchState(kbs=known_kb(), jobs={"job-1": tracked(job(**RUNNING))})
    assert kinds(previous, observe(job(**COMPLETED), job(**RUNNING))) == [E.COMPLETED]


@pytest.mark.parametrize("skew", SKEWS, ids=str)
def test_a_started_alert_times_the_job_on_the_apis_clock_whatever_the_skew(
    skew: timedelta,
) -> None:
    """A job started a second before the second poll (on the API's clock) has run 1 s, with the
    API's clock 10 minutes or 90 s behind or ahead: the wall clock never enters the sum."""
    state = first_run(skew, job("old", **COMPLETED, created_at=api_time(NOW, skew)))
    seen = skewed(POLL + timedelta(seconds=15), skew)
    started = seen.api - timedelta(seconds=1)
    fresh = job("new", **RUNNING, created_at=started, started_at=started, updated_at=started)
    view = KnowledgeBase(uuid=KB, name=KB, created_at=NOW - timedelta(days=30))
    observation = Observation(
        at=seen.wall,
        kbs=(replace(view, last_indexing_job=fresh),),
        jobs=(fresh,),
        api_began=seen.api,
    )
    _, transitions = detect(state, observation, seen, POLICY)
    [started_alert] = [t for t in transitions if t.kind is E.STARTED]
    assert started_alert.api_at == seen.api
    text = render(started_alert).text
    assert "Duration: 1s" in text, text

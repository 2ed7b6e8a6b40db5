"""Corrections, table-driven: a done job seen again -> its verdict stands, or is corrected.

Builders come from `test_detect` (a fixed `NOW`, one KB known for a day); a job's `updated_at`
decides which copy is newer (the API's clock).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.core.test_detect import (
    CANCELLED,
    COMPLETED,
    FAILED,
    KB,
    NOW,
    NOW_I,
    PARTIAL,
    PENDING,
    POLICY,
    RUNNING,
    SUCCEEDED_ONLY,
    UNKNOWN_BOTH,
    E,
    job,
    known_kb,
    observe,
    tracked,
)
from watcher.core.clocks import Instant
from watcher.core.corrections import MAX_CORRECTIONS, Review, review
from watcher.core.decide import RouteRule, route
from watcher.core.detect import detect
from watcher.core.state import JobState, KbState, WatchState

JUDGED = NOW - timedelta(minutes=10)  # the `updated_at` of the copy the outcome was judged on
LATER = NOW - timedelta(minutes=1)
EARLIER = NOW - timedelta(minutes=20)


def alerted(fields: dict[str, object], **state: object) -> JobState:
    """A job followed from running and alerted finished (`fields`), judged on a copy of JUDGED."""
    return tracked(job(**fields, updated_at=JUDGED), done=True, **state)  # type: ignore[arg-type]


def history(fields: dict[str, object]) -> JobState:
    """A finished job recorded silently: created before its KB's news began, never alerted."""
    old = job(**fields, created_at=NOW - timedelta(days=3), updated_at=JUDGED)  # type: ignore[arg-type]
    return JobState(job=old, kb_uuid=KB, first_seen_at=NOW, progress_at=NOW, done=True)


def seen(prior: JobState, copy: dict[str, object], **fields: object) -> tuple[list[E], list[str]]:
    """The events (and their ids) when `prior` is seen again as `copy`."""
    previous = WatchState(kbs=known_kb(), jobs={"job-1": prior})
    _, found = detect(previous, observe(job(**copy, **fields)), NOW_I, POLICY)  # type: ignore[arg-type]
    return [t.kind for t in found], [t.event_id for t in found]


@pytest.mark.parametrize(
    ("prior", "copy", "updated", "expected"),
    [
        # the same outcome, updated later (updated_at moves after finished_at): nothing
        (alerted(COMPLETED), COMPLETED, LATER, Review.SAME),
        # a newer copy running again: the "completed" was wrong
        (alerted(COMPLETED), RUNNING, LATER, Review.RUNNING_AGAIN),
        (alerted(COMPLETED), PENDING, LATER, Review.RUNNING_AGAIN),
        # a newer copy that ended otherwise
        (alerted(COMPLETED), FAILED, LATER, Review.OTHER_OUTCOME),
        (alerted(PARTIAL), CANCELLED, LATER, Review.OTHER_OUTCOME),
        # a copy as old as the verdict's, or older (a lagging replica): the verdict stands
        (alerted(COMPLETED), RUNNING, JUDGED, Review.KEPT),
        (alerted(COMPLETED), FAILED, EARLIER, Review.KEPT),
        # a copy without a time cannot be shown newer
        (alerted(COMPLETED), RUNNING, None, Review.KEPT),
        # states nobody knows say nothing, however new
        (alerted(COMPLETED), UNKNOWN_BOTH, LATER, Review.KEPT),
        # a copy without its status reads "succeeded" only: it cannot unsay a partial
        (alerted(PARTIAL), SUCCEEDED_ONLY, LATER, Review.KEPT),
        # ...but a status that says otherwise can
        (alerted(PARTIAL), COMPLETED, LATER, Review.OTHER_OUTCOME),
        # history recorded silently told nobody anything: nothing to correct
        (history(COMPLETED), RUNNING, LATER, Review.KEPT),
        (history(COMPLETED), FAILED, LATER, Review.KEPT),
        # a job corrected MAX_CORRECTIONS times already: the last verdict stands
        (alerted(COMPLETED, corrections=MAX_CORRECTIONS), FAILED, LATER, Review.KEPT),
        (alerted(COMPLETED, corrections=MAX_CORRECTIONS - 1), FAILED, LATER, Review.OTHER_OUTCOME),
    ],
)
def test_a_done_job_seen_again_is_reviewed_by_these_rules(
    prior: JobState, copy: dict[str, object], updated: object, expected: Review
) -> None:
    kb = known_kb()[KB]
    assert review(prior, job(**copy, updated_at=updated), kb) is expected  # type: ignore[arg-type]


def test_an_outcome_first_seen_finished_on_the_news_side_counts_as_alerted() -> None:
    """A job that started and ended between two polls was alerted with its outcome."""
    news = JobState(
        job=job(**COMPLETED, created_at=NOW - timedelta(minutes=5), updated_at=JUDGED),  # type: ignore[arg-type]
        kb_uuid=KB,
        first_seen_at=NOW,
        progress_at=NOW,
        done=True,
    )
    kb = KbState(uuid=KB, name="docs", first_seen_at=NOW - timedelta(days=1), news_since=EARLIER)
    assert review(news, job(**RUNNING, updated_at=LATER), kb) is Review.RUNNING_AGAIN  # type: ignore[arg-type]


def test_a_false_completed_then_the_real_failure_gives_corrected_and_the_failure() -> None:
    """The issue's case, once a `completed` got out: the failure is not lost."""
    kinds, ids = seen(alerted(COMPLETED), FAILED, updated_at=LATER)
    assert kinds == [E.CORRECTED, E.FAILED]
    assert ids == ["job-1/corrected/1", "job-1/failed/2"]


def test_a_job_found_running_again_is_corrected_then_followed_to_its_outcome() -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": alerted(COMPLETED)})
    state, found = detect(previous, observe(job(**RUNNING, updated_at=LATER)), NOW_I, POLICY)  # type: ignore[arg-type]
    [fixed] = found
    assert (fixed.kind, fixed.corrects, fixed.event_id) == (
        E.CORRECTED,
        E.COMPLETED,
        "job-1/corrected/1",
    )
    assert (
        fixed.detail is not None
        and "reported completed" in fixed.detail
        and "running" in fixed.detail
    )
    reopened = state.jobs["job-1"]
    assert (reopened.done, reopened.corrections, reopened.started_alerted) == (False, 1, True)

    # it moves, then ends completed (for real this time): a second `completed`, numbered
    later = NOW + timedelta(minutes=5)
    moved = observe(job(**RUNNING, updated_at=later, completed_datasources=2), at=later)
    state, found = detect(state, moved, Instant.aligned(later), POLICY)
    assert found == ()
    end = NOW + timedelta(minutes=9)
    ended = observe(job(**COMPLETED, updated_at=end), at=end)
    state, found = detect(state, ended, Instant.aligned(end), POLICY)
    assert [(t.kind, t.event_id) for t in found] == [(E.COMPLETED, "job-1/completed/2")]
    assert state.jobs["job-1"].done


def test_a_reopened_job_that_stops_moving_can_stall() -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": alerted(COMPLETED)})
    state, _ = detect(previous, observe(job(**RUNNING, updated_at=LATER)), NOW_I, POLICY)  # type: ignore[arg-type]
    much_later = NOW + timedelta(minutes=31)
    _, found = detect(
        state,
        observe(job(**RUNNING, updated_at=LATER), at=much_later),  # type: ignore[arg-type]
        Instant.aligned(much_later),
        POLICY,
    )
    assert [t.kind for t in found] == [E.STALLED]


def test_the_verdict_copy_is_kept_when_a_copy_does_not_count() -> None:
    """Keeping the last trusted state: the stored job stays the verdict's copy, so a later
    newer contradiction is still measured against it."""
    prior = alerted(COMPLETED)
    previous = WatchState(kbs=known_kb(), jobs={"job-1": prior})
    state, found = detect(previous, observe(job(**UNKNOWN_BOTH, updated_at=LATER)), NOW_I, POLICY)  # type: ignore[arg-type]
    assert found == () and state.jobs["job-1"] == prior


def test_a_flapping_api_is_corrected_at_most_max_corrections_times() -> None:
    state = WatchState(kbs=known_kb(), jobs={"job-1": alerted(COMPLETED)})
    told: list[E] = []
    for minute in range(1, 20):
        at = NOW + timedelta(minutes=minute)
        copy = COMPLETED if minute % 2 == 0 else FAILED
        state, found = detect(
            state, observe(job(**copy, updated_at=at), at=at), Instant.aligned(at), POLICY
        )  # type: ignore[arg-type]
        told += [t.kind for t in found]
    assert told.count(E.CORRECTED) == MAX_CORRECTIONS


def test_corrected_goes_to_routes_that_asked_for_it_or_for_the_outcome_it_corrects() -> None:
    _, found = detect(
        WatchState(kbs=known_kb(), jobs={"job-1": alerted(COMPLETED)}),
        observe(job(**FAILED, updated_at=LATER)),  # type: ignore[arg-type]
        NOW_I,
        POLICY,
    )
    rules = [
        RouteRule("done-team", frozenset({E.COMPLETED})),
        RouteRule("failures", frozenset({E.FAILED})),
        RouteRule("auditors", frozenset({E.CORRECTED})),
        RouteRule("starts", frozenset({E.STARTED})),
    ]
    got = {(d.route, d.event_id) for d in route(found, rules)}
    assert got == {
        ("done-team", "job-1/corrected/1"),
        ("auditors", "job-1/corrected/1"),
        ("failures", "job-1/failed/2"),
    }


def test_a_correction_replayed_is_the_same_event() -> None:
    previous = WatchState(kbs=known_kb(), jobs={"job-1": alerted(COMPLETED)})
    copy = observe(job(**FAILED, updated_at=LATER))  # type: ignore[arg-type]
    _, a = detect(previous, copy, NOW_I, POLICY)
    _, b = detect(previous, copy, NOW_I, POLICY)
    assert [t.event_id for t in a] == [t.event_id for t in b]


def test_history_seen_running_later_changes_nothing() -> None:
    prior = history(COMPLETED)
    previous = WatchState(kbs=known_kb(), jobs={"job-1": prior})
    state, found = detect(previous, observe(job(**RUNNING, updated_at=LATER)), NOW_I, POLICY)  # type: ignore[arg-type]
    assert found == () and state.jobs["job-1"] == replace(prior)

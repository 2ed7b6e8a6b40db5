"""A done job left unchanged by `detect` is not judged again on the very same inputs, and is
judged again as soon as any input moves: a new copy from the API, a row another writer
wrote, its KB's stored state, a second copy of it in the same cycle, another policy. In
every case the answer is the one `detect` gives when it sees every job."""

from __future__ import annotations

from dataclasses import replace

from tests.core.test_detect import COMPLETED, KB, NOW_I, POLICY, RUNNING, job, known_kb, tracked
from watcher.core.detect import detect
from watcher.core.model import EventKind, Job, KnowledgeBase
from watcher.core.state import JobState, Observation, Transition, WatchState
from watcher.service.unmoved import Unmoved


def cycle(
    memo: Unmoved, previous: WatchState, jobs: tuple[Job, ...], kb: KnowledgeBase
) -> tuple[WatchState, tuple[Transition, ...]]:
    """One cycle's detection with the memo, checked against `detect` over every job."""
    seen = Observation(NOW_I.wall, (kb,), jobs, api_began=NOW_I.api)
    judged = memo.to_judge(jobs, (kb,), previous, POLICY)
    state, transitions = detect(previous, replace(seen, jobs=judged), NOW_I, POLICY)
    memo.remember(jobs, (kb,), previous, state, transitions)
    assert (state, transitions) == detect(previous, seen, NOW_I, POLICY)
    return state, transitions


def done_state(copy: Job) -> JobState:
    return replace(tracked(copy), done=True)


def idle() -> tuple[Unmoved, WatchState, Job, KnowledgeBase]:
    """A memo that has seen one cycle of a done job alerted as completed, left unchanged."""
    copy = job(**COMPLETED)
    kb = KnowledgeBase(uuid=KB, name="docs", last_indexing_job=copy)
    previous = WatchState(kbs=known_kb(), jobs={copy.uuid: done_state(copy)})
    memo = Unmoved()
    state, transitions = cycle(memo, previous, (copy,), kb)
    assert state.jobs[copy.uuid] is previous.jobs[copy.uuid] and not transitions
    return memo, previous, copy, kb


def test_a_done_job_on_the_very_same_inputs_is_not_judged_again() -> None:
    memo, previous, copy, kb = idle()
    for _ in range(3):
        cycle(memo, previous, (copy,), kb)
    assert memo.skipped == 3


def test_a_row_another_writer_wrote_is_judged_even_when_no_byte_of_the_api_changed() -> None:
    """`watcher once` beside (or a replica) wrote the job as still running: the very same
    completed copy from the API now tells its outcome, and it is alerted."""
    memo, previous, copy, kb = idle()
    written = replace(tracked(job(**RUNNING)), done=False)  # decoded afresh by the store
    after = replace(previous, jobs={copy.uuid: written})
    _, transitions = cycle(memo, after, (copy,), kb)
    assert [t.kind for t in transitions] == [EventKind.COMPLETED]
    assert memo.skipped == 0


def test_an_equal_row_decoded_again_is_judged_again() -> None:
    """Identity, not equality: a state loaded anew (another writer's, or the cache's turn)
    is judged once more, then kept again."""
    memo, previous, copy, kb = idle()
    again = replace(previous, jobs={copy.uuid: replace(previous.jobs[copy.uuid])})
    cycle(memo, again, (copy,), kb)
    assert memo.skipped == 0
    cycle(memo, again, (copy,), kb)
    assert memo.skipped == 1


def test_a_new_copy_from_the_api_is_judged_and_a_contradiction_is_corrected() -> None:
    memo, previous, copy, kb = idle()
    running = job(**RUNNING, updated_at=copy.updated_at and copy.updated_at.replace(hour=13))
    moved = replace(kb, last_indexing_job=running)
    _, transitions = cycle(memo, previous, (running,), moved)
    assert EventKind.CORRECTED in [t.kind for t in transitions]
    assert memo.skipped == 0


def test_a_new_kb_object_or_stored_kb_state_has_the_job_judged_again() -> None:
    memo, previous, copy, kb = idle()
    cycle(memo, previous, (copy,), replace(kb, name="docs, renamed"))
    assert memo.skipped == 0
    memo, previous, copy, kb = idle()
    renamed = {KB: replace(previous.kbs[KB], name="renamed by another writer")}
    cycle(memo, replace(previous, kbs=renamed), (copy,), kb)
    assert memo.skipped == 0


def test_a_second_copy_in_the_same_cycle_has_the_job_judged_on_both() -> None:
    """The kept copy and a listed one that says it runs again: `detect` weighs both."""
    memo, previous, copy, kb = idle()
    listed = job(**RUNNING, updated_at=copy.updated_at and copy.updated_at.replace(hour=13))
    cycle(memo, previous, (copy, listed), kb)
    assert memo.skipped == 0


def test_a_job_not_done_is_judged_every_cycle_for_its_deadlines() -> None:
    copy = job(**RUNNING)
    kb = KnowledgeBase(uuid=KB, name="docs", last_indexing_job=copy)
    previous = WatchState(kbs=known_kb(), jobs={copy.uuid: tracked(copy)})
    memo = Unmoved()
    for _ in range(3):
        cycle(memo, previous, (copy,), kb)
    assert memo.skipped == 0


def test_another_policy_forgets_what_was_kept() -> None:
    memo, previous, copy, kb = idle()
    other = replace(POLICY, max_runtime=POLICY.max_runtime * 2)
    assert memo.to_judge((copy,), (kb,), previous, other) == (copy,)

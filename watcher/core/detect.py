"""Detection: from what the watcher knew and what it sees now, the events of the contract.

Pure: no I/O and no clock; `now` is an `Instant` (the wall, API and elapsed clocks read at
one moment). `detect` is the only entry point. Three clocks, never mixed: the API's
timestamps are compared with the API's clock only, what the watcher measures itself (no
progress) with its elapsed clock only, and the wall clock only labels things for people.

Rules, in short:
- History or news is decided without the local clock. The first run sets a baseline, the
  API's time when it began reading. A KB first seen later but created at or after the
  baseline is new: all of its jobs are news. Any other KB's news begins where its first
  read began (`news_since`, the API's time, whole seconds, one second of margin): a job
  created before that is history the latest-15 list returns, recorded silently when
  finished; a job created at or after it is news. A pending or running job is alerted
  `started` and followed, history or not (no storm, nothing missed).
- A new job on a known KB that is already finished (it started and ended between two polls)
  is alerted with its outcome.
- Exactly one terminal event per job; a stalled job that ends gets `recovered` too, and both
  carry the stall's reason and when the job last moved (routing then lets the outcome tell
  the story to routes that asked for it).
- A stall is a deadline: pending too long (since `created_at`, on the API's clock), no
  progress signal moving (on the watcher's own sightings, elapsed clock), or running too
  long (since `started_at`, API's clock). It is alerted once; `recovered` follows when the
  job moves again (or ends; a job over its maximum runtime recovers only by ending). A
  sighting from another boot is re-seeded from the API's `updated_at`, as on first sight.
- Unknown enum values never produce an event: such a job is tracked and waits.
- A done job keeps the copy its outcome was judged on. A newer answer that contradicts an
  alerted outcome (the job runs on, or ended otherwise) is alerted as `corrected`, then
  followed to its real outcome (`watcher.core.corrections`); anything else changes nothing.
- A finished job first seen on a known KB with no time at all is left for a later answer,
  and a job of a KB absent from the observation (deleted, unreadable) never stalls.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import assert_never

from watcher.core.clocks import Instant, whole_second
from watcher.core.corrections import Review, correction, review, verdict_number
from watcher.core.history import baseline_for, is_history, is_new_kb, watermark
from watcher.core.model import EventKind, Job, KnowledgeBase
from watcher.core.stall import can_recover, first_sighting, rebased, sighting_of, stall_due
from watcher.core.state import (
    JobState,
    KbState,
    Observation,
    Policy,
    Sighting,
    StallReason,
    Transition,
    WatchState,
)


def detect(
    previous: WatchState, observation: Observation, now: Instant, policy: Policy
) -> tuple[WatchState, tuple[Transition, ...]]:
    """Return the new state and the transitions that `observation` reveals at `now`."""
    began = observation.api_began or now.api
    baseline = previous.baseline or baseline_for(previous, began)
    known = replace(previous, baseline=baseline)
    kbs = dict(previous.kbs)
    for kb in observation.kbs:
        kbs[kb.uuid] = _kb_state(kbs.get(kb.uuid), kb, known, began, now)
    names = {uuid: state.name for uuid, state in kbs.items()}

    jobs = dict(previous.jobs)
    transitions: list[Transition] = []
    for job in freshest(observation.jobs):
        prior = jobs.get(job.uuid)
        kb_uuid = job.knowledge_base_uuid or (prior.kb_uuid if prior else None)
        if kb_uuid is None:
            continue
        kb_state = kbs.get(kb_uuid)
        if prior is None:
            history = is_history(job, kb_state)
            if history is None:
                continue  # a finished job the answer does not date: judge it once one does
            state, found = _first_sight(job, kb_uuid, history, now, policy)
        elif _unjudged_history(prior, job, kb_state):
            state, found = replace(prior, job=job, done=True), []
        else:
            state, found = _follow(rebased(prior, now), job, kb_state, now, policy)
        jobs[job.uuid] = state
        transitions.extend(_with_names(found, names))

    # A job nobody listed can still pass its deadline, but only on a KB read this cycle: a KB
    # that is gone (deleted) or unreadable says nothing about whether its job moved.
    seen = {job.uuid for job in observation.jobs}
    read = {kb.uuid for kb in observation.kbs}
    for uuid, prior in previous.jobs.items():
        if uuid not in seen and not prior.done and prior.kb_uuid in read:
            state, found = _check_deadline(rebased(prior, now), now, policy)
            jobs[uuid] = state
            transitions.extend(_with_names(found, names))
    return WatchState(kbs=kbs, jobs=jobs, baseline=baseline), tuple(transitions)


def freshest(jobs: tuple[Job, ...]) -> list[Job]:
    """One observation per job uuid, oldest job first (so alerts read in order).

    Of two observations of one job, a terminal one beats a live one, then the latest update.
    """
    best: dict[str, Job] = {}
    for job in jobs:
        other = best.get(job.uuid)
        if other is None or _rank(job) > _rank(other):
            best[job.uuid] = job
    return sorted(best.values(), key=lambda job: job.created_at or _EPOCH)


def _rank(job: Job) -> tuple[bool, datetime]:
    return (job.is_terminal, job.updated_at or _EPOCH)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _kb_state(
    prior: KbState | None, kb: KnowledgeBase, known: WatchState, began: datetime, now: Instant
) -> KbState:
    last = kb.last_indexing_job.uuid if kb.last_indexing_job else None
    if prior is None:
        if is_new_kb(kb, known) and kb.created_at is not None:
            since = whole_second(kb.created_at)  # created while we watch: all of it is news
        else:
            since = watermark(began)
        return KbState(kb.uuid, kb.name, now.wall, last_job_uuid=last, news_since=since)
    name, last = kb.name or prior.name, last or prior.last_job_uuid
    if name == prior.name and last == prior.last_job_uuid:
        return prior  # the usual case: nothing to copy
    return replace(prior, name=name, last_job_uuid=last)


def _unjudged_history(prior: JobState, job: Job, kb: KbState | None) -> bool:
    """Whether a job only ever seen in unknown states now shows it finished long ago.

    First seen with values nobody knows, it could not be judged then; now that it reads as
    finished, it is judged as on first sight (by its KB's news watermark), or, when the answer
    dates it nowhere, as history if it was first seen in its KB's first cycle.
    """
    if prior.started_alerted or prior.done or not job.is_terminal or kb is None:
        return False
    verdict = is_history(job, kb)
    return verdict is True or (verdict is None and prior.first_seen_at == kb.first_seen_at)


def _first_sight(
    job: Job, kb_uuid: str, history: bool, now: Instant, policy: Policy
) -> tuple[JobState, list[Transition]]:
    sighting = first_sighting(job, now)
    state = JobState(
        job=job,
        kb_uuid=kb_uuid,
        first_seen_at=now.wall,
        progress_at=now.wall - (now.elapsed.since(sighting.moved) or timedelta(0)),
        sighting=sighting,
    )
    if job.is_terminal:
        state = replace(state, done=True)
        if history:
            return state, []
        return state, [_event(state, _outcome(job), now)]
    if not (job.is_pending or job.is_running):
        return state, []
    state = replace(state, started_alerted=True)
    found = [_event(state, EventKind.STARTED, now)]
    state, stalled = _check_deadline(state, now, policy)
    return state, found + stalled


def _follow(
    prior: JobState, job: Job, kb: KbState | None, now: Instant, policy: Policy
) -> tuple[JobState, list[Transition]]:
    if prior.done:
        return _revisit(prior, job, kb, now, policy)
    moved = progress_signature(job) != progress_signature(prior.job)
    state = replace(prior, job=job)
    if moved:
        sighting = replace(sighting_of(prior, now), moved=now.elapsed)
        state = replace(state, progress_at=now.wall, sighting=sighting)
    found: list[Transition] = []
    if job.is_terminal:
        if state.stalled is not None:
            found.append(_event(state, EventKind.RECOVERED, now, state.stall_count))
        found.append(_event(state, _outcome(job), now, verdict_number(state)))
        if state.stalled is not None:  # the story of the stall, for the outcome's alert
            found = [replace(t, stalled_since=prior.progress_at) for t in found]
        return replace(state, done=True, stalled=None, deadline=None), found
    if not (job.is_pending or job.is_running):
        return state, []
    if not state.started_alerted:
        state = replace(state, started_alerted=True)
        found.append(_event(state, EventKind.STARTED, now))
    if state.stalled is not None and moved and can_recover(prior, job):
        found.append(_event(state, EventKind.RECOVERED, now, state.stall_count))
        state = replace(state, stalled=None)
    state, stalled = _check_deadline(state, now, policy)
    return state, found + stalled


def _revisit(
    prior: JobState, job: Job, kb: KbState | None, now: Instant, policy: Policy
) -> tuple[JobState, list[Transition]]:
    """A done job seen again: its verdict stands, takes the newer copy, or is corrected."""
    verdict = review(prior, job, kb)
    match verdict:
        case Review.SAME:
            return (prior if job == prior.job else replace(prior, job=job)), []
        case Review.KEPT:
            return prior, []  # the last trusted state
        case Review.OTHER_OUTCOME:
            n = prior.corrections + 1
            state = replace(prior, job=job, corrections=n)
            fixed = correction(prior, job, now.wall, n)
            return state, [fixed, _event(state, _outcome(job), now, verdict_number(state))]
        case Review.RUNNING_AGAIN:
            n = prior.corrections + 1
            moved = Sighting(first=now.elapsed, moved=now.elapsed)
            state = replace(
                prior, job=job, corrections=n, done=False, progress_at=now.wall, sighting=moved
            )
            state, stalled = _check_deadline(state, now, policy)
            return state, [correction(prior, job, now.wall, n), *stalled]
        case _:
            assert_never(verdict)


def _check_deadline(
    state: JobState, now: Instant, policy: Policy
) -> tuple[JobState, list[Transition]]:
    """Fire the first stall rule that is due, or note (for people) when the next one will be."""
    if state.done:
        return replace(state, deadline=None), []
    if state.stalled is not None:
        return replace(state, deadline=None), []
    due = stall_due(state, now, policy)
    if due is None:
        return replace(state, deadline=None), []
    left, reason = due
    if left > timedelta(0):
        return replace(state, deadline=now.wall + left), []
    count = state.stall_count + 1
    stalled = replace(state, stalled=reason, stall_count=count, deadline=None)
    return stalled, [_event(stalled, EventKind.STALLED, now, count, reason=reason)]


def progress_signature(job: Job) -> tuple[object, ...]:
    """Every signal that moves while a job makes progress; any change counts as movement."""
    sources = tuple(
        (
            ds.data_source_uuid,
            ds.status_text,
            ds.indexed_item_count,
            ds.failed_item_count,
            ds.skipped_item_count,
            ds.removed_item_count,
            ds.indexed_file_count,
            ds.total_bytes_indexed,
        )
        for ds in job.data_source_jobs
    )
    return (
        job.phase_text,
        job.status_text,
        job.updated_at,
        job.completed_datasources,
        job.total_tokens,
        sources,
    )


def _outcome(job: Job) -> EventKind:
    outcome = job.outcome
    assert outcome is not None, "only terminal jobs have an outcome"
    return outcome


def _event(
    state: JobState,
    kind: EventKind,
    now: Instant,
    n: int | None = None,
    reason: StallReason | None = None,
) -> Transition:
    suffix = f"/{n}" if n is not None else ""
    return Transition(
        event_id=f"{state.job.uuid}/{kind.value}{suffix}",
        kind=kind,
        at=now.wall,
        kb_uuid=state.kb_uuid,
        job=state.job,
        stall_reason=reason if reason is not None else state.stalled,
        api_at=now.api,
    )


def _with_names(found: list[Transition], names: dict[str, str | None]) -> list[Transition]:
    return [replace(t, kb_name=names.get(t.kb_uuid or "")) for t in found]

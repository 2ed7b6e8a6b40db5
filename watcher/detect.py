"""Detection: from what the watcher knew and what it sees now, the events of the contract.

Pure: no I/O and no clock; `now` is a parameter. `detect` is the only entry point.

Rules, in short:
- A job seen for the first time on a knowledge base seen for the first time is recorded
  silently when it is finished (no storm on first run or on a KB added later); a job still
  pending or running is alerted `started` and followed from then on.
- A new job on a known KB that is already finished (it started and ended between two polls)
  is alerted with its outcome, unless it was created before the watcher first saw the KB
  (the per-KB latest-15 list also returns old history).
- Exactly one terminal event per job; a stalled job that ends gets `recovered` too.
- A stall is a stored deadline: pending too long, no progress signal moving, or running too
  long. It is alerted once; `recovered` follows when the job moves again (or ends; a job over
  its maximum runtime recovers only by ending).
- Unknown enum values never produce an event: such a job is tracked and waits.
- A finished job first seen on a known KB with no time at all is left for a later answer,
  and a job of a KB absent from the observation (deleted, unreadable) never stalls.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from watcher.model import EventKind, Job, KnowledgeBase
from watcher.state import (
    JobState,
    KbState,
    Observation,
    Policy,
    StallReason,
    Transition,
    WatchState,
)


def detect(
    previous: WatchState, observation: Observation, now: datetime, policy: Policy
) -> tuple[WatchState, tuple[Transition, ...]]:
    """Return the new state and the transitions that `observation` reveals at `now`."""
    kbs = dict(previous.kbs)
    new_kbs = set()
    for kb in observation.kbs:
        if kb.uuid not in kbs:
            new_kbs.add(kb.uuid)
        kbs[kb.uuid] = _kb_state(kbs.get(kb.uuid), kb, now)
    names = {uuid: state.name for uuid, state in kbs.items()}

    jobs = dict(previous.jobs)
    transitions: list[Transition] = []
    for job in freshest(observation.jobs):
        prior = jobs.get(job.uuid)
        kb_uuid = job.knowledge_base_uuid or (prior.kb_uuid if prior else None)
        if kb_uuid is None:
            continue
        if prior is None:
            history = kb_uuid in new_kbs or _predates(job, kbs.get(kb_uuid))
            if history is None:
                continue  # a finished job the answer does not date: judge it once one does
            state, found = _first_sight(job, kb_uuid, history, now, policy)
        elif _unjudged_history(prior, job, kbs.get(kb_uuid)):
            state, found = replace(prior, job=job, done=True), []
        else:
            state, found = _follow(prior, job, now, policy)
        jobs[job.uuid] = state
        transitions.extend(_with_names(found, names))

    # A job nobody listed can still pass its deadline, but only on a KB read this cycle: a KB
    # that is gone (deleted) or unreadable says nothing about whether its job moved.
    seen = {job.uuid for job in observation.jobs}
    read = {kb.uuid for kb in observation.kbs}
    for uuid, prior in previous.jobs.items():
        if uuid not in seen and not prior.done and prior.kb_uuid in read:
            state, found = _check_deadline(prior, now, policy)
            jobs[uuid] = state
            transitions.extend(_with_names(found, names))
    return WatchState(kbs=kbs, jobs=jobs), tuple(transitions)


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


def _kb_state(prior: KbState | None, kb: KnowledgeBase, now: datetime) -> KbState:
    last = kb.last_indexing_job.uuid if kb.last_indexing_job else None
    if prior is None:
        return KbState(uuid=kb.uuid, name=kb.name, first_seen_at=now, last_job_uuid=last)
    name, last = kb.name or prior.name, last or prior.last_job_uuid
    if name == prior.name and last == prior.last_job_uuid:
        return prior  # the usual case: nothing to copy
    return replace(prior, name=name, last_job_uuid=last)


def _predates(job: Job, kb: KbState | None) -> bool | None:
    """Whether a job was created before the watcher first saw its KB (old history).

    Without `created_at` the job's earliest other time stands in for it. A finished job with
    no time at all cannot be told from old history (the per-KB list returns up to 15 old
    jobs): None, so that a broken answer never turns old history into fresh alerts.
    """
    if kb is None:
        return False
    born = job.created_at or job.started_at or job.finished_at or job.updated_at
    if born is None:
        return None if job.is_terminal else False
    return born < kb.first_seen_at


def _unjudged_history(prior: JobState, job: Job, kb: KbState | None) -> bool:
    """Whether a job only ever seen in unknown states now shows it finished long ago.

    First seen with values nobody knows, it could not be judged then; now that it reads as
    finished, it is judged as on first sight: old history if it was first seen in its KB's
    first cycle or predates the KB, so a first run never alerts an old job one cycle late.
    """
    if prior.started_alerted or prior.done or not job.is_terminal or kb is None:
        return False
    return prior.first_seen_at == kb.first_seen_at or _predates(job, kb) is True


def _first_sight(
    job: Job, kb_uuid: str, history: bool, now: datetime, policy: Policy
) -> tuple[JobState, list[Transition]]:
    progress_at = min(job.updated_at, now) if job.updated_at else now
    state = JobState(job=job, kb_uuid=kb_uuid, first_seen_at=now, progress_at=progress_at)
    if job.is_terminal:
        state = replace(state, done=True)
        if history:
            return state, []
        return state, [_event(state, _outcome(job), now)]
    if not (job.is_pending or job.is_running):
        return state, []
    state = replace(state, started_alerted=True)
    found = [_event(state, EventKind.STARTED, now)]
    state, stalled = _check_deadline(_with_deadline(state, policy), now, policy)
    return state, found + stalled


def _follow(
    prior: JobState, job: Job, now: datetime, policy: Policy
) -> tuple[JobState, list[Transition]]:
    if prior.done and job == prior.job:
        return prior, []  # most of an idle cycle: a finished job, seen again unchanged
    moved = progress_signature(job) != progress_signature(prior.job)
    state = replace(prior, job=job, progress_at=now if moved else prior.progress_at)
    if prior.done:
        return state, []
    found: list[Transition] = []
    if job.is_terminal:
        if state.stalled is not None:
            found.append(_event(state, EventKind.RECOVERED, now, state.stall_count))
        found.append(_event(state, _outcome(job), now))
        return replace(state, done=True, stalled=None, deadline=None), found
    if not (job.is_pending or job.is_running):
        return state, []
    if not state.started_alerted:
        state = replace(state, started_alerted=True)
        found.append(_event(state, EventKind.STARTED, now))
    if state.stalled is not None and moved and _can_recover(prior, job):
        found.append(_event(state, EventKind.RECOVERED, now, state.stall_count))
        state = replace(state, stalled=None)
    state, stalled = _check_deadline(_with_deadline(state, policy), now, policy)
    return state, found + stalled


def _can_recover(prior: JobState, job: Job) -> bool:
    """A stall over the maximum runtime ends only with the job; the others end when it moves."""
    if prior.stalled is StallReason.MAX_RUNTIME:
        return False
    if prior.stalled is StallReason.PENDING_TOO_LONG:
        return not job.is_pending
    return True


def _check_deadline(
    state: JobState, now: datetime, policy: Policy
) -> tuple[JobState, list[Transition]]:
    if state.stalled is not None or state.done:
        return state, []
    due = stall_deadline(state, policy)
    if due is None or due[0] > now:
        return state, []
    count = state.stall_count + 1
    stalled = replace(state, stalled=due[1], stall_count=count, deadline=None)
    return stalled, [_event(stalled, EventKind.STALLED, now, count, reason=due[1])]


def _with_deadline(state: JobState, policy: Policy) -> JobState:
    due = stall_deadline(state, policy) if state.stalled is None else None
    return replace(state, deadline=due[0] if due else None)


def stall_deadline(state: JobState, policy: Policy) -> tuple[datetime, StallReason] | None:
    """The next moment a stall rule fires for this job, and which rule; None if none applies."""
    job = state.job
    if state.done or job.is_terminal:
        return None
    if job.is_pending:
        since = job.created_at or state.first_seen_at
        return since + policy.pending_after, StallReason.PENDING_TOO_LONG
    if job.is_running:
        no_progress = state.progress_at + policy.no_progress_after
        started = job.started_at or job.created_at or state.first_seen_at
        runtime = started + policy.max_runtime
        if runtime <= no_progress:
            return runtime, StallReason.MAX_RUNTIME
        return no_progress, StallReason.NO_PROGRESS
    return None


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
    now: datetime,
    n: int | None = None,
    reason: StallReason | None = None,
) -> Transition:
    suffix = f"/{n}" if n is not None else ""
    return Transition(
        event_id=f"{state.job.uuid}/{kind.value}{suffix}",
        kind=kind,
        at=now,
        kb_uuid=state.kb_uuid,
        job=state.job,
        stall_reason=reason if reason is not None else state.stalled,
    )


def _with_names(found: list[Transition], names: dict[str, str | None]) -> list[Transition]:
    return [replace(t, kb_name=names.get(t.kb_uuid or "")) for t in found]

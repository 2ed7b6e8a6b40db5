"""Properties of `detect` (and of routing after it) over random job histories.

A history is a run of observations of a few jobs on two knowledge bases: states drawn from
every phase/status pair plus unknown and missing values (flipping back and forth as a broken
API would), counters that move or not, timestamps present or missing, KBs absent at times,
and the clock advancing by a second to hours between cycles. Whatever the history:

- a job gets one terminal event per verdict: at most one, plus one after each `corrected`
  of it (a newer answer contradicting its alerted outcome; at most `MAX_CORRECTIONS`), and at
  least one when it was observed finished after the watcher could tell it was new; a second
  outcome never comes without a `corrected` before it;
- a job first seen finished on a new KB, or created before its KB was first seen, gets none;
- `recovered` only follows a `stalled` of the same job;
- an observation whose phase and status are both unknown (or missing) produces no event;
- a job produces no event in a cycle where its KB was not read;
- event ids are unique, and so is every (event, route) outbox row after routing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.promises import PROPERTY
from watcher.core.clocks import Instant
from watcher.core.corrections import MAX_CORRECTIONS
from watcher.core.decide import RouteRule, route
from watcher.core.detect import detect
from watcher.core.history import watermark
from watcher.core.model import EventKind, Job, KnowledgeBase, Phase, Status
from watcher.core.state import Observation, Policy, Transition, WatchState

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POLICY = Policy(
    pending_after=timedelta(minutes=20),
    no_progress_after=timedelta(minutes=30),
    max_runtime=timedelta(hours=6),
)
KBS = ("kb-a", "kb-b")
JOBS = ("j0", "j1", "j2", "j3")
RULES = (
    RouteRule("all", frozenset(EventKind)),
    RouteRule("bad", frozenset({EventKind.FAILED, EventKind.PARTIAL, EventKind.STALLED})),
    RouteRule("kb-a-only", frozenset(EventKind), frozenset({"kb-a"})),
)

PHASES = st.one_of(
    st.sampled_from(list(Phase)).map(lambda p: (p, None)),
    st.sampled_from(["BATCH_JOB_PHASE_COMPLETED", "BATCH_JOB_PHASE_QUEUED"]).map(
        lambda raw: (Phase.UNKNOWN, raw)
    ),
)
STATUSES = st.one_of(
    st.sampled_from(list(Status)).map(lambda s: (s, None)),
    st.sampled_from(["INDEX_JOB_STATUS_QUEUED", "weird"]).map(lambda raw: (Status.UNKNOWN, raw)),
)


@dataclass(frozen=True, slots=True)
class Seen:
    """One job as one observation showed it (None in a step: not listed)."""

    phase: tuple[Phase, str | None]
    status: tuple[Status, str | None]
    progress: int
    updated_ago: int | None
    has_created: bool


SEEN = st.builds(
    Seen,
    phase=PHASES,
    status=STATUSES,
    progress=st.integers(0, 3),
    updated_ago=st.none() | st.integers(0, 7200),
    has_created=st.booleans() | st.just(True),
)


@dataclass(frozen=True, slots=True)
class Step:
    advance: int
    kbs_read: tuple[bool, bool]
    jobs: tuple[Seen | None, ...]


STEPS = st.lists(
    st.builds(
        Step,
        advance=st.sampled_from([1, 5, 60, 600, 1900, 7200, 25000]),
        kbs_read=st.tuples(st.booleans() | st.just(True), st.booleans() | st.just(True)),
        jobs=st.tuples(*(st.none() | SEEN for _ in JOBS)),
    ),
    min_size=1,
    max_size=12,
)
# each job: its KB and when it was created, relative to T0 (negative: old history)
BIRTHS = st.tuples(*(st.tuples(st.sampled_from(KBS), st.integers(-90000, 90000)) for _ in JOBS))


def observe(step: Step, now: datetime, births: tuple[tuple[str, int], ...]) -> Observation:
    read = {kb for kb, ok in zip(KBS, step.kbs_read, strict=True) if ok}
    jobs = []
    for uuid, seen, (kb, born) in zip(JOBS, step.jobs, births, strict=True):
        created = T0 + timedelta(seconds=born)
        if seen is None or kb not in read or created > now:
            continue
        updated = None if seen.updated_ago is None else now - timedelta(seconds=seen.updated_ago)
        jobs.append(
            Job(
                uuid=uuid,
                knowledge_base_uuid=kb,
                phase=seen.phase[0],
                phase_raw=seen.phase[1],
                status=seen.status[0],
                status_raw=seen.status[1],
                created_at=created if seen.has_created else None,
                updated_at=updated,
                completed_datasources=seen.progress,
                total_datasources=3,
            )
        )
    kbs = tuple(KnowledgeBase(uuid=kb, name=kb.upper()) for kb in KBS if kb in read)
    return Observation(at=now, kbs=kbs, jobs=tuple(jobs), api_began=now)


@dataclass
class Run:
    """Every cycle's observation and transitions."""

    cycles: list[tuple[Observation, tuple[Transition, ...]]]

    @property
    def transitions(self) -> list[Transition]:
        return [t for _, found in self.cycles for t in found]


def replay(steps: list[Step], births: tuple[tuple[str, int], ...]) -> Run:
    state, now, cycles = WatchState(), T0, []
    for step in steps:
        now += timedelta(seconds=step.advance)
        observation = observe(step, now, births)
        state, found = detect(state, observation, Instant.aligned(now), POLICY)
        cycles.append((observation, found))
    return Run(cycles)


def is_unknown(job: Job) -> bool:
    return job.phase is Phase.UNKNOWN and job.status is Status.UNKNOWN


@PROPERTY
@given(steps=STEPS, births=BIRTHS)
def test_terminal_events_are_at_most_one_per_job_and_ids_are_unique(
    steps: list[Step], births: tuple[tuple[str, int], ...]
) -> None:
    run = replay(steps, births)
    ids = [t.event_id for t in run.transitions]
    assert len(ids) == len(set(ids))
    verdicts: Counter[str | None] = Counter()  # outcomes alerted so far, per job
    corrected: Counter[str | None] = Counter()
    for t in run.transitions:
        if t.kind is EventKind.CORRECTED:
            corrected[t.job_uuid] += 1
            assert verdicts[t.job_uuid] == corrected[t.job_uuid], (
                "corrected with nothing to correct"
            )
        elif t.kind.is_terminal:
            verdicts[t.job_uuid] += 1
            assert verdicts[t.job_uuid] == 1 + corrected[t.job_uuid], (
                "a second outcome, uncorrected"
            )
    assert all(n <= MAX_CORRECTIONS for n in corrected.values())
    deliveries = route(run.transitions, RULES)
    assert len(deliveries) == len(set(deliveries))
    by_id = {t.event_id: t for t in run.transitions}
    per_route = Counter(
        (d.route, by_id[d.event_id].job_uuid)
        for d in deliveries
        if by_id[d.event_id].kind.is_terminal
    )
    assert all(n <= 1 + corrected[job] for (_, job), n in per_route.items())


@PROPERTY
@given(steps=STEPS, births=BIRTHS)
def test_recovered_only_follows_a_stall_of_the_same_job(
    steps: list[Step], births: tuple[tuple[str, int], ...]
) -> None:
    open_stalls: Counter[str | None] = Counter()
    for t in replay(steps, births).transitions:
        if t.kind is EventKind.STALLED:
            assert open_stalls[t.job_uuid] == 0, "stalled twice without recovering"
            open_stalls[t.job_uuid] += 1
        elif t.kind is EventKind.RECOVERED:
            assert open_stalls[t.job_uuid] == 1
            open_stalls[t.job_uuid] -= 1
        elif t.kind.is_terminal:
            assert open_stalls[t.job_uuid] == 0, "a stalled job ended without recovered"


@PROPERTY
@given(steps=STEPS, births=BIRTHS)
def test_no_event_from_an_unknown_state_or_from_a_kb_not_read(
    steps: list[Step], births: tuple[tuple[str, int], ...]
) -> None:
    for observation, found in replay(steps, births).cycles:
        read = {kb.uuid for kb in observation.kbs}
        unknown = {job.uuid for job in observation.jobs if is_unknown(job)}
        for t in found:
            assert t.job_uuid not in unknown, f"{t.event_id} came from unknown values"
            assert t.kb_uuid in read, f"{t.event_id} on a KB this cycle did not read"


@PROPERTY
@given(steps=STEPS, births=BIRTHS)
def test_history_stays_silent_and_every_new_finished_job_is_alerted_once(
    steps: list[Step], births: tuple[tuple[str, int], ...]
) -> None:
    """A job is judged the first time it reads as pending, running or finished.

    Finished then, it is old history when it was created before its KB's news began (the
    whole second of the KB's first read, less a second), or, dated nowhere, when it was first
    recorded in its KB's first cycle; otherwise (or when it read as live first) its end is
    owed. A finished job with no time at all is not recorded until an answer dates it.
    """
    run = replay(steps, births)
    kb_since: dict[str, datetime] = {}
    on_new_kb: dict[str, bool] = {}  # recorded jobs: first recorded in their KB's first cycle?
    owed: dict[str, bool] = {}
    ended: set[str] = set()
    for observation, _ in run.cycles:
        first_read = {kb.uuid for kb in observation.kbs if kb.uuid not in kb_since}
        for kb_seen in observation.kbs:
            assert observation.api_began is not None
            kb_since.setdefault(kb_seen.uuid, watermark(observation.api_began))
        for job in observation.jobs:
            kb = job.knowledge_base_uuid or ""
            born = job.created_at or job.updated_at
            if job.uuid not in on_new_kb:
                if job.is_terminal and born is None:
                    continue
                on_new_kb[job.uuid] = kb in first_read
            if job.uuid in owed:
                continue
            if job.is_terminal:
                if born is None:
                    old = on_new_kb[job.uuid]
                else:
                    old = born.replace(microsecond=0) < kb_since[kb]
                owed[job.uuid] = not old
            elif job.is_running or job.is_pending:
                owed[job.uuid] = True
        ended.update(j.uuid for j in observation.jobs if j.is_terminal and j.uuid in owed)
    terminal = Counter(t.job_uuid for t in run.transitions if t.kind.is_terminal)
    corrected = Counter(t.job_uuid for t in run.transitions if t.kind is EventKind.CORRECTED)
    for uuid, due in owed.items():
        if due and uuid in ended:
            assert terminal[uuid] >= 1, f"{uuid} ended but its outcome was never alerted"
            assert terminal[uuid] <= 1 + corrected[uuid], f"{uuid}: an outcome uncorrected"
        if not due:
            assert not [t for t in run.transitions if t.job_uuid == uuid], f"{uuid} is history"

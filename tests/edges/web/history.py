"""Knowledge bases with a history, written into a real store through its normal write path.

`write_history` records each knowledge base's jobs (oldest first), one event per finished
job with one outbox row per route, through `SqliteStore.record` as the cycle would; `settle`
then claims the rows and settles them as sent or dead, as delivery would. Used by the store's
read tests, the app's tests, the browser tests and `bench/page_render.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Status
from watcher.core.outbox import DeliveryState, FailureCause, Settlement, TargetResult
from watcher.core.state import Change, Delivery, JobState, KbState, StallReason, Transition
from watcher.edges.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
_STATES: dict[str, tuple[Phase, Status]] = {
    "completed": (Phase.SUCCEEDED, Status.COMPLETED),
    "no_changes": (Phase.SUCCEEDED, Status.NO_CHANGES),
    "partial": (Phase.SUCCEEDED, Status.PARTIAL),
    "failed": (Phase.FAILED, Status.FAILED),
    "cancelled": (Phase.CANCELLED, Status.CANCELLED),
    "running": (Phase.RUNNING, Status.IN_PROGRESS),
    "stalled": (Phase.RUNNING, Status.IN_PROGRESS),
    "pending": (Phase.PENDING, Status.PENDING),
}


@dataclass(frozen=True, slots=True)
class KbPlan:
    """A knowledge base and the states of its jobs, oldest first (`unknown`: an enum value
    this watcher does not know)."""

    uuid: str
    name: str | None
    jobs: Sequence[str]
    error: str = "crawler blocked by robots.txt"
    spacing: timedelta = timedelta(hours=1)
    tokens: int = 1000


@dataclass
class Written:
    """What `write_history` wrote: every job uuid per knowledge base, every event id."""

    jobs: dict[str, list[str]] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)


def job_uuid(kb_uuid: str, n: int) -> str:
    return f"{kb_uuid[:8]}-job-{n:04d}"


def make_job(plan: KbPlan, n: int, at: datetime = NOW) -> Job:
    """The plan's job `n` (0 = oldest): created `spacing` apart, running longer each time."""
    word = plan.jobs[n]
    created = at - plan.spacing * (len(plan.jobs) - n)
    started = created + timedelta(minutes=1)
    finished = started + timedelta(minutes=5 + n % 7)
    done = word not in ("running", "stalled", "pending", "unknown")
    if word == "unknown":
        phase, status, raws = Phase.UNKNOWN, Status.UNKNOWN, ("BATCH_JOB_PHASE_NEWFANGLED", None)
    else:
        phase, status = _STATES[word]
        raws = (None, None)
    sources: tuple[DataSourceJob, ...] = ()
    if word in ("failed", "partial"):
        sources = (
            DataSourceJob("ds-ok", DataSourceStatus.UPDATED, indexed_item_count=40),
            DataSourceJob(
                "ds-bad",
                DataSourceStatus.FAILED,
                failed_item_count=3,
                error_msg=plan.error,
                error_details="see the crawler's log",
            ),
        )
    return Job(
        uuid=job_uuid(plan.uuid, n),
        knowledge_base_uuid=plan.uuid,
        phase=phase,
        phase_raw=raws[0],
        status=status,
        status_raw=raws[1],
        created_at=created,
        started_at=started if word != "pending" else None,
        finished_at=finished if done else None,
        updated_at=finished if done else started,
        completed_datasources=2 if done else 1,
        total_datasources=2,
        total_tokens=plan.tokens * (n + 1) if word != "pending" else None,
        data_source_jobs=sources,
    )


def _state(plan: KbPlan, job: Job, n: int) -> JobState:
    word = plan.jobs[n]
    done = job.is_terminal
    return JobState(
        job=job,
        kb_uuid=plan.uuid,
        first_seen_at=job.created_at or NOW,
        progress_at=job.updated_at or NOW,
        stalled=StallReason.NO_PROGRESS if word == "stalled" else None,
        started_alerted=True,
        done=done,
    )


def _events(plan: KbPlan, job: Job, n: int) -> list[Transition]:
    outcome = job.outcome
    word = plan.jobs[n]
    kind = outcome if outcome is not None else (EventKind.STALLED if word == "stalled" else None)
    if kind is None:
        return []
    return [
        Transition(
            event_id=f"{job.uuid}/{kind.value}/1",
            kind=kind,
            at=job.finished_at or job.updated_at or NOW,
            kb_uuid=plan.uuid,
            kb_name=plan.name,
            job=job,
            stall_reason=StallReason.NO_PROGRESS if word == "stalled" else None,
        )
    ]


async def write_history(
    store: SqliteStore,
    plans: Sequence[KbPlan],
    *,
    routes: Sequence[str] = ("ops",),
    at: datetime = NOW,
    first_seen: datetime | None = None,
) -> Written:
    """Record every plan's jobs and events (one change per knowledge base)."""
    written = Written()
    for i, plan in enumerate(plans):
        jobs = [make_job(plan, n, at) for n in range(len(plan.jobs))]
        states = tuple(_state(plan, job, n) for n, job in enumerate(jobs))
        transitions = tuple(t for n, job in enumerate(jobs) for t in _events(plan, job, n))
        seen = first_seen or at - timedelta(days=30)
        change = Change(
            cycle_id=f"history-{i}",
            at=at,
            kbs=(KbState(plan.uuid, plan.name, seen, jobs[-1].uuid if jobs else None),),
            jobs=states,
            transitions=transitions,
            deliveries=tuple(Delivery(t.event_id, r) for t in transitions for r in routes),
        )
        await store.record(change)
        written.jobs[plan.uuid] = [job.uuid for job in jobs]
        written.events += [t.event_id for t in transitions]
    return written


async def settle(
    store: SqliteStore, outcome: DeliveryState, *, limit: int, error: str = "", at: datetime = NOW
) -> list[int]:
    """Claim up to `limit` due rows and settle them as `outcome` (sent, dead, or pending with
    `error`); each with one target's answer. Returns the ids settled."""
    rows = await store.claim_due(at, limit)
    ok = outcome is DeliveryState.SENT
    target = TargetResult(
        name="JSON",
        url="json://hooks.example.com/...",
        ok=ok,
        detail="" if ok else error,
        index=0,
        cause=None if ok else FailureCause.SERVER_ERROR,
        status=None if ok else 503,
    )
    await store.settle(
        [
            Settlement(
                outbox_id=row.id,
                state=outcome,
                attempts=row.attempts + 1,
                at=at,
                error=None if ok else error,
                targets=(target,),
                next_attempt_at=at + timedelta(minutes=5)
                if outcome is DeliveryState.PENDING
                else None,
            )
            for row in rows
        ]
    )
    return [row.id for row in rows]

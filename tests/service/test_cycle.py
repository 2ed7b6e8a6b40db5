"""The cycle orchestrator against hand-written fakes of its Protocols (no mocks, no I/O)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from structlog.testing import capture_logs

from watcher.core.clocks import Elapsed
from watcher.core.decide import RetryPolicy, RouteRule
from watcher.core.errors import RetryableSourceError
from watcher.core.model import (
    DataSourceJob,
    EventKind,
    Job,
    KnowledgeBase,
    Phase,
    Status,
)
from watcher.core.outbox import (
    Budget,
    DeliveryState,
    Message,
    OutboxItem,
    SendResult,
    Settlement,
    TargetResult,
)
from watcher.core.state import Change, Transition, WatchState
from watcher.service.cycle import Cycle, CycleSettings
from watcher.service.observe import BASELINE_KEY

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def job(n: int, kb: str = "kb-1", state: str = "running", minute: int = 0) -> Job:
    phase, status = {
        "running": (Phase.RUNNING, Status.IN_PROGRESS),
        "completed": (Phase.SUCCEEDED, Status.COMPLETED),
        "failed": (Phase.FAILED, Status.FAILED),
        "partial": (Phase.SUCCEEDED, Status.PARTIAL),
    }[state]
    at = T0 + timedelta(minutes=minute)
    return Job(f"job-{n}", kb, phase=phase, status=status, created_at=at, updated_at=at)


class FakeSource:
    """The API as a dict of KBs; counts every call; can fail the latest-15 list of a KB, or
    hang any read until `released` is set (`hanging`: the calls that hang)."""

    def __init__(self) -> None:
        self.kbs: dict[str, KnowledgeBase] = {}
        self.recent: dict[str, list[Job]] = {}
        self.calls: Counter[str] = Counter()
        self.failing_kb_jobs: set[str] = set()
        self.hanging: set[str] = set()
        self.released = asyncio.Event()
        self.clock: Callable[[], datetime] = lambda: T0

    def show(self, kb: str, *jobs: Job, created: datetime = T0 - timedelta(days=30)) -> None:
        """The KB's latest job is the last one given; all of them are in its latest-15 list."""
        last = jobs[-1] if jobs else None
        self.kbs[kb] = KnowledgeBase(kb, name=kb, last_indexing_job=last, created_at=created)
        self.recent[kb] = list(reversed(jobs))

    def api_now(self) -> datetime:
        return self.clock()

    async def _call(self, name: str) -> None:
        self.calls[name] += 1
        if name.split(" ")[0] in self.hanging:
            await self.released.wait()

    async def list_knowledge_bases(self) -> list[KnowledgeBase]:
        await self._call("kbs")
        return list(self.kbs.values())

    async def list_kb_jobs(self, kb_uuid: str) -> list[Job]:
        self.calls[f"kb_jobs {kb_uuid}"] += 1
        if kb_uuid in self.failing_kb_jobs:
            raise RetryableSourceError("HTTP 503", status=503)
        return self.recent[kb_uuid]

    async def list_jobs(self) -> list[Job]:
        self.calls["jobs"] += 1
        return [job for jobs in self.recent.values() for job in jobs]

    async def get_job(self, job_uuid: str) -> Job:
        self.calls[f"job {job_uuid}"] += 1
        return next(j for jobs in self.recent.values() for j in jobs if j.uuid == job_uuid)

    async def list_job_data_sources(self, job_uuid: str) -> list[DataSourceJob]:
        await self._call(f"data_sources {job_uuid}")
        return [DataSourceJob("ds-1", error_msg="crawl_blocked", error_details="403")]


@dataclass
class Row:
    id: int
    route: str
    transition: Transition
    cycle_id: str
    created_at: datetime
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    due: datetime = T0
    error: str | None = None
    targets: tuple[TargetResult, ...] = ()


@dataclass
class FakeStore:
    """StateStore, Outbox and MetaStore in dicts; one outbox row per (event, route)."""

    state: WatchState = field(default_factory=WatchState)
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    async def load(self, job_uuids: Collection[str]) -> WatchState:
        return self.state

    async def record(self, change: Change, *, meta: Mapping[str, str | None] | None = None) -> None:
        kbs = {**self.state.kbs, **{kb.uuid: kb for kb in change.kbs}}
        self.state = WatchState(kbs, {**self.state.jobs, **{j.uuid: j for j in change.jobs}})
        events = {t.event_id: t for t in change.transitions}
        for d in change.deliveries:
            row = Row(len(self.rows) + 1, d.route, events[d.event_id], change.cycle_id, change.at)
            self.rows.setdefault((d.event_id, d.route), row)
        self.meta.update({k: v for k, v in (meta or {}).items() if v is not None})

    async def claim_due(
        self, now: datetime, limit: int, longest_wait: timedelta | None = None
    ) -> list[OutboxItem]:
        horizon = now + longest_wait if longest_wait is not None else None
        due = [
            r
            for r in self.rows.values()
            if r.state is DeliveryState.PENDING
            and (r.due <= now or (horizon is not None and r.due > horizon))
        ][:limit]
        for row in due:
            row.state = DeliveryState.SENDING
        return [
            OutboxItem(
                r.id,
                r.route,
                r.transition,
                r.cycle_id,
                r.created_at,
                r.attempts,
                r.error,
                delivered=frozenset(t.index for t in r.targets if t.ok and t.index is not None),
                last_targets=r.targets,
            )
            for r in due
        ]

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        by_id = {row.id: row for row in self.rows.values()}
        for s in settlements:
            row = by_id[s.outbox_id]
            row.state, row.attempts, row.error = s.state, s.attempts, s.error
            row.due, row.targets = s.next_attempt_at or s.at, s.targets

    async def release_held(self, ends: Mapping[str, datetime], now: datetime) -> int:
        return 0  # nothing is held here (no quiet hours in these tests)

    async def get_meta(self, key: str) -> str | None:
        return self.meta.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.meta[key] = value

    def states(self, route: str) -> list[tuple[str, DeliveryState, int]]:
        return [
            (event_id, row.state, row.attempts)
            for (event_id, name), row in self.rows.items()
            if name == route
        ]


@dataclass
class FakeNotifier:
    """Records what each route got; a route in `failing` answers a retryable failure, in
    `raising` the notifier itself blows up."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    raising: set[str] = field(default_factory=set)

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return ()

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        if route in self.raising:
            raise RuntimeError("a bug in the notifier")
        if route in self.failing:
            return SendResult(ok=False, error="connection refused")
        self.sent.append((route, message.title))
        return SendResult(ok=True)


ALL = frozenset(EventKind)


@dataclass
class World:
    source: FakeSource = field(default_factory=FakeSource)
    store: FakeStore = field(default_factory=FakeStore)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    now: datetime = T0
    rules: tuple[RouteRule, ...] = (RouteRule("ops", ALL), RouteRule("team", ALL))
    deadline: timedelta = timedelta(seconds=60)
    api_skew: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        self.source.clock = lambda: self.now + self.api_skew

    def cycle(self) -> Cycle:
        settings = CycleSettings(
            rules=self.rules,
            retry=RetryPolicy(base=timedelta(seconds=30)),
            storm_threshold=50,
            deadline=self.deadline,
            send_interval=timedelta(0),
        )
        store = self.store
        return Cycle(
            self.source,
            store,
            store,
            store,
            self.notifier,
            settings,
            lambda: self.now,
            lambda: Elapsed((self.now - T0).total_seconds(), "test-boot"),
        )

    async def run(self, minutes: float = 1) -> None:
        self.now += timedelta(minutes=minutes)
        report = await self.cycle().run()
        assert report.ok, report.error


def routed(world: World, route: str) -> list[str]:
    return [title for name, title in world.notifier.sent if name == route]


async def test_the_kb_list_is_read_once_per_cycle_and_nothing_else_while_idle() -> None:
    world = World()
    world.source.show("kb-1", job(1, state="completed"))
    world.source.show("kb-2")
    for _ in range(3):
        await world.run()
    assert world.source.calls == Counter({"kbs": 3})


async def test_the_latest_jobs_list_is_read_only_when_a_known_kbs_latest_job_changed() -> None:
    world = World()
    world.source.show("kb-1", job(1, state="completed"))
    await world.run()  # first sight: the KB list alone, never the latest-15 list
    assert world.source.calls == Counter({"kbs": 1})

    world.source.show("kb-1", job(1, state="completed"), job(2, minute=2))
    await world.run(2)
    await world.run()
    assert world.source.calls["kb_jobs kb-1"] == 1


async def test_a_job_that_came_and_went_between_polls_is_found_in_the_latest_jobs_list() -> None:
    world = World(rules=(RouteRule("ops", ALL),))
    world.source.show("kb-1", job(1, state="completed"))
    await world.run()
    world.source.show(
        "kb-1",
        job(1, state="completed"),
        job(2, state="completed", minute=2),
        job(3, state="completed", minute=3),
    )
    await world.run(5)
    assert routed(world, "ops") == ["✅ kb-1: indexing completed"] * 2
    assert {key for key, _ in world.store.rows} == {"job-2/completed", "job-3/completed"}


async def test_data_sources_are_read_only_for_failed_and_partial_outcomes() -> None:
    world = World()
    world.source.show("a", job(1, "a"))
    world.source.show("b", job(2, "b"))
    world.source.show("c", job(3, "c"))
    await world.run()
    world.source.show("a", job(1, "a", "failed"))
    world.source.show("b", job(2, "b", "partial"))
    world.source.show("c", job(3, "c", "completed"))
    await world.run()
    await world.run()

    fetched = {key for key in world.source.calls if key.startswith("data_sources")}
    assert fetched == {"data_sources job-1", "data_sources job-2"}
    assert world.source.calls["data_sources job-1"] == 1
    failed = world.store.rows[("job-1/failed", "ops")].transition
    assert failed.job is not None
    assert failed.job.data_source_jobs[0].error_msg == "crawl_blocked"


async def test_a_failing_latest_jobs_fetch_keeps_the_kb_out_so_its_new_job_is_not_missed() -> None:
    world = World(rules=(RouteRule("ops", ALL),))
    world.source.show("kb-1", job(1, state="completed"))
    world.source.show("kb-2", job(5, "kb-2", "completed"))
    await world.run()
    world.source.show("kb-1", job(1, state="completed"), job(2, state="failed", minute=2))
    world.source.failing_kb_jobs.add("kb-1")
    await world.run(3)

    assert list(world.store.rows) == []
    assert world.store.state.kbs["kb-1"].last_job_uuid == "job-1"  # still "new" next time
    world.source.failing_kb_jobs.clear()
    await world.run()
    assert [key for key, _ in world.store.rows] == ["job-2/failed"]
    assert world.source.calls["kb_jobs kb-1"] == 2


async def test_many_kbs_with_new_jobs_at_once_cost_one_account_wide_list_not_one_each() -> None:
    """A burst (more new jobs than pages of the account's job list) reads that list once."""
    world = World(rules=(RouteRule("ops", ALL),))
    kbs = [f"kb-{n}" for n in range(5)]
    for n, kb in enumerate(kbs):
        world.source.show(kb, job(10 * n, kb, "completed"))
    await world.run()
    for n, kb in enumerate(kbs):
        # each KB ran two jobs since the last poll; only the latest shows in the KB list
        world.source.show(
            kb,
            job(10 * n, kb, "completed"),
            job(10 * n + 1, kb, "failed", 2),
            job(10 * n + 2, kb, "completed", 3),
        )
    await world.run(5)

    assert world.source.calls["jobs"] == 1
    assert not [key for key in world.source.calls if key.startswith("kb_jobs")]
    found = {key for key, _ in world.store.rows}
    assert {f"job-{10 * n + 1}/failed" for n in range(5)} <= found
    assert {f"job-{10 * n + 2}/completed" for n in range(5)} <= found


async def test_a_failing_route_postpones_its_other_rows_unspent_while_another_is_served() -> None:
    world = World()
    world.source.show("a", job(1, "a"))
    world.source.show("b", job(2, "b"))
    world.source.show("c", job(3, "c"))
    world.notifier.failing.add("team")
    await world.run()

    assert len(routed(world, "ops")) == 3
    states = world.store.states("team")
    assert [(s, n) for _, s, n in states] == [(DeliveryState.PENDING, 1)] + [
        (DeliveryState.PENDING, 0)
    ] * 2
    due = {row.due for (_, name), row in world.store.rows.items() if name == "team"}
    assert len(due) == 1 and due.pop() > world.now  # all wait for the first one's backoff

    world.notifier.failing.clear()
    await world.run(0.1)  # not due yet
    assert routed(world, "team") == []
    await world.run(2)
    assert len(routed(world, "team")) == 3
    assert all(s is DeliveryState.SENT for _, s, _ in world.store.states("team"))


async def test_a_notifier_that_raises_loses_no_row_and_the_row_is_sent_later() -> None:
    world = World(rules=(RouteRule("ops", ALL),))
    world.source.show("kb-1", job(1))
    world.notifier.raising.add("ops")
    report_cycle = world.cycle()
    world.now += timedelta(minutes=1)
    report = await report_cycle.run()

    assert report.ok
    [(event_id, state, attempts)] = world.store.states("ops")
    assert (event_id, state, attempts) == ("job-1/started", DeliveryState.PENDING, 1)
    assert "notifier error: RuntimeError" in (world.store.rows[(event_id, "ops")].error or "")
    world.notifier.raising.clear()
    await world.run(2)
    assert routed(world, "ops") == ["ℹ️ kb-1: indexing started"]


async def test_an_unknown_enum_value_is_logged_once_and_alerts_nothing() -> None:
    world = World(rules=(RouteRule("ops", ALL),))
    odd = replace(
        job(1), phase=Phase.UNKNOWN, phase_raw="BATCH_JOB_PHASE_QUEUED", status=Status.UNKNOWN
    )
    world.source.show("kb-1", odd)
    cycle = world.cycle()  # one daemon's cycle, polled three times
    with capture_logs() as logs:
        for _ in range(3):
            world.now += timedelta(minutes=1)
            assert (await cycle.run()).ok
    unknown = [e for e in logs if e["event"] == "api_unknown_value"]
    assert [(e["value"], e["job"]) for e in unknown] == [("BATCH_JOB_PHASE_QUEUED", "job-1")]
    assert world.notifier.sent == []


# --- time: the API's clock, the cycle's deadline ----------------------------------------------


async def test_a_kb_created_after_the_first_run_has_its_finished_first_job_alerted() -> None:
    """Creating a KB starts a job; if it fails between two polls, that is news, not history."""
    world = World(rules=(RouteRule("ops", ALL),), api_skew=timedelta(minutes=-10))
    world.source.show("kb-1", job(1, state="completed", minute=-60))
    await world.run()
    assert world.store.meta[BASELINE_KEY]
    born = world.now + world.api_skew + timedelta(seconds=20)
    first = replace(job(2, "kb-new", "failed"), created_at=born, updated_at=born)
    world.source.show("kb-new", first, created=born)
    await world.run()
    assert [key for key, _ in world.store.rows] == ["job-2/failed"]
    # a new KB's latest-15 list is read on first sight: a job before its latest is not missed
    assert world.source.calls["kb_jobs kb-new"] == 1


async def test_a_cycle_whose_api_reads_hang_ends_at_its_deadline_as_a_failed_api_read() -> None:
    world = World(deadline=timedelta(seconds=0.3))
    world.source.show("kb-1", job(1))
    world.source.hanging.add("kbs")
    began = time.monotonic()
    report = await world.cycle().run()
    assert time.monotonic() - began < 5
    assert not report.ok
    assert report.error == "the API was not read within the cycle deadline (0.3s)"
    health = json.loads(world.store.meta["api_health"])
    assert health["failing_since"] is not None  # counted towards api_unreachable
    assert health["last_error"].startswith("the API was not read within the cycle deadline")


async def test_error_details_that_never_come_cost_the_alert_its_details_never_the_cycle() -> None:
    """The details are an optional read: cut at their share of the deadline, the failure is
    recorded (and alerted) without them, in that cycle, which ends on time (issue 9)."""
    world = World(rules=(RouteRule("ops", ALL),), deadline=timedelta(seconds=0.3))
    world.source.show("kb-1", job(1))
    await world.run()
    world.source.show("kb-1", job(1, state="failed"))
    world.source.hanging.add("data_sources")
    world.now += timedelta(minutes=1)
    assert (await world.cycle().run()).ok
    assert ("job-1/failed", "ops") in world.store.rows

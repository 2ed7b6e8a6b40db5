"""End to end, against the simulator on loopback: every extra read inside the one budget.

The real cycle (real `ApiClient`, real SQLite store, the schedules, the model prices and the
reads after the poll) polls 120 generated KBs every 60 simulated seconds; the client's own
clock (its sliding minute, its waits) is the simulator's, so an hour passes in seconds. The
simulator counts every request by kind:

- over a simulated hour, the extra reads charged to the share (data sources, databases,
  agents, schedules, reports) stay within it (10 % of the 60/min ceiling: 360), the model
  prices are their small floor beside it, and no poll is ever delayed: each cycle's KB list
  goes out at the very second the cycle starts;
- when the API's `ratelimit-remaining` falls under `api.reserve`, the extra reads stop first
  (prices included) while the polling goes on every cycle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.core.clocks import Elapsed
from watcher.core.extras import share_per_hour
from watcher.core.outbox import Budget, Message, SendResult
from watcher.edges import host
from watcher.edges.api.client import ApiClient, ApiSettings
from watcher.edges.store.sqlite import SqliteStore
from watcher.service.costs import PriceBook
from watcher.service.cycle import Cycle, CycleSettings
from watcher.service.extrarun import ExtrasSettings
from watcher.service.lease_keeper import LeaseKeeper
from watcher.simulator import ManualClock, Simulator, generated_scenario, serve
from watcher.simulator.scenario import AgentSpec

TOKEN = "sim-token"
START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
CEILING = 60  # api.max_requests_per_minute, the default: 3,600 an hour
SHARE = share_per_hour(CEILING, 0.1)  # 360 an hour
KB_LIST = "/v2/gen-ai/knowledge_bases"
CHARGED = ("sources", "database", "agents", "schedule", "report")


class NoRoutes:
    """A notifier with no route: these tests count API requests only."""

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return ()

    async def send(self, route: str, message: Message, skip: frozenset[int] = frozenset(),
                   fitted: object = None) -> SendResult:  # fmt: skip
        raise AssertionError("no route is configured")


def account(n_kbs: int, per_hour: int = 10**9) -> Simulator:
    scenario = generated_scenario(n_kbs, busy=True, seed=7)
    keys = [kb.key for kb in scenario.knowledge_bases]
    agents = tuple(
        AgentSpec(f"agent-{i}", f"bot-{i}", tuple(keys[(i * 5 + j) % n_kbs] for j in range(5)))
        for i in range(max(2, n_kbs // 20))
    )
    return Simulator(replace(scenario, agents=agents), TOKEN, ManualClock(START),
                     per_hour=per_hour, per_minute=10**9)  # fmt: skip


class Rig:
    """The real cycle on a simulated clock: `cycles(n)` polls every 60 simulated seconds."""

    def __init__(self, sim: Simulator, cycle: Cycle) -> None:
        self.sim, self.cycle = sim, cycle

    async def cycles(self, n: int) -> None:
        for _ in range(n):
            await self.cycle.run()
            self.sim.advance(60)

    def seen(self) -> list[tuple[float, str]]:
        """(simulated seconds since the start, kind) of every request the simulator saw."""
        return [((r.at - START).total_seconds(), r.read_kind) for r in self.sim.requests]

    def kb_list_times(self) -> list[float]:
        return [(r.at - START).total_seconds() for r in self.sim.requests if r.path == KB_LIST]


@pytest.fixture
async def rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    per_hour, reserve = getattr(request, "param", (10**9, 500))
    sim = account(120, per_hour)
    clock: ManualClock = sim.clock  # type: ignore[assignment]

    def seconds() -> float:
        return (clock.now() - START).total_seconds()

    async def sleep(delay: float) -> None:
        sim.advance(delay)  # the client's own waits pass in simulated time

    def elapsed() -> Elapsed:
        return Elapsed(seconds(), "e2e")

    store = await SqliteStore.open(tmp_path / "w.db", now=clock.now())
    keeper = LeaseKeeper(store, host.this_process("e2e", clock.now()))
    await keeper.acquire()
    keeper.start()
    try:
        async with serve(sim) as base_url:
            client = ApiClient(
                ApiSettings(base_url, max_requests_per_minute=CEILING),
                TOKEN,
                token_source="e2e",
                monotonic=seconds,
                wall_clock=lambda: clock.now().timestamp(),
                sleep=sleep,
            )
            extras = ExtrasSettings(SHARE, reserve=reserve, ceiling=CEILING, fastest=15.0)
            settings = CycleSettings(extras=extras)  # the budget as `runtime` builds it
            cycle = Cycle(client, store, store, store, NoRoutes(), settings, clock.now, elapsed,
                          extra_source=client, facts=store, extra=client,
                          prices=PriceBook(client, elapsed=elapsed, meta=store))  # fmt: skip
            try:
                yield Rig(sim, cycle)
            finally:
                await client.aclose()
    finally:
        await keeper.stop()
        await store.close()


async def test_over_a_simulated_hour_extra_reads_stay_within_the_share_and_no_poll_waits(
    rig: Rig,
) -> None:
    await rig.cycles(60)

    seen = rig.seen()
    counts = Counter(k for _, k in seen)
    charged = sorted(t for t, k in seen if k in CHARGED)
    # the schedules came with the sources and the databases: the share is shared, not owned
    # (the agents, of low priority, wait for the second hour at 120 KBs)
    assert all(counts[k] > 0 for k in ("sources", "database", "schedule"))
    # within the share in any sliding hour (the simulated hour is the first one)
    assert len(charged) <= SHARE
    # 120 KBs want more than the share in their first hour (sources, schedules, databases):
    # the share is what binds, not the reads' own cadences
    assert len(charged) >= SHARE - 10
    # the prices are a floor beside the share: one read (one or two requests) in the hour
    assert 1 <= counts["prices"] <= 2
    # no poll was delayed: each cycle's KB list went out the second its cycle began
    assert rig.kb_list_times() == [60.0 * i for i in range(60)]
    # and the worst minute kept the ceiling
    times = sorted(t for t, _ in seen)
    assert max(sum(1 for u in times if t <= u < t + 60) for t in times) <= CEILING


@pytest.mark.parametrize("rig", [(560, 500)], indirect=True)
async def test_a_tight_budget_stops_the_extra_reads_first_and_the_polling_goes_on(
    rig: Rig,
) -> None:
    """560 requests an hour at the API, a reserve of 500: once `ratelimit-remaining` is under
    500 (after 60 requests, in the first minutes), no extra read goes out, neither the
    schedules nor the prices; every poll still does, on time."""
    await rig.cycles(40)

    seen = rig.seen()
    tight_at = seen[60][0]  # the 61st request is the first answered under the reserve
    before = Counter(k for t, k in seen if t <= tight_at)
    after = Counter(k for t, k in seen if t > tight_at + 60)
    assert before["sources"] > 0 and tight_at < 600  # the extra reads came, then the limit
    assert after["polling"] > 0 and set(after) == {"polling"}
    assert rig.kb_list_times() == [60.0 * i for i in range(40)]

"""End to end: what the extra reads spent survives a new process and a reload.

Before, each process started with a full bucket (five minutes of the share) and an empty
sliding hour: `watcher once` from cron every minute, or a reload that rebuilds the cycle,
spent a fresh burst each time. The budget now keeps its hour in the store's meta, per minute
of DigitalOcean's clock, and a new process goes on from it.

The real cycle (real `ApiClient`, real SQLite store reopened by each "process", its lease
taken and let go) against 120 generated KBs on the simulator on loopback. The processes
share the host's boot clock, as `watcher once` runs from cron do; the stored hour is on the
API's clock all the same (the monotonic clock of one process is never stored).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.e2e.test_reads_budget import (
    CEILING,
    CHARGED,
    SHARE,
    START,
    TOKEN,
    NoRoutes,
    account,
)
from watcher.core.clocks import Elapsed
from watcher.edges import host
from watcher.edges.api.client import ApiClient, ApiSettings
from watcher.edges.store.sqlite import SqliteStore
from watcher.service.budget import SPENT_KEY, decode_spent
from watcher.service.costs import PriceBook
from watcher.service.cycle import Cycle, CycleSettings
from watcher.service.extrarun import ExtrasSettings
from watcher.service.lease_keeper import LeaseKeeper
from watcher.simulator import ManualClock, Simulator, serve


class Processes:
    """Processes of a watcher on one SQLite file: each opens the store (taking its lease),
    a client and a cycle, runs `cycles` cycles a minute apart, and exits."""

    def __init__(self, sim: Simulator, base_url: str, path: Path) -> None:
        self.sim, self.base_url, self.path = sim, base_url, path
        self.clock: ManualClock = sim.clock  # type: ignore[assignment]
        self.started = 0

    def seconds(self) -> float:
        return (self.clock.now() - START).total_seconds()

    async def run(self, cycles: int = 1) -> Cycle:
        self.started += 1
        boot = "host"  # processes on one host share its boot clock (`elapsed_now`)

        def elapsed() -> Elapsed:
            return Elapsed(self.seconds(), boot)

        async def sleep(delay: float) -> None:
            self.sim.advance(delay)

        store = await SqliteStore.open(self.path, now=self.clock.now())
        keeper = LeaseKeeper(store, host.this_process(f"once-{self.started}", self.clock.now()))
        await keeper.acquire()
        client = ApiClient(
            ApiSettings(self.base_url, max_requests_per_minute=CEILING),
            TOKEN,
            token_source="e2e",
            monotonic=self.seconds,
            wall_clock=lambda: self.clock.now().timestamp(),
            sleep=sleep,
        )
        settings = CycleSettings(extras=ExtrasSettings(SHARE, reserve=500))
        cycle = Cycle(client, store, store, store, NoRoutes(), settings, self.clock.now, elapsed,
                      extra_source=client, facts=store, extra=client,
                      prices=PriceBook(client, elapsed=elapsed, meta=store))  # fmt: skip
        try:
            for _ in range(cycles):
                await cycle.run()
                self.sim.advance(60)
        finally:
            await client.aclose()
            await keeper.stop()
            await store.close()
        return cycle

    def charged(self) -> list[float]:
        """When (simulated seconds) each request charged to the share went out."""
        seen = [((r.at - START).total_seconds(), r.read_kind) for r in self.sim.requests]
        return sorted(t for t, k in seen if k in CHARGED)

    def counts(self) -> Counter[str]:
        return Counter(r.read_kind for r in self.sim.requests)


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    sim = account(120)
    async with serve(sim) as base_url:
        yield Processes(sim, base_url, tmp_path / "w.db")


def _busiest_hour(times: list[float]) -> int:
    return max((sum(1 for u in times if t <= u < t + 3600) for t in times), default=0)


async def test_watcher_once_every_minute_spends_no_more_than_the_share_in_an_hour(
    processes: Processes,
) -> None:
    """60 runs of `watcher once`, a minute apart, each a new process on the same file: before,
    each spent a fresh bucket (30 requests at 120 KBs), so the hour took far more than 360."""
    for _ in range(60):
        await processes.run()

    charged = processes.charged()
    assert len(charged) <= SHARE
    assert len(charged) >= SHARE - 40  # the share still binds: the reads were not lost
    counts = processes.counts()
    assert all(counts[k] > 0 for k in ("sources", "database", "schedule")), counts


async def test_a_reload_every_ten_minutes_keeps_the_spent_hour(processes: Processes) -> None:
    """A reload rebuilds the cycle (and its budget) on the kept store; every ten minutes it
    would have given the extra reads five minutes' share more each time."""
    for _ in range(6):
        await processes.run(10)
    for _ in range(3):  # the second hour: the share again, no more
        await processes.run(10)

    charged = processes.charged()
    assert len([t for t in charged if t < 3600]) <= SHARE
    assert _busiest_hour(charged) <= SHARE


async def test_the_spent_hour_is_stored_per_minute_of_the_apis_clock(
    processes: Processes,
) -> None:
    await processes.run(3)

    store = await SqliteStore.open(processes.path, now=processes.clock.now())
    try:
        stored = await store.get_meta(SPENT_KEY)
    finally:
        await store.close()
    assert stored is not None
    minutes = decode_spent(stored)
    start_minute = int(START.timestamp() // 60)
    assert set(minutes) <= {start_minute, start_minute + 1, start_minute + 2}
    assert sum(minutes.values()) == len(processes.charged())


async def _stored(processes: Processes, value: str) -> None:
    store = await SqliteStore.open(processes.path, now=processes.clock.now())
    keeper = LeaseKeeper(store, host.this_process("editor", processes.clock.now()))
    await keeper.acquire()
    try:
        await store.set_meta(SPENT_KEY, value)
    finally:
        await keeper.stop()
        await store.close()


FUTURE = int(START.timestamp() // 60) + 600  # ten hours after the API's clock


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("{not json", "malformed"),
        ('{"v": 1, "minutes": [[1, "x"]]}', "malformed"),
        ('{"v": 2}', "malformed"),
        (f'{{"v": 1, "minutes": [[{FUTURE}, 360]]}}', "dated after the API's clock"),
    ],
)
async def test_a_corrupt_or_future_stored_hour_is_ignored_with_a_warning(
    processes: Processes, value: str, reason: str
) -> None:
    await processes.run()  # the store exists
    await _stored(processes, value)
    before = len(processes.charged())

    with capture_logs() as logs:
        cycle = await processes.run()

    [warning] = [e for e in logs if e["event"] == "extra_reads_spent_ignored"]
    assert warning["log_level"] == "warning" and reason in warning["reason"]
    # a fresh bucket, as without a stored hour: the extra reads went on
    assert len(processes.charged()) > before
    assert cycle.budget is not None and cycle.budget.kept is not None
    decode_spent(cycle.budget.kept)  # and a sound value replaced the bad one


async def test_each_account_keeps_its_own_spent_hour_on_one_sqlite_store(
    tmp_path: Path,
) -> None:
    """Two `[[accounts]]` on one SQLite file (one lease, the process's): each token's budget
    is its own, and so is the hour it keeps (the key is the token lease's fingerprint)."""
    from tests.e2e.test_accounts import TOKEN_ALPHA, TOKEN_BETA, World, running
    from watcher.edges.store.lease import token_lease
    from watcher.service.budget import spent_key

    world = World()
    async with running(tmp_path, world):
        await world.tick(5)
        assert world.daemon is not None
        runtime = world.daemon.runtime
        keys = {spent_key(token_lease(t)) for t in (TOKEN_ALPHA, TOKEN_BETA)}
        cycles = [runtime.cycle, *(a.cycle for a in runtime.others)]
        assert {c.settings.extras.spent_key for c in cycles if c.settings.extras} == keys
        for key, cycle in zip(sorted(keys), sorted(cycles, key=_key), strict=True):
            stored = await runtime.store.get_meta(key)
            assert stored is not None and cycle.budget is not None
            assert sum(decode_spent(stored).values()) == cycle.budget.spent_hour(cycle.elapsed())
            assert cycle.budget.spent_hour(cycle.elapsed()) > 0
        # the deployment's metric adds every account's requests up, by kind
        text = runtime.metrics.render().decode()
        line = 'gradient_watcher_extra_requests_total{kind="data_sources"} '
        [value] = [x.removeprefix(line) for x in text.splitlines() if x.startswith(line)]
        both = sum(c.budget.by_kind["data_sources"] for c in cycles if c.budget is not None)
        assert float(value) == both > 0


def _key(cycle: Cycle) -> str:
    return cycle.settings.extras.spent_key if cycle.settings.extras else ""

"""What the extra reads spend of the hourly budget next to the polling, at 10, 120 and 1,000 KBs.

The real cycle (`watcher.service.cycle.Cycle`, with the real `ApiClient`, a real SQLite store
and the extra reads of `watcher.service.extras.REGISTRY`) polls the simulator on loopback
every 60 simulated seconds (the idle interval) for `--hours` simulated hours. The account is
`generated_scenario(n, busy=True, seed=7)` with one agent per 20 KBs (at least 2), each using
5 KBs. The watcher's ceiling is `api.max_requests_per_minute` = 60 (3,600 an hour), so the
extra reads' default share is 10 %: 360 requests an hour. Requests are counted from the
simulator's own log, per simulated hour, as polling (the KB list, job lists, jobs, job data
sources) or extra (a KB's data sources, one KB, the agents); the worst sliding minute is
the most requests of both kinds together in any 60 simulated seconds.

    python bench/extra_reads_budget.py [--sizes 10 120 1000] [--hours 3] [--share 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from watcher.core.clocks import Elapsed
from watcher.core.extras import share_per_hour
from watcher.core.outbox import Budget, Message, SendResult
from watcher.edges import host
from watcher.edges.api.client import ApiClient, ApiSettings
from watcher.edges.store.sqlite import SqliteStore
from watcher.service.cycle import Cycle, CycleSettings
from watcher.service.extrarun import ExtrasSettings
from watcher.service.lease_keeper import LeaseKeeper
from watcher.simulator import ManualClock, Simulator, generated_scenario, serve
from watcher.simulator.scenario import AgentSpec

TOKEN = "sim-token"
START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
CEILING = 60  # api.max_requests_per_minute, the default
_EXTRA = re.compile(r"/knowledge_bases/[^/]+(/data_sources)?$|/agents")


class _NoRoutes:
    """A notifier with no route: the benchmark counts API requests only."""

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return ()

    async def send(self, route: str, message: Message, skip: frozenset[int] = frozenset(),
                   fitted: object = None) -> SendResult:  # fmt: skip
        raise AssertionError("no route is configured")


def _account(n_kbs: int) -> Simulator:
    scenario = generated_scenario(n_kbs, busy=True, seed=7)
    keys = [kb.key for kb in scenario.knowledge_bases]
    agents = tuple(
        AgentSpec(f"agent-{i}", f"bot-{i}", tuple(keys[(i * 5 + j) % n_kbs] for j in range(5)))
        for i in range(max(2, n_kbs // 20))
    )
    return Simulator(replace(scenario, agents=agents), TOKEN, ManualClock(START),
                     per_hour=10**9, per_minute=10**9)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Row:
    """One simulated hour: requests by kind (polling, sources, database, agents), and the
    most requests in any sliding minute."""

    counts: Counter[str]
    worst_minute: int

    @property
    def extra(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind != "polling")


async def run_one(n_kbs: int, hours: int, share: float) -> list[Row]:
    """Per simulated hour, what was sent."""
    sim = _account(n_kbs)
    clock: ManualClock = sim.clock  # type: ignore[assignment]

    def seconds() -> float:
        return (clock.now() - START).total_seconds()

    async def sleep(delay: float) -> None:
        sim.advance(delay)  # the client's own waits pass in simulated time

    with tempfile.TemporaryDirectory() as folder:
        store = await SqliteStore.open(Path(folder) / "w.db", now=clock.now())
        keeper = LeaseKeeper(store, host.this_process("bench", clock.now()))
        await keeper.acquire()
        keeper.start()
        async with serve(sim) as base_url:
            client = ApiClient(
                ApiSettings(base_url, max_requests_per_minute=CEILING),
                TOKEN,
                token_source="bench",
                monotonic=seconds,
                wall_clock=lambda: clock.now().timestamp(),
                sleep=sleep,
            )
            extras = ExtrasSettings(share_per_hour(CEILING, share), reserve=500)
            settings = CycleSettings(extras=extras if extras.per_hour else None)
            cycle = Cycle(client, store, store, store, _NoRoutes(), settings, clock.now,
                          lambda: Elapsed(seconds(), "bench"), extra_source=client,
                          facts=store)  # fmt: skip
            for _ in range(hours * 60):
                await cycle.run()
                sim.advance(60)
            await client.aclose()
        await keeper.stop()
        await store.close()
    return _per_hour(sim, hours)


def _kind(path: str) -> str:
    """polling, or which extra read: sources, database, agents."""
    if not _EXTRA.search(path):
        return "polling"
    if "/agents" in path:
        return "agents"
    return "sources" if path.endswith("/data_sources") else "database"


def _per_hour(sim: Simulator, hours: int) -> list[Row]:
    rows = []
    stamps = [((r.at - START).total_seconds(), _kind(r.path)) for r in sim.requests]
    for hour in range(hours):
        inside = [(t, kind) for t, kind in stamps if hour * 3600 <= t < (hour + 1) * 3600]
        counts = Counter(kind for _, kind in inside)
        times = sorted(t for t, _ in inside)
        worst = max((_in_minute(times, t) for t in times), default=0)
        rows.append(Row(counts, worst))
    return rows


def _in_minute(times: Sequence[float], start: float) -> int:
    return sum(1 for t in times if start <= t < start + 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 120, 1000])
    parser.add_argument("--hours", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.1)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    share = share_per_hour(CEILING, args.share)
    print(
        f"ceiling {CEILING}/min = {CEILING * 60}/h; extra reads' share {share}/h; poll every 60 s"
    )
    print(
        "| KBs | hour | polling req/h | extra req/h | extra % of ceiling "
        "| of which sources / database / agents | worst minute |"
    )
    print("|---:|---:|---:|---:|---:|---|---:|")
    for n in args.sizes:
        began = time.perf_counter()
        for hour, row in enumerate(asyncio.run(run_one(n, args.hours, args.share))):
            c, pct = row.counts, 100 * row.extra / (CEILING * 60)
            kinds = f"{c['sources']} / {c['database']} / {c['agents']}"
            print(
                f"| {n:,} | {hour + 1} | {c['polling']:,} | {row.extra:,} | {pct:.1f} % "
                f"| {kinds} | {row.worst_minute} |"
            )
        print(f"<!-- {n} KBs took {time.perf_counter() - began:.1f} s of wall time -->")


if __name__ == "__main__":
    main()

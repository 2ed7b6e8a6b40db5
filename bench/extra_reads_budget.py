"""What the extra reads spend of the hourly budget next to the polling, at 10, 120 and 1,000 KBs.

The real cycle (`watcher.service.cycle.Cycle`, with the real `ApiClient`, a real SQLite store,
the extra reads of `watcher.service.extras.REGISTRY`, the schedules, the model prices and the
per-file reports, all inside one `ReadsBudget`) polls the simulator on loopback every 60
simulated seconds (the idle interval) for `--hours` simulated hours; the client's clock is
the simulator's, so hours pass in seconds. The account is `generated_scenario(n, busy=True,
seed=7)` with one agent per 20 KBs (at least 2), each using 5 KBs. The watcher's ceiling is
`api.max_requests_per_minute` = 60 (3,600 an hour), so the extra reads' default share is
10 %: 360 requests an hour. Requests are counted from the simulator's own log, per simulated
hour, as polling (the KB list, job lists, jobs, job data sources) or by extra read (a KB's
data sources, one KB's database, the agents, the schedules, the model prices, the reports'
signed URLs); the busiest minute is the most requests of all kinds together in any 60
simulated seconds. Per size it also prints when every KB's schedule had been read once, and
the average and longest interval between two reads of one KB's schedule.

    python bench/extra_reads_budget.py [--sizes 10 120 1000] [--hours 4] [--share 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
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
from watcher.service.costs import PriceBook
from watcher.service.cycle import Cycle, CycleSettings
from watcher.service.extrarun import ExtrasSettings
from watcher.service.lease_keeper import LeaseKeeper
from watcher.simulator import ManualClock, Simulator, generated_scenario, serve
from watcher.simulator.scenario import AgentSpec

TOKEN = "sim-token"
START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
CEILING = 60  # api.max_requests_per_minute, the default
KINDS = ("sources", "database", "agents", "schedule", "prices", "report")
_SCHEDULE = re.compile(r"/scheduled-indexing/knowledge-base/([^/]+)$")


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
    """One simulated hour: requests by kind (polling, then `KINDS`), and the most requests
    in any sliding minute."""

    counts: Counter[str]
    worst_minute: int

    @property
    def extra(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind != "polling")


@dataclass(frozen=True, slots=True)
class Schedules:
    """When every KB's schedule had been read once (None: not within the run, with how
    many were), and the average and longest gap between two reads of one KB's schedule."""

    all_read_s: float | None
    read_once: int
    mean_gap_s: float | None
    max_gap_s: float | None


async def run_one(n_kbs: int, hours: int, share: float) -> tuple[list[Row], Schedules]:
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
            settings = CycleSettings(extras=extras)

            def elapsed() -> Elapsed:
                return Elapsed(seconds(), "bench")

            cycle = Cycle(client, store, store, store, _NoRoutes(), settings, clock.now,
                          elapsed, extra_source=client, facts=store, extra=client,
                          prices=PriceBook(client, elapsed=elapsed, meta=store))  # fmt: skip
            for _ in range(hours * 60):
                await cycle.run()
                sim.advance(60)
            await client.aclose()
        await keeper.stop()
        await store.close()
    return _per_hour(sim, hours), _schedules(sim, n_kbs)


def _schedules(sim: Simulator, n_kbs: int) -> Schedules:
    reads: dict[str, list[float]] = {}
    for r in sim.requests:
        if found := _SCHEDULE.search(r.path):
            reads.setdefault(found.group(1), []).append((r.at - START).total_seconds())
    firsts = [times[0] for times in reads.values()]
    all_read = max(firsts) if len(reads) == n_kbs else None
    gaps = [b - a for times in reads.values() for a, b in itertools.pairwise(times)]
    mean = sum(gaps) / len(gaps) if gaps else None
    return Schedules(all_read, len(reads), mean, max(gaps, default=None))


def _per_hour(sim: Simulator, hours: int) -> list[Row]:
    rows = []
    stamps = [((r.at - START).total_seconds(), r.read_kind) for r in sim.requests]
    for hour in range(hours):
        inside = [(t, kind) for t, kind in stamps if hour * 3600 <= t < (hour + 1) * 3600]
        counts = Counter(kind for _, kind in inside)
        times = sorted(t for t, _ in inside)
        worst = max((_in_minute(times, t) for t in times), default=0)
        rows.append(Row(counts, worst))
    return rows


def _in_minute(times: Sequence[float], start: float) -> int:
    return sum(1 for t in times if start <= t < start + 60)


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.0f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 120, 1000])
    parser.add_argument("--hours", type=int, default=4)
    parser.add_argument("--share", type=float, default=0.1)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    share = share_per_hour(CEILING, args.share)
    print(
        f"ceiling {CEILING}/min = {CEILING * 60}/h; extra reads' share {share}/h; poll every 60 s"
    )
    print(
        "| KBs | hour | polling req/h | charged extra req/h | % of ceiling "
        "| sources / database / agents / schedule / report | prices | busiest minute |"
    )
    print("|---:|---:|---:|---:|---:|---|---:|---:|")
    notes = []
    for n in args.sizes:
        began = time.perf_counter()
        rows, sched = asyncio.run(run_one(n, args.hours, args.share))
        for hour, row in enumerate(rows):
            c = row.counts
            charged = row.extra - c["prices"]
            kinds = " / ".join(str(c[k]) for k in KINDS if k != "prices")
            print(
                f"| {n:,} | {hour + 1} | {c['polling']:,} | {charged:,} "
                f"| {100 * charged / (CEILING * 60):.1f} % | {kinds} | {c['prices']} "
                f"| {row.worst_minute} |"
            )
        every = (
            _minutes(sched.all_read_s)
            if sched.all_read_s is not None
            else f"not within {args.hours} h ({sched.read_once:,} of {n:,} read)"
        )
        notes.append(
            f"{n:,} KBs: every schedule read once after {every}; re-read every "
            f"{_minutes(sched.mean_gap_s)} on average, at most {_minutes(sched.max_gap_s)} "
            f"({time.perf_counter() - began:.0f} s of wall time)"
        )
    print()
    for line in notes:
        print(f"- {line}")


if __name__ == "__main__":
    main()

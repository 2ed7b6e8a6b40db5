"""What one sweep of the account costs: requests and time for the watcher's two list reads.

Starts the simulated API on loopback with a generated, idle account of N knowledge bases
(N = 10, 120, 1000 by default) and, with the real `ApiClient`, reads every knowledge base
once (`list_knowledge_bases`, which also carries each KB's latest job) and every job of the
account once (`list_jobs`). Requests are counted from the simulator's own request log.

    python bench/sweep_cost.py [--sizes 10 120 1000] [--per-page 200]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sized
from dataclasses import dataclass

import structlog

from watcher.edges.api.client import ApiClient, ApiSettings
from watcher.simulator import ManualClock, Simulator, generated_scenario, serve

TOKEN = "sim-token"


@dataclass(frozen=True, slots=True)
class Cost:
    """One sweep: how many items came back, how many requests it took, how long."""

    items: int
    requests: int
    seconds: float


async def measure(sim: Simulator, sweep: Callable[[], Awaitable[Sized]]) -> Cost:
    """Run one sweep and count the requests the simulator received for it."""
    before = len(sim.requests)
    started = time.perf_counter()
    items = await sweep()
    elapsed = time.perf_counter() - started
    return Cost(len(items), len(sim.requests) - before, elapsed)


async def bench_one(n_kbs: int, per_page: int) -> tuple[Cost, Cost]:
    """Both sweeps against a fresh idle account of `n_kbs` knowledge bases."""
    sim = Simulator(generated_scenario(n_kbs, busy=False), token=TOKEN, clock=ManualClock())
    async with (
        serve(sim) as base_url,
        ApiClient(
            ApiSettings(base_url, per_page=per_page, max_requests_per_minute=10_000),
            TOKEN,
            token_source="bench",
        ) as client,
    ):
        kbs = await measure(sim, client.list_knowledge_bases)
        jobs = await measure(sim, client.list_jobs)
    return kbs, jobs


def render(rows: list[tuple[int, Cost, Cost]], per_page: int) -> str:
    """A Markdown table of the measurements."""
    lines = [
        f"per_page = {per_page}",
        "",
        "| KBs | list_knowledge_bases: KBs / requests / s | list_jobs: jobs / requests / s |",
        "|---:|---:|---:|",
    ]
    for n, kbs, jobs in rows:
        lines.append(
            f"| {n} | {kbs.items} / {kbs.requests} / {kbs.seconds:.3f} "
            f"| {jobs.items} / {jobs.requests} / {jobs.seconds:.3f} |"
        )
    return "\n".join(lines)


async def main(sizes: list[int], per_page: int) -> None:
    rows = []
    for n in sizes:
        kbs, jobs = await bench_one(n, per_page)
        rows.append((n, kbs, jobs))
    print(render(rows, per_page))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 120, 1000])
    parser.add_argument("--per-page", type=int, default=200)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(args.sizes, args.per_page))

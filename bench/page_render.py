"""What the page costs at scale: render time and size of each page and API list.

Builds a real SQLite store through its normal write path with `--kbs` knowledge bases of
`--jobs` jobs each (outcomes mixed, one event and one outbox row per finished job, some rows
dead), plus one knowledge base with `--long` jobs (90 days of hourly indexing), serves the
real app on the real server on 127.0.0.1, and fetches each view `--runs` times: median and
worst time to the last byte, the body's size as sent (gzip) and raw. Also the server's peak
RSS growth, and how long the store's reads take alone.

    python bench/page_render.py [--kbs 1000] [--jobs 20] [--long 2160] [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.edges.web.conftest import Host
from tests.edges.web.history import NOW, KbPlan, settle, write_history
from tests.stores import open_held
from watcher.core.outbox import DeliveryState
from watcher.edges.store.sqlite import SqliteStore
from watcher.edges.web.access import Access
from watcher.edges.web.app import create_app
from watcher.edges.web.server import WebServer

OUTCOMES = ["completed"] * 12 + ["no_changes"] * 3 + ["partial", "failed", "cancelled"]
LONG = "99999999-0000-4000-8000-00000000long"


def plans(kbs: int, jobs: int) -> list[KbPlan]:
    """`kbs` knowledge bases; the last job of every tenth still runs, of every 50th stalls."""
    made = []
    for i in range(kbs):
        words = [OUTCOMES[(i * 7 + n) % len(OUTCOMES)] for n in range(jobs)]
        if i % 10 == 0:
            words[-1] = "running"
        if i % 50 == 0:
            words[-1] = "stalled"
        made.append(KbPlan(f"{i:08x}-0000-4000-8000-{i:012x}", f"kb-{i:04d}-docs", words))
    return made


async def build(path: Path, kbs: int, jobs: int, long: int) -> SqliteStore:
    store = await open_held(path, NOW)
    started = time.perf_counter()
    await write_history(store, plans(kbs, jobs))
    long_plan = KbPlan(LONG, "hourly-reindex", [OUTCOMES[n % 18] for n in range(long)])
    await write_history(store, [long_plan], first_seen=NOW - timedelta(days=91))
    await settle(store, DeliveryState.SENT, limit=kbs * jobs // 2)
    await settle(store, DeliveryState.DEAD, limit=50, error="server error (HTTP 503)")
    print(
        f"store built in {time.perf_counter() - started:.1f} s: {kbs} KBs x {jobs} jobs, "
        f"one KB of {long} jobs"
    )
    return store


async def measure(base: str, path: str, runs: int) -> tuple[float, float, int, int]:
    """Median and worst seconds to the last byte, gzip size, raw size."""
    times, sizes = [], (0, 0)
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(runs):
            started = time.perf_counter()
            response = await client.get(base + path, headers={"accept-encoding": "gzip"})
            raw = response.content  # decoded
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, (path, response.status_code)
            sent = int(response.headers.get("content-length", len(gzip.compress(raw))))
            sizes = (sent, len(raw))
    return statistics.median(times), max(times), sizes[0], sizes[1]


async def store_reads(store: SqliteStore, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await store.knowledge_bases()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kbs", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--long", type=int, default=2160)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="page-bench-") as tmp:
        store = await build(Path(tmp) / "watcher.db", args.kbs, args.jobs, args.long)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        server = WebServer(create_app(Host(store), Access(loopback=True)))
        await server.start("127.0.0.1:0")
        base = f"http://127.0.0.1:{server.port}"
        views = [
            ("overview (every KB)", "/"),
            ("overview, problems only", "/?state=problems"),
            ("API: knowledge bases, limit 1000", "/api/v1/knowledge_bases?limit=1000"),
            ("API: knowledge bases, limit 100", "/api/v1/knowledge_bases"),
            (f"KB page, {args.long} jobs kept", f"/kb/{LONG}"),
            (f"API: KB history, {args.long} points", f"/api/v1/knowledge_bases/{LONG}/history"),
            ("KB page, 20 jobs", f"/kb/{plans(1, 1)[0].uuid}"),
            ("deliveries: dead letters", "/deliveries?state=dead"),
            ("deliveries: waiting", "/deliveries"),
            ("watcher", "/watcher"),
        ]
        print("\n| view | median | worst | sent (gzip) | raw |\n|---|---:|---:|---:|---:|")
        try:
            for label, path in views:
                median, worst, sent, raw = await measure(base, path, args.runs)
                print(
                    f"| {label} | {median * 1000:.0f} ms | {worst * 1000:.0f} ms | "
                    f"{sent / 1024:.0f} KB | {raw / 1024:.0f} KB |"
                )
            reads = await store_reads(store, args.runs)
        finally:
            await server.stop()
            await store.close()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(
            f"\nstore read of every KB with its last 20 jobs alone: {reads * 1000:.0f} ms (median)"
        )
        print(f"peak RSS grew by {(rss_after - rss_before) / 1024:.0f} MB while serving")


if __name__ == "__main__":
    asyncio.run(main())

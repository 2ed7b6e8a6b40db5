"""What the store's guards cost each write: the file identity check and the lease fence.

Every write of the SQLite store first compares the (device, inode) of the database, its -wal
and its -shm with those it opened (three `stat` calls), then, inside its transaction, reads the
lease row to check its epoch. Prints the cost of each, in microseconds, next to a whole
fenced write (a `set_meta` commit with synchronous=FULL, so one fsync) in milliseconds.

    python bench/store_write_cost.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from watcher.edges import host
from watcher.edges.store import lease as store_lease
from watcher.edges.store.sqlite import SqliteStore


async def measure(rounds: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as folder:
        now = datetime.now(UTC)
        store = await SqliteStore.open(Path(folder) / "w.db", now=now)
        holder = host.this_process("bench", now)
        await store.lease_step(holder, 30.0)
        files = store._files  # the store's own record of what it opened (private, on purpose)
        started = time.perf_counter()
        for _ in range(rounds):
            files.database_change()
            files.side_change()
        identity = (time.perf_counter() - started) / rounds * 1e6

        def fences(conn: sqlite3.Connection) -> float:
            epoch = store.epoch or 0
            started = time.perf_counter()
            for _ in range(rounds):
                store_lease.fence(conn, store.path, holder, epoch)
            return (time.perf_counter() - started) / rounds * 1e6

        fence = await store._run("measuring the fence", fences)
        writes = max(rounds // 10, 10)
        started = time.perf_counter()
        for n in range(writes):
            await store.set_meta("bench", str(n))
        write = (time.perf_counter() - started) / writes * 1e3
        await store.close()
    return identity, fence, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    identity, fence, write = asyncio.run(measure(args.rounds))
    print(f"file identity check per write: {identity:.1f} us")
    print(f"lease fence per write:         {fence:.1f} us")
    print(f"a whole fenced write (fsync):  {write:.2f} ms")


if __name__ == "__main__":
    main()

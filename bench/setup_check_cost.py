"""What the per-cycle check of the setup against the account costs (`watcher.service.accountcheck`).

Every cycle, after the KB listing, the watcher checks each route's `knowledge_bases` entries
against the account and folds the listing into the set of missing watched knowledge bases.
This prints the CPU time of that check per cycle for accounts of N knowledge bases (generated,
in memory: no API, no store), in three shapes of configuration:

- `all`: watch the whole account, routes on "*" (the common case: nothing to look up);
- `names`: watch the whole account, 5 routes naming 4 KBs each by their API name;
- `list`: a `[[knowledge_bases]]` entry for every KB, one of them missing from the account.

    python bench/setup_check_cost.py [--sizes 10 120 1000] [--cycles 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import structlog

from watcher.core.account import RouteRefs
from watcher.core.model import KnowledgeBase, WatchedKb
from watcher.core.state import WatchState
from watcher.service.accountcheck import AccountCheck

T0 = datetime(2026, 11, 28, tzinfo=UTC)


class MemoryMeta:
    """The store's meta table in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self.values.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.values[key] = value


def account(n: int) -> list[KnowledgeBase]:
    ids = [str(uuid.uuid5(uuid.NAMESPACE_DNS, f"kb{i}")) for i in range(n)]
    return [KnowledgeBase(kb_uuid, f"kb-{i}") for i, kb_uuid in enumerate(ids)]


def shape(name: str, kbs: list[KnowledgeBase]) -> tuple[list[WatchedKb], list[RouteRefs]]:
    if name == "all":
        return [], [RouteRefs("ops", 0, ("*",))]
    if name == "names":
        routes = [
            RouteRefs(f"team{r}", r, tuple(kb.name or "" for kb in kbs[r * 4 : r * 4 + 4]))
            for r in range(5)
        ]
        return [], routes
    watched = [WatchedKb(kb.uuid, kb.name) for kb in kbs]
    watched.append(WatchedKb(str(uuid.uuid4()), "gone"))
    return watched, [RouteRefs("ops", 0, ("*",))]


async def per_cycle_us(n: int, name: str, cycles: int) -> float:
    kbs = account(n)
    watched, routes = shape(name, kbs)
    check = AccountCheck(MemoryMeta(), watched, routes)
    known = WatchState()
    samples = []
    for cycle in range(cycles):
        now = T0 + timedelta(minutes=cycle)
        started = time.process_time()
        await check.check_routes(kbs)
        await check.presence(kbs, known, now)
        samples.append(time.process_time() - started)
    return statistics.median(samples[1:]) * 1e6  # the first cycle logs and writes: left out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 120, 1000])
    parser.add_argument("--cycles", type=int, default=200)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print("KBs    all (us/cycle)  names (us/cycle)  list (us/cycle)")
    for n in args.sizes:
        figures = [asyncio.run(per_cycle_us(n, s, args.cycles)) for s in ("all", "names", "list")]
        print(f"{n:>5}  {figures[0]:>14.1f}  {figures[1]:>16.1f}  {figures[2]:>15.1f}")


if __name__ == "__main__":
    main()

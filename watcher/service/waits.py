"""Where a suspended asyncio task waits: for `cycle_still_running`, which says it.

A cycle that overruns its interval is suspended somewhere in the watcher's code: reading the
API (within its deadline), waiting for the store's thread (a commit waits for the disk: the
store is durable, `synchronous=FULL`), or for a route's deliveries. The await chain of the
cycle's task, from its own coroutine down through every coroutine it awaits (`cr_await`),
names that place; the chain stops at what is not a coroutine (a future another thread or
task resolves), so the innermost frame of the watcher's own code is the most precise answer
there is without stopping anything.
"""

from __future__ import annotations

import asyncio
from types import CoroutineType, FrameType
from typing import Any

DEPTH = 100  # links followed at most (a chain is a few dozen deep)


def waiting_in(task: asyncio.Future[Any], prefix: str = "watcher.") -> str | None:
    """`module.function` of the innermost coroutine in `task`'s await chain whose module
    name starts with `prefix` (the watcher's own code); None when the task is not a suspended
    coroutine task, or no such frame is in its chain."""
    if not isinstance(task, asyncio.Task) or task.done():
        return None
    found: str | None = None
    link: object = task.get_coro()
    for _ in range(DEPTH):
        frame: FrameType | None = getattr(link, "cr_frame", None)
        if frame is None:
            break
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(prefix):
            found = f"{module}.{frame.f_code.co_name}"
        if not isinstance(link, CoroutineType):
            break
        link = link.cr_await
    return found

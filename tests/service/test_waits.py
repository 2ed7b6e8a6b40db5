"""`watcher.service.waits.waiting_in`: where a suspended task waits, named for people."""

from __future__ import annotations

import asyncio

import pytest

from watcher.service.waits import waiting_in

PREFIX = __name__  # this module plays the watcher's own code


async def commit(release: asyncio.Event) -> None:
    await release.wait()  # asyncio's own code below this: not named


async def settle(release: asyncio.Event) -> None:
    await commit(release)


async def cycle(release: asyncio.Event) -> None:
    await settle(release)


async def test_a_suspended_task_is_named_by_its_innermost_coroutine_of_the_watchers_code() -> None:
    release = asyncio.Event()
    task = asyncio.ensure_future(cycle(release))
    await asyncio.sleep(0)  # the task runs until it waits
    assert waiting_in(task, PREFIX) == f"{PREFIX}.commit"
    release.set()
    await task
    assert waiting_in(task, PREFIX) is None  # done: it waits nowhere


async def test_a_wait_on_another_task_names_the_last_coroutine_before_it() -> None:
    release = asyncio.Event()

    async def round_of_sends() -> None:
        await asyncio.wait({asyncio.ensure_future(commit(release))})

    task = asyncio.ensure_future(round_of_sends())
    await asyncio.sleep(0)
    assert waiting_in(task, PREFIX) == f"{PREFIX}.round_of_sends"
    release.set()
    await task


@pytest.mark.parametrize("prefix", ["watcher.", "no.such.module."])
async def test_a_task_in_no_code_of_the_prefix_waits_nowhere_named(prefix: str) -> None:
    release = asyncio.Event()
    task = asyncio.ensure_future(cycle(release))
    await asyncio.sleep(0)
    assert waiting_in(task, prefix) is None
    release.set()
    await task


def test_a_plain_future_is_no_task_and_waits_nowhere_named() -> None:
    loop = asyncio.new_event_loop()
    try:
        assert waiting_in(loop.create_future(), PREFIX) is None
    finally:
        loop.close()

"""Fixtures of the end-to-end tests, on the one harness of `tests.harness`.

Everything runs in the test's event loop and is driven by hand: the simulator sits on a
`ManualClock`, the watcher reads that same clock, so a test step is "advance the simulated
world by N seconds, run one cycle, read what the receivers got". Deliveries are real:
apprise posts to an HTTP webhook (`json://`), a Mattermost-style hook (`mmost://`, the
Slack-compatible shape) and an aiosmtpd server (`mailto://`), all on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import REALISTIC, Harness, Receivers, open_harness
from tests.receivers import SmtpReceiver, WebhookReceiver
from watcher.simulator import Simulator


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    hook, chat, mail = WebhookReceiver().start(), WebhookReceiver().start(), SmtpReceiver().start()
    try:
        yield Receivers(hook, chat, mail)
    finally:
        hook.stop()
        chat.stop()
        mail.stop()


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """Make harnesses (`REALISTIC` sections, with the test's over them), each runtime started
    by its first cycle; every runtime closed and every simulator stopped when the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(sim: Simulator, routes: list[dict[str, Any]], **overrides: Any) -> Harness:
            opened = open_harness(
                sim, tmp_path, routes=routes, base=REALISTIC, start=False, **overrides
            )
            return await stack.enter_async_context(opened)

        yield make

"""The HTTP stack as installed: what the client's cost per request depends on."""

from __future__ import annotations

import asyncio
import sys

import httpcore._synchronization as httpcore_sync


def test_httpcore_finds_sniffio_in_memory_rather_than_searching_for_it_on_every_request() -> None:
    """httpcore imports sniffio inside each lock and event it sets up, several times a
    request; without it installed (anyio 4 no longer brings it) every such import searches
    the whole path and fails. With it, the second import is a dictionary lookup."""

    async def library() -> str:
        return httpcore_sync.current_async_library()

    assert asyncio.run(library()) == "asyncio"
    assert "sniffio" in sys.modules

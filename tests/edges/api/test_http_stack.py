"""The HTTP stack as installed: what the client's cost per request depends on."""

from __future__ import annotations

import asyncio
import sys

import httpcore._synchronization as httpcore_sync
import httpx
import pytest

from tests.edges.api.clients import settings
from watcher.core.errors import RetryableSourceError
from watcher.edges.api import caller as caller_module
from watcher.edges.api.client import ApiClient


def test_httpcore_finds_sniffio_in_memory_rather_than_searching_for_it_on_every_request() -> None:
    """httpcore imports sniffio inside each lock and event it sets up, several times a
    request; without it installed (anyio 4 no longer brings it) every such import searches
    the whole path and fails. With it, the second import is a dictionary lookup."""

    async def library() -> str:
        return httpcore_sync.current_async_library()

    assert asyncio.run(library()) == "asyncio"
    assert "sniffio" in sys.modules


async def test_an_answer_that_stalls_on_a_real_socket_ends_at_the_request_deadline() -> None:
    """httpx keeps no read timeout of its own (the caller holds the whole exchange to one
    deadline): a server on loopback that sends its headers and a byte of the body, then
    nothing, still ends the read at `api.timeout`, as a retryable failure."""
    stalled = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
        await writer.drain()
        stalled.set()
        await asyncio.sleep(3600)

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    api = ApiClient(
        settings(f"http://127.0.0.1:{port}", timeout=0.3, max_attempts=1),
        "dop_v1_" + "f" * 64,
        token_source="test",
    )
    async with server, api:
        with pytest.raises(RetryableSourceError, match=r"no complete answer within 0\.3s"):
            await asyncio.wait_for(api.get_job("j-1"), 10)
    assert stalled.is_set()


async def test_each_target_is_parsed_once_into_a_url_and_the_cache_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The KB list's pages are asked for every cycle: their URLs are parsed once, and the
    requests still go to the page asked for; past `URLS_KEPT` targets the cache starts over."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json={"knowledge_bases": [], "links": {}, "meta": {}})

    base = "http://127.0.0.1:9"
    async with ApiClient(
        settings(base),
        "dop_v1_" + "f" * 64,
        token_source="test",
        transport=httpx.MockTransport(answer),
    ) as client:
        await client.list_knowledge_bases()
        await client.list_knowledge_bases()
        target = "/v2/gen-ai/knowledge_bases?page=1&per_page=200"
        assert asked == [base + target] * 2
        caller = client._caller
        assert caller.url(target) is caller.url(target)
        monkeypatch.setattr(caller_module, "URLS_KEPT", 2)
        caller.url("/a")
        assert str(caller.url("/b")) == base + "/b"  # the third target: the cache starts over
        assert list(caller.urls) == ["/b"]

"""The server: probes and metrics keep their contract; connections are bounded in number and
time; uvicorn never touches the process's signal handlers."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.edges.web.conftest import Host, Serve
from watcher.core.health import Health, Probe
from watcher.edges.web.access import Access
from watcher.edges.web.app import create_app
from watcher.edges.web.gate import Limits
from watcher.edges.web.server import WebServer, is_loopback, parse_listen


async def test_healthz_answers_the_liveness_verdict_and_only_asks_for_liveness(
    serve: Serve, host: Host, client: httpx.AsyncClient
) -> None:
    base = await serve()
    response = await client.get(base + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"live": True, "reason": "last cycle finished 1s ago (limit 90s)"}
    host.health_of[Probe.LIVE] = Health(False, "stuck: the last cycle finished 400s ago")
    response = await client.get(base + "/healthz")
    assert response.status_code == 503
    assert response.json()["live"] is False
    assert host.asked == [Probe.LIVE, Probe.LIVE]


async def test_readyz_is_503_with_the_reason_until_the_check_says_ready(
    serve: Serve, host: Host, client: httpx.AsyncClient
) -> None:
    base = await serve()
    response = await client.get(base + "/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "reason": "no successful cycle yet"}
    host.health_of[Probe.READY] = Health(True, "last successful cycle 5s ago")
    response = await client.get(base + "/readyz?verbose=1")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "reason": "last successful cycle 5s ago"}


async def test_metrics_are_served_in_the_exposition_format(
    serve: Serve, host: Host, client: httpx.AsyncClient
) -> None:
    host.meter.observe_cycle(True, 2.0, now=1_700_000_000.0)
    response = await client.get(await serve() + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    values = {
        s.name: s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if not s.labels
    }
    assert values["gradient_watcher_last_successful_cycle_timestamp_seconds"] == 1_700_000_000.0


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        # Nothing else is served.
        ("/nothing-here", "GET", 404),
        ("/metrics/extra", "GET", 404),
        # Probes and metrics take GET and HEAD only.
        ("/healthz", "PUT", 405),
        # HEAD answers the status without a body.
        ("/healthz", "HEAD", 200),
    ],
)
async def test_other_paths_and_methods_get_the_right_status(
    serve: Serve, client: httpx.AsyncClient, path: str, method: str, status: int
) -> None:
    response = await client.request(method, await serve() + path)
    assert response.status_code == status
    if method == "HEAD":
        assert response.content == b""


async def test_a_malformed_request_gets_400_and_a_closed_connection(serve: Serve) -> None:
    port = int((await serve()).rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"NONSENSE\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_a_failing_check_means_neither_live_nor_ready(
    serve: Serve, host: Host, client: httpx.AsyncClient
) -> None:
    async def broken(probe: Probe) -> Health:
        raise OSError("disk gone")

    host.health = broken  # type: ignore[method-assign]
    base = await serve()
    answers = [await client.get(base + p) for p in ("/healthz", "/readyz")]
    assert [(a.status_code, a.json()["reason"]) for a in answers] == [
        (503, "health check failed: OSError")
    ] * 2


async def test_stop_closes_the_listener_and_a_second_stop_is_harmless(host: Host) -> None:
    server = WebServer(create_app(host, Access(loopback=True)))
    await server.start("127.0.0.1:0")
    port = server.port
    await server.stop()
    await server.stop()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/healthz")
    with pytest.raises(RuntimeError):
        _ = server.port


async def test_a_taken_port_is_an_os_error_not_an_exit(host: Host) -> None:
    first = WebServer(create_app(host, Access(loopback=True)))
    await first.start("127.0.0.1:0")
    try:
        second = WebServer(create_app(host, Access(loopback=True)))
        with pytest.raises(OSError):
            await second.start(f"127.0.0.1:{first.port}")
    finally:
        await first.stop()


async def test_stop_does_not_wait_for_a_client_that_never_finishes_its_request(host: Host) -> None:
    server = WebServer(create_app(host, Access(loopback=True)))
    await server.start("127.0.0.1:0")
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # head never finished
    await writer.drain()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.stop(), 2)
    writer.close()


async def test_serving_and_stopping_leave_the_daemons_signal_handlers_alone(host: Host) -> None:
    """uvicorn's `serve()` replaces SIGTERM/SIGINT handlers (and raises the signal again on its
    way out); the daemon's graceful stop and reload must stay the daemon's."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = WebServer(create_app(host, Access(loopback=True)))
        await server.start("127.0.0.1:0")
        during = {sig: signal.getsignal(sig) for sig in before}
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(stopped.wait(), 2)  # the daemon's own handler ran
        await server.stop()
        after = {sig: signal.getsignal(sig) for sig in before}
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
    assert during == before and after == before


async def _idle(port: int, n: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(n):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
    return writers


async def test_beyond_the_limit_a_newcomer_takes_the_place_of_the_longest_idle(
    host: Host,
) -> None:
    server = WebServer(create_app(host, Access(loopback=True)), Limits(max_connections=4))
    await server.start("127.0.0.1:0")
    try:
        oldest_reader, oldest = await asyncio.open_connection("127.0.0.1", server.port)
        others = await _idle(server.port, 3)
        await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as client:  # a probe arriving during the flood
            response = await client.get(f"http://127.0.0.1:{server.port}/healthz")
        assert response.status_code == 200
        assert await asyncio.wait_for(oldest_reader.read(), 2) == b""  # evicted: closed
        assert len(server.gate.open) <= 4
        assert server.gate.evicted >= 1
        for writer in [oldest, *others]:
            writer.close()
    finally:
        await server.stop()


async def test_when_every_connection_is_busy_a_newcomer_gets_503_at_once(host: Host) -> None:
    release = asyncio.Event()

    async def slow(probe: Probe) -> Health:
        await release.wait()
        return Health(True, "late")

    host.health = slow  # type: ignore[method-assign]
    server = WebServer(create_app(host, Access(loopback=True)), Limits(max_connections=4))
    await server.start("127.0.0.1:0")
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            url = f"http://127.0.0.1:{server.port}/healthz"
            busy = [asyncio.create_task(client.get(url)) for _ in range(4)]
            await asyncio.sleep(0.2)
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            answer = await asyncio.wait_for(reader.read(), 2)
            writer.close()
            release.set()
            assert all(r.status_code == 200 for r in await asyncio.gather(*busy))
        assert answer.startswith(b"HTTP/1.1 503 ") and b"too many connections" in answer
        assert server.gate.refused == 1
    finally:
        await server.stop()


async def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(
    host: Host,
) -> None:
    limits = Limits(head_timeout=0.3)
    server = WebServer(create_app(host, Access(loopback=True)), limits)
    await server.start("127.0.0.1:0")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        assert server.gate.timed_out == 1 and not server.gate.open
    finally:
        await server.stop()


async def test_a_head_trickled_a_byte_at_a_time_is_cut_at_the_head_timeout(host: Host) -> None:
    limits = Limits(head_timeout=0.5, keep_alive=30)
    server = WebServer(create_app(host, Access(loopback=True)), limits)
    await server.start("127.0.0.1:0")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        closed_at = None
        loop = asyncio.get_running_loop()
        started = loop.time()
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n":
            if reader.at_eof() or writer.is_closing():
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
                data = await asyncio.wait_for(reader.read(1), 0.1)
            except TimeoutError:
                continue
            except ConnectionError:
                data = b""
            if data == b"":
                closed_at = loop.time() - started
                break
        writer.close()
        assert closed_at is not None and closed_at < 1.5
    finally:
        await server.stop()


async def test_keep_alive_serves_several_requests_on_one_connection(
    serve: Serve, client: httpx.AsyncClient
) -> None:
    base = await serve()
    answers = [await client.get(base + "/healthz") for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        ("[::1]:9100", ("::1", 9100)),
        ("localhost:0", ("localhost", 0)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
    ],
)
def test_parse_listen_splits_host_and_port(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize(
    "listen", ["9100", "127.0.0.1", ":9100", "::1:9100", "[::1]:", "host:port", "h:70000"]
)
def test_parse_listen_refuses_malformed_addresses(listen: str) -> None:
    with pytest.raises(ValueError, match="listen address"):
        parse_listen(listen)


@pytest.mark.parametrize(
    ("host_name", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback_recognises_local_only_hosts(host_name: str, loopback: bool) -> None:
    assert is_loopback(host_name) is loopback

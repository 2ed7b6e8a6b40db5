"""The health endpoint: liveness and readiness from one injected check, and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from watcher.core.health import Health, Probe
from watcher.edges.health_http import HealthCheck, HealthServer, is_loopback, parse_listen
from watcher.edges.metrics import Metrics


class Switch:
    """A health check whose answers (one per probe) the test sets."""

    def __init__(self) -> None:
        self.state = {
            Probe.LIVE: Health(True, "last cycle finished 1s ago (limit 90s)"),
            Probe.READY: Health(False, "no successful cycle yet"),
        }
        self.asked: list[Probe] = []

    async def __call__(self, probe: Probe) -> Health:
        self.asked.append(probe)
        return self.state[probe]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def switch() -> Switch:
    return Switch()


@pytest.fixture
async def base_url(metrics: Metrics, switch: Switch) -> AsyncIterator[str]:
    server = HealthServer(metrics, switch)
    await server.start("127.0.0.1:0")
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


async def get(url: str, method: str = "GET") -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.request(method, url)


async def test_healthz_answers_the_liveness_verdict_and_only_asks_for_liveness(
    base_url: str, switch: Switch
) -> None:
    response = await get(base_url + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"live": True, "reason": "last cycle finished 1s ago (limit 90s)"}
    switch.state[Probe.LIVE] = Health(False, "stuck: the last cycle finished 400s ago")
    response = await get(base_url + "/healthz")
    assert response.status_code == 503
    assert response.json()["live"] is False
    assert switch.asked == [Probe.LIVE, Probe.LIVE]


async def test_readyz_is_503_with_the_reason_until_the_check_says_ready(
    base_url: str, switch: Switch
) -> None:
    response = await get(base_url + "/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "reason": "no successful cycle yet"}

    switch.state[Probe.READY] = Health(True, "last successful cycle 5s ago")
    response = await get(base_url + "/readyz?verbose=1")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "reason": "last successful cycle 5s ago"}


async def test_metrics_are_served_in_the_exposition_format(base_url: str, metrics: Metrics) -> None:
    metrics.observe_cycle(True, 2.0, now=1_700_000_000.0)
    response = await get(base_url + "/metrics")
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
        # Anything outside the three routes.
        ("/", "GET", 404),
        ("/metrics/extra", "GET", 404),
        # Only GET and HEAD are served.
        ("/healthz", "POST", 405),
        # HEAD answers the status without a body.
        ("/healthz", "HEAD", 200),
    ],
)
async def test_other_paths_and_methods_get_the_right_status(
    base_url: str, path: str, method: str, status: int
) -> None:
    response = await get(base_url + path, method)
    assert response.status_code == status
    if method == "HEAD":
        assert response.content == b""


async def test_a_malformed_request_gets_400_and_a_closed_connection(base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"NONSENSE\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_a_failing_check_means_neither_live_nor_ready(metrics: Metrics) -> None:
    async def broken(probe: Probe) -> Health:
        raise OSError("disk gone")

    check: HealthCheck = broken
    server = HealthServer(metrics, check)
    await server.start("127.0.0.1:0")
    try:
        answers = [await get(f"http://127.0.0.1:{server.port}{p}") for p in ("/healthz", "/readyz")]
    finally:
        await server.stop()
    assert [(a.status_code, a.json()["reason"]) for a in answers] == [
        (503, "health check failed: OSError")
    ] * 2


async def test_stop_closes_the_listener_and_a_second_stop_is_harmless(metrics: Metrics) -> None:
    server = HealthServer(metrics, Switch())
    await server.start("127.0.0.1:0")
    port = server.port
    await server.stop()
    await server.stop()
    with pytest.raises(httpx.ConnectError):
        await get(f"http://127.0.0.1:{port}/healthz")
    with pytest.raises(RuntimeError):
        _ = server.port


async def test_stop_does_not_wait_for_a_client_that_never_finishes_its_request(
    metrics: Metrics,
) -> None:
    server = HealthServer(metrics, Switch())
    await server.start("127.0.0.1:0")
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # head never finished
    await writer.drain()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.stop(), 2)
    writer.close()


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
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
    ],
)
def test_is_loopback_recognises_local_only_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback

"""The heartbeat edge against a real HTTP receiver on loopback: what each answer comes to."""

from __future__ import annotations

import time

from tests.receivers import WebhookReceiver
from watcher.core.pings import Ping, PingKind, PingMethod
from watcher.edges.heartbeat import HeartbeatPinger, masked_ping_url


def _ping(receiver: WebhookReceiver, method: PingMethod = PingMethod.GET) -> Ping:
    body = "cycle ok" if method is PingMethod.POST else None
    return Ping(PingKind.SUCCESS, f"http://127.0.0.1:{receiver.port}/ping/abc123", method, body)


async def test_a_get_ping_reaches_the_monitor_and_a_2xx_is_success(
    webhook_receiver: WebhookReceiver,
) -> None:
    pinger = HeartbeatPinger()
    try:
        result = await pinger.ping(_ping(webhook_receiver), 5)
    finally:
        await pinger.aclose()
    assert (result.ok, result.status) == (True, 200)
    (request,) = webhook_receiver.requests
    assert (request.method, request.path) == ("GET", "/ping/abc123")
    assert request.headers["User-Agent"] == "gradient-watcher heartbeat"


async def test_a_post_ping_carries_its_summary_as_plain_text(
    webhook_receiver: WebhookReceiver,
) -> None:
    pinger = HeartbeatPinger()
    try:
        await pinger.ping(_ping(webhook_receiver, PingMethod.POST), 5)
    finally:
        await pinger.aclose()
    (request,) = webhook_receiver.requests
    assert (request.method, request.body) == ("POST", b"cycle ok")
    assert request.headers["Content-Type"].startswith("text/plain")


async def test_a_refusing_monitor_is_a_failed_ping_with_its_status(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.answer(404)
    pinger = HeartbeatPinger()
    try:
        result = await pinger.ping(_ping(webhook_receiver), 5)
    finally:
        await pinger.aclose()
    assert (result.ok, result.status, result.error) == (False, 404, "HTTP 404")


async def test_a_monitor_that_trickles_its_answer_is_cut_off_at_the_deadline(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.trickle(every=0.5)  # headers at once, then a byte every 0.5 s
    pinger = HeartbeatPinger()
    started = time.monotonic()
    try:
        result = await pinger.ping(_ping(webhook_receiver), 1.0)
    finally:
        await pinger.aclose()
    assert not result.ok and result.error == "no answer within 1 s"
    assert time.monotonic() - started < 5  # bounded by the deadline, not the answer


async def test_a_monitor_that_is_down_is_a_failed_ping_naming_no_url(
    webhook_receiver: WebhookReceiver,
) -> None:
    ping = _ping(webhook_receiver)
    webhook_receiver.go_down()
    pinger = HeartbeatPinger()
    try:
        result = await pinger.ping(ping, 2)
    finally:
        await pinger.aclose()
    assert not result.ok and result.status is None
    assert result.error is not None and "abc123" not in result.error


def test_the_url_is_shown_without_its_path() -> None:
    assert masked_ping_url("https://hc-ping.com/0a1b-secret/fail") == "https://hc-ping.com/…"

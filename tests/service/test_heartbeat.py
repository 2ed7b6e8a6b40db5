"""The heartbeat sender: off the cycle's path, one ping at a time, each logged and counted."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from structlog.testing import capture_logs

from tests.receivers import WebhookReceiver, wait_until
from watcher.core.pings import HeartbeatPlan
from watcher.edges.metrics import Metrics
from watcher.service.cycle import CycleReport
from watcher.service.heartbeat import HeartbeatSender

OK = CycleReport(cycle_id="c1", ok=True, knowledge_bases=3, active_jobs=1)
FAILED = CycleReport(cycle_id="c2", ok=False, error="HTTP 503 service_unavailable")


def _value(metrics: Metrics, kind: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "gradient_watcher_heartbeats_total", {"kind": kind, "outcome": outcome}
    )
    return value or 0.0


def _sender(receiver: WebhookReceiver, metrics: Metrics, timeout: float = 5) -> HeartbeatSender:
    url = f"http://127.0.0.1:{receiver.port}/hc/check-uuid"
    return HeartbeatSender(HeartbeatPlan(url, timeout=timedelta(seconds=timeout)), metrics)


async def test_a_successful_cycle_pings_the_url_and_a_failed_one_its_fail_url(
    webhook_receiver: WebhookReceiver,
) -> None:
    metrics = Metrics()
    sender = _sender(webhook_receiver, metrics)
    with capture_logs() as logs:
        sender.after_cycle(OK)
        await sender.wait()
        sender.after_cycle(FAILED)
        await sender.wait()
        await sender.close()
    assert [r.path for r in webhook_receiver.requests] == ["/hc/check-uuid", "/hc/check-uuid/fail"]
    assert (_value(metrics, "success", "sent"), _value(metrics, "fail", "sent")) == (1, 1)
    sent = [log for log in logs if log["event"] == "heartbeat_sent"]
    assert [log["target"] for log in sent] == ["http://127.0.0.1/…"] * 2  # never the path


async def test_a_hanging_monitor_never_holds_the_caller_and_the_next_ping_is_skipped(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.hang(30)
    metrics = Metrics()
    sender = _sender(webhook_receiver, metrics, timeout=1)
    started = time.monotonic()
    with capture_logs() as logs:
        sender.after_cycle(OK)  # returns at once: the ping runs on its own task
        assert time.monotonic() - started < 0.5
        await asyncio.to_thread(wait_until, lambda: len(webhook_receiver.requests) == 1)
        sender.after_cycle(OK)  # the first is still out: this one is skipped
        await sender.wait()
        await sender.close()
    assert _value(metrics, "success", "skipped") == 1
    assert _value(metrics, "success", "failed") == 1  # the hanging one, at its deadline
    failed = next(log for log in logs if log["event"] == "heartbeat_failed")
    assert failed["error"] == "no answer within 1 s"
    assert len(webhook_receiver.requests) == 1


async def test_without_a_heartbeat_nothing_is_sent(webhook_receiver: WebhookReceiver) -> None:
    sender = HeartbeatSender(None, Metrics())
    sender.after_cycle(OK)
    await sender.wait()
    await sender.close()
    assert webhook_receiver.requests == []

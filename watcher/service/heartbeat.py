"""Sending the heartbeat after each cycle, off the cycle's path (`[heartbeat]`).

`HeartbeatSender.after_cycle` decides the ping with `watcher.core.pings.ping_for` and starts it
as a task of its own: the daemon's next cycle never waits for a monitor. One ping is out at a
time, each within `heartbeat.timeout`; a ping due while the previous one is still out is
skipped (the next cycle pings again). Every ping is logged (`heartbeat_sent`,
`heartbeat_failed`, `heartbeat_skipped`, the URL masked) and counted
(`gradient_watcher_heartbeats{kind, outcome}`). `watcher once` waits for its one ping
(`wait`), bounded by the same timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from watcher.core.pings import HeartbeatPlan, Ping, PingOutcome, ping_for
from watcher.edges.heartbeat import HeartbeatPinger, masked_ping_url
from watcher.service.cycle import CycleReport

if TYPE_CHECKING:
    from watcher.edges.metrics import Metrics

log = structlog.get_logger(__name__)


def summary(report: CycleReport) -> str:
    """The one line a POST ping carries: what the cycle saw, or why it failed."""
    if report.ok:
        return (
            f"gradient-watcher cycle {report.cycle_id} ok: {report.knowledge_bases} knowledge "
            f"bases, {report.active_jobs} active jobs, {len(report.events)} events"
        )
    return f"gradient-watcher cycle {report.cycle_id} failed: {report.error or 'unknown error'}"


class HeartbeatSender:
    """Pings the monitor of one configuration (a no-op when `plan` is None)."""

    def __init__(
        self,
        plan: HeartbeatPlan | None,
        metrics: Metrics | None = None,
        *,
        ca_bundle: Path | None = None,
        pinger: HeartbeatPinger | None = None,
    ) -> None:
        self.plan, self.metrics = plan, metrics
        self._pinger = pinger or (HeartbeatPinger(ca_bundle=ca_bundle) if plan else None)
        self._inflight: asyncio.Task[None] | None = None

    def after_cycle(self, report: CycleReport) -> None:
        """Start the ping this cycle's outcome calls for; never waits, never raises."""
        if self.plan is None or self._pinger is None:
            return
        ping = ping_for(self.plan, report.ok, summary(report))
        if ping is None:
            return
        if self._inflight is not None and not self._inflight.done():
            self._count(ping, PingOutcome.SKIPPED)
            log.warning("heartbeat_skipped", kind=ping.kind.value, reason="previous ping still out")
            return
        self._inflight = asyncio.ensure_future(self._send(ping))

    async def wait(self) -> None:
        """Wait for the ping that is out (each ends within `heartbeat.timeout`)."""
        if self._inflight is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._inflight)

    async def close(self, grace: float = 2.0) -> None:
        """Give the ping that is out `grace` seconds, then cancel it; close the client."""
        task = self._inflight
        if task is not None and not task.done():
            _, pending = await asyncio.wait({task}, timeout=grace)
            for left in pending:
                left.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await left
        if self._pinger is not None:
            await self._pinger.aclose()

    async def _send(self, ping: Ping) -> None:
        assert self._pinger is not None and self.plan is not None
        timeout = self.plan.timeout.total_seconds()
        try:
            result = await self._pinger.ping(ping, timeout)
        except Exception:  # a bug of ours must not end the daemon: logged, counted
            log.exception("heartbeat_failed", kind=ping.kind.value)
            self._count(ping, PingOutcome.FAILED)
            return
        target = masked_ping_url(ping.url)
        if result.ok:
            self._count(ping, PingOutcome.SENT)
            log.info("heartbeat_sent", kind=ping.kind.value, target=target, status=result.status)
        else:
            self._count(ping, PingOutcome.FAILED)
            log.warning(
                "heartbeat_failed",
                kind=ping.kind.value,
                target=target,
                status=result.status,
                error=result.error,
            )

    def _count(self, ping: Ping, outcome: PingOutcome) -> None:
        if self.metrics is not None:
            self.metrics.count_heartbeat(ping.kind, outcome)

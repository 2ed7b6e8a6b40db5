"""`watcher run`: the daemon. APScheduler drives the cycle; signals stop or reload it.

- One interval job, `max_instances=1`: a slow cycle is never overlapped by the next one.
- A failing cycle is logged and counted; the next one runs.
- SIGTERM/SIGINT: pause the scheduler, let the cycle in flight finish, try what is due in
  the outbox for a bounded time, close the store, exit 0.
- SIGHUP: load the config again; a bad new config is reported and the old one kept.
- systemd: READY=1 after the first cycle, STATUS= after each, WATCHDOG=1 while cycles keep
  finishing (a hung cycle stops the pings and systemd restarts the service).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.config import Config, load_config
from watcher.cycle import CycleReport
from watcher.decide import SettleReason
from watcher.errors import ConfigError, WatcherError
from watcher.http_server import HealthServer, Readiness, readiness
from watcher.pace import PACE_KEY, Pace, PaceReason, next_pace
from watcher.runtime import (
    Runtime,
    open_runtime,
    pace_settings,
    register_config_secrets,
    utcnow,
)
from watcher.sdnotify import SystemdNotifier, watchdog_interval

log = structlog.get_logger(__name__)

STOP_GRACE = 10.0  # seconds for the final delivery attempt when stopping
CYCLE_GRACE = 10.0  # seconds a stop waits for the cycle in flight before cancelling it
PRUNE_EVERY = timedelta(hours=1)
DELIVERY_OUTCOME = {
    SettleReason.DELIVERED: "sent",
    SettleReason.RETRY: "failed",
    SettleReason.PERMANENT_FAILURE: "dead",
    SettleReason.EXPIRED: "dead",
    SettleReason.HELD: "failed",
}


class Daemon:
    """The long-running watcher around one `Runtime`, replaced whole on reload."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        config_path: Path | None,
        env: dict[str, str],
        systemd: SystemdNotifier | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.runtime = runtime
        self.config_path, self.env = config_path, env
        self.systemd, self.clock = systemd, clock
        self.metrics = runtime.metrics
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self.ready = False
        self.pace = Pace(runtime.config.poll.interval, PaceReason.IDLE)
        self.last_success: datetime | None = None
        self.cycle_started: float | None = None
        self._inflight: asyncio.Future[CycleReport] | None = None
        self.http: HealthServer | None = None
        self._requests_before = 0
        self._last_cost = 0
        self._pace_saved = False
        self._pruned_at: datetime | None = None

    @property
    def config(self) -> Config:
        return self.runtime.config

    async def serve(self) -> int:
        """Run until SIGTERM/SIGINT; return the process exit code."""
        self._install_signals()
        await self._start_http()
        self.scheduler.start()
        self.scheduler.add_job(
            self.tick,
            self._trigger(self.pace.interval),
            id="cycle",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        watchdog = asyncio.create_task(self._watchdog())
        log.info("watcher_started", interval=self.pace.interval.total_seconds())
        await self.stopping.wait()
        await self._shutdown()
        watchdog.cancel()
        return 0

    async def tick(self) -> None:
        """One scheduled cycle; any failure is logged and the schedule goes on."""
        if self.stopping.is_set():
            return
        async with self.lock:
            self.cycle_started = time.monotonic()
            started = self.cycle_started
            self._inflight = asyncio.ensure_future(self.runtime.cycle.run())
            try:
                report = await self._inflight
            except asyncio.CancelledError:
                if not self.stopping.is_set():
                    raise
                report = CycleReport(cycle_id="-", ok=False, error="cancelled to stop")
            except Exception:
                log.exception("cycle_failed")
                report = CycleReport(cycle_id="-", ok=False, error="cycle crashed")
            finally:
                self.cycle_started = None
                self._inflight = None
            # The cycle's id stays bound until its last line, `cycle_finished` included.
            with structlog.contextvars.bound_contextvars(cycle_id=report.cycle_id):
                await self._after_cycle(report, time.monotonic() - started)

    async def _after_cycle(self, report: CycleReport, duration: float) -> None:
        now = self.clock()
        self.metrics.observe_cycle(report.ok, duration, now.timestamp())
        self.metrics.set_api_up(report.ok)
        self.metrics.count_events(k.value for k in report.events)
        for route, reason in report.deliveries:
            self.metrics.count_delivery(route, DELIVERY_OUTCOME[reason])
        if report.ok:
            self.last_success = now
            await self.runtime.store.set_last_cycle_at(now)
        await self._prune(now)
        await self._update_store_gauges(now)
        await self._repace(report, now)
        self._notify_systemd(report)
        log.info(
            "cycle_finished",
            ok=report.ok,
            duration_s=round(duration, 3),
            requests=self._last_cost,
            knowledge_bases=report.knowledge_bases,
            active_jobs=report.active_jobs,
            events=len(report.events),
            next_in_s=self.pace.interval.total_seconds(),
            pace=self.pace.reason.value,
        )

    async def _prune(self, now: datetime) -> None:
        """Once an hour (and after start), forget finished history older than `state.retention`.

        Keeps the store, and the time its scans take, flat however long the watcher runs.
        """
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        before = now - self.config.state.retention
        try:
            deleted = await self.runtime.store.prune(before)
        except Exception:
            log.exception("history_prune_failed")
            return
        if deleted:
            log.info("history_pruned", rows=deleted, before=before.isoformat())

    async def _update_store_gauges(self, now: datetime) -> None:
        try:
            snap = await self.runtime.store.snapshot(now, detail=False)
        except Exception:
            log.exception("store_snapshot_failed")
            return
        self.metrics.set_store_gauges(
            snap.jobs_by_state, snap.outbox_by_state, snap.oldest_undelivered_age(now), snap.dead
        )

    async def _repace(self, report: CycleReport, now: datetime) -> None:
        sent = self.runtime.client.requests_sent
        cost, self._requests_before = max(sent - self._requests_before, 0), sent
        self._last_cost = cost
        rate = self.runtime.client.rate_limit
        pace = next_pace(
            pace_settings(self.config),
            active=report.active_jobs > 0,
            requests_last_cycle=cost,
            rate=rate,
            now=now,
        )
        if rate is not None and rate.remaining is not None:
            self.metrics.set_ratelimit_remaining(rate.remaining)
        self.metrics.set_poll_interval(pace.interval.total_seconds())
        if pace != self.pace or not self._pace_saved:
            await self.runtime.store.set_meta(
                PACE_KEY,
                json.dumps(
                    {"interval_s": pace.interval.total_seconds(), "reason": pace.reason.value}
                ),
            )
            self._pace_saved = True
        if pace != self.pace:
            log.info(
                "poll_interval_changed",
                seconds=pace.interval.total_seconds(),
                reason=pace.reason.value,
            )
            self.pace = pace
            if not self.stopping.is_set():
                self.scheduler.reschedule_job("cycle", trigger=self._trigger(pace.interval))

    def _trigger(self, interval: timedelta) -> IntervalTrigger:
        jitter = self.config.poll.jitter.total_seconds()
        return IntervalTrigger(
            seconds=interval.total_seconds(), jitter=jitter or None, timezone=UTC
        )

    def _notify_systemd(self, report: CycleReport) -> None:
        if self.systemd is None:
            return
        if not self.ready:
            self.systemd.ready()
        self.ready = True
        state = "ok" if report.ok else f"failing: {report.error or 'error'}"[:120]
        self.systemd.status(
            f"last cycle {state}; {report.knowledge_bases} KBs, {report.active_jobs} active jobs; "
            f"next in {int(self.pace.interval.total_seconds())}s ({self.pace.reason.value})"
        )

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog while the loop lives and no cycle hangs past its limit."""
        period = watchdog_interval(self.env) if self.systemd else None
        if period is None or self.systemd is None:
            return
        limit = max(self.pace.interval.total_seconds() * 3, 300.0)
        while not self.stopping.is_set():
            started = self.cycle_started
            if started is None or time.monotonic() - started < limit:
                self.systemd.watchdog()
            else:
                log.error("cycle_hung", seconds=round(time.monotonic() - started))
            await asyncio.sleep(period)

    # --- signals ---------------------------------------------------------------------------

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))

    def _request_stop(self, sig: signal.Signals) -> None:
        log.info("stop_requested", signal=sig.name)
        self.stopping.set()

    async def reload(self) -> bool:
        """Load the configuration again; keep the old one when the new one is bad."""
        if self.systemd:
            self.systemd.reloading()
        try:
            config = load_config(self.config_path, self.env)
        except ConfigError as exc:
            log.error("config_reload_rejected", problems=[str(p) for p in exc.problems])
            self._reloaded()
            return False
        register_config_secrets(config)
        async with self.lock:
            old = self.runtime
            try:
                self.runtime = await open_runtime(config, metrics=self.metrics, clock=self.clock)
            except WatcherError as exc:  # valid on paper, unusable in fact (e.g. the state path)
                problems = exc.problems if isinstance(exc, ConfigError) else (exc,)
                log.error("config_reload_rejected", problems=[str(p) for p in problems])
                self._reloaded()
                return False
            await old.close()
            self._requests_before = 0  # the new client counts its requests from zero
        log.info("config_reloaded", source=config.source)
        # Logging and the HTTP listener are set up once, at start: say so rather than pretend.
        unapplied = [
            name for name in ("log", "http") if getattr(config, name) != getattr(old.config, name)
        ]
        if unapplied:
            log.warning("config_reload_needs_restart", sections=unapplied)
        self._reloaded()
        return True

    def _reloaded(self) -> None:
        if self.systemd:
            self.systemd.ready()

    async def _shutdown(self) -> None:
        if self.systemd:
            self.systemd.stopping()
        self.scheduler.pause()
        await self._let_cycle_finish()
        async with self.lock:  # the cycle in flight has finished or been cancelled
            try:
                await asyncio.wait_for(self.runtime.cycle.deliver(), timeout=STOP_GRACE)
            except Exception:
                log.warning("final_delivery_incomplete")
            self.scheduler.shutdown(wait=False)
            if self.http:
                await self.http.stop()
            await self.runtime.close()
        log.info("watcher_stopped")

    async def _let_cycle_finish(self) -> None:
        """Give the cycle in flight `CYCLE_GRACE` to finish, then cancel it.

        A cycle can wait minutes on the request budget; a stop must not. Cancelling loses
        nothing: a cycle's state is written in one transaction or not at all, and a row
        claimed for sending goes back to pending when the store is next opened.
        """
        inflight = self._inflight
        if inflight is None or inflight.done():
            return
        _, pending = await asyncio.wait({inflight}, timeout=CYCLE_GRACE)
        if pending:
            log.warning("cycle_cancelled_to_stop", grace_s=CYCLE_GRACE)
            inflight.cancel()
            await asyncio.wait({inflight})

    # --- health ----------------------------------------------------------------------------

    async def _start_http(self) -> None:
        listen = self.config.http.listen
        if not listen:
            return
        self.http = HealthServer(self.metrics, self._readiness)
        try:
            await self.http.start(listen)
        except OSError as exc:  # a port in use is worth a restart, not a traceback
            await self.runtime.close()
            reason = exc.strerror or str(exc)
            raise WatcherError(f"http.listen = {listen!r}: cannot listen: {reason}") from exc
        log.info("http_listening", listen=listen, port=self.http.port)

    async def _readiness(self) -> Readiness:
        try:
            await self.runtime.store.check_writable()
            store_ok, error = True, None
        except Exception as exc:
            store_ok, error = False, str(exc)
        # The pace may stretch the interval (budget, reserve): readiness follows it.
        interval = max(self.config.poll.interval, self.pace.interval)
        return readiness(self.last_success, self.clock(), interval, store_ok, error)


async def run_daemon(config: Config, config_path: Path | None, env: dict[str, str]) -> int:
    """Open everything, serve until stopped, return the exit code."""
    runtime = await open_runtime(config)
    systemd = SystemdNotifier.from_env(env)
    daemon = Daemon(runtime, config_path=config_path, env=env, systemd=systemd)
    return await daemon.serve()

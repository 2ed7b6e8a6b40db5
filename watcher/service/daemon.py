"""`watcher run`: the daemon. A monotonic loop drives the cycle; signals stop or reload it.

- Polling runs on the event loop's monotonic clock: each cycle starts one interval (the
  pace, plus jitter) after the previous one started, or at once when that one overran its
  slot; a step of the wall clock, back or forward, changes nothing. One cycle at a time; a
  cycle still running when the next would start is logged at debug, once.
- APScheduler 3 keeps what belongs to the wall clock (`watcher.service.calendar`): hourly pruning.
- Upkeep (`watcher.service.upkeep`): after each cycle its metrics, the store's gauges and the
  next pace; the pruning itself.
- Vital signs (`watcher.service.vitals`): the heartbeat, the health verdicts, systemd messages.
- The outside heartbeat (`[heartbeat]`, `watcher.service.heartbeat`): a monitor's URL pinged
  after each finished cycle, off the cycle's path.
- A failing cycle is logged and counted; the next one runs (each cycle has its deadline).
- SIGTERM/SIGINT: let the cycle in flight finish (bounded), try what is due in the outbox for
  a bounded time, close the store, exit 0.
- SIGHUP: load the config again; a bad new config is reported and the old one kept. The open
  store is kept when the state path still names it (it is never opened a second time).
- One daemon per store: until this process holds the store's lease it stands by, names the
  holder (log, STATUS=, /readyz) and takes over when the holder lets go or is gone. Standing
  by, it is live while its lease keeper keeps stepping (the watchdog is fed by those steps),
  and never ready.
- Health is `watcher.core.health`'s one rule, everywhere: `/healthz`, `/readyz`, the STATUS line,
  and the systemd watchdog, which is fed only by finished cycles: each sends WATCHDOG=1 with
  WATCHDOG_USEC= the health limit, so systemd restarts the service exactly when the rule
  says it is stuck. READY=1 after the first cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from watcher.config import Config, Preflight, load_config
from watcher.core.clocks import Elapsed
from watcher.core.errors import (
    ConfigError,
    ConfigProblem,
    StoreError,
    StoreHeld,
    StoreReplaced,
    WatcherError,
)
from watcher.core.health import Health, Probe, health_limit
from watcher.core.pace import Pace
from watcher.edges.hostclock import monotonic_now
from watcher.edges.metrics import Metrics
from watcher.edges.systemd import SystemdNotifier
from watcher.service.accountruns import combine, run_account
from watcher.service.calendar import Calendar
from watcher.service.config_secrets import register_config_secrets
from watcher.service.cycle import CycleReport
from watcher.service.heartbeat import HeartbeatSender
from watcher.service.lease_keeper import LeaseKeeper, Tenure
from watcher.service.quickhealth import file_mark
from watcher.service.runtime import Runtime, open_runtime, utcnow
from watcher.service.upkeep import Upkeep
from watcher.service.vitals import Vitals
from watcher.service.waits import waiting_in

if TYPE_CHECKING:  # the page's stack (starlette, uvicorn, jinja2) loads only with http.listen
    from watcher.edges.web.server import WebServer

log = structlog.get_logger(__name__)

STOP_GRACE = 10.0  # seconds for the final delivery attempt when stopping
CYCLE_GRACE = 10.0  # seconds a stop waits for the cycle in flight before cancelling it
STANDBY_DELIVERY_EVERY = 5.0  # seconds between delivery rounds of a replica standing by
_COMMAND = "watcher run"


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
        monotonic: Callable[[], Elapsed] = monotonic_now,
    ) -> None:
        self.runtime = runtime
        self.config_path, self.env = config_path, env
        self.systemd, self.clock = systemd, clock
        if not isinstance(runtime.metrics, Metrics):  # `NO_METRICS` is for one-shot runs
            raise TypeError("the daemon exports its metrics: open its runtime with `Metrics`")
        self.metrics = runtime.metrics
        self.calendar = Calendar()  # wall-clock work only
        self.vitals = Vitals(monotonic, systemd, env)
        self.config_mark = file_mark(runtime.config.source, env)  # what `health` may trust
        self.lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self.upkeep = Upkeep(runtime, self.metrics)
        self.heartbeat = heartbeat_sender(runtime.config, self.metrics)
        self.cycle_started: float | None = None
        self._inflight: asyncio.Future[CycleReport] | None = None
        self.http: WebServer | None = None

    @property
    def config(self) -> Config:
        return self.runtime.config

    @property
    def pace(self) -> Pace:
        """The poll interval in force, and why (`watcher.service.upkeep` chooses it)."""
        return self.upkeep.pace

    @property
    def limit(self) -> timedelta:
        """The health limit in force (see `watcher.core.health`)."""
        poll = self.config.poll
        interval = max(poll.interval, self.pace.interval)
        return health_limit(interval, poll.cycle_deadline, self.config.delivery.timeout)

    async def serve(self) -> int:
        """Run until SIGTERM/SIGINT; return the process exit code."""
        self._install_signals()
        await self._start_http()
        self.vitals.starting(self.limit)
        if not await self._hold_store():
            await self._shutdown(None)
            return 0
        self.calendar.start(self._prune_now)
        poller = asyncio.create_task(self._poll(), name="watcher-poll")
        log.info("watcher_started", interval=self.pace.interval.total_seconds())
        await self.stopping.wait()
        await self._shutdown(poller)
        return 0

    async def _poll(self) -> None:
        """Cycle after cycle on the event loop's monotonic clock, never on the wall clock."""
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            started = loop.time()
            await self.tick()
            jitter = self.config.poll.jitter.total_seconds()
            due = started + self.pace.interval.total_seconds() + random.uniform(0, jitter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), max(0.0, due - loop.time()))

    async def tick(self) -> None:
        """One cycle; any failure is logged and the schedule goes on."""
        if self.stopping.is_set():
            return
        if not self._holds_any():  # standing by, or the store vanished: no cycle
            await self._deliver_standing_by()  # on a shared store, its deliveries still
            return
        async with self.lock:
            loop = asyncio.get_running_loop()
            self.cycle_started = started = loop.time()
            self._inflight = asyncio.ensure_future(self._run_accounts())
            try:
                report = await self._await_cycle(self._inflight)
            except asyncio.CancelledError:
                if not self.stopping.is_set():
                    raise
                report = CycleReport(cycle_id="-", ok=False, error="cancelled to stop")
            except (StoreReplaced, StoreHeld) as exc:  # the store stopped this process writing
                log.error("cycle_refused_by_store", error=str(exc))
                for keeper in self.runtime.keepers():  # it says why and stops the cycles
                    keeper.wake()
                report = CycleReport(cycle_id="-", ok=False, error=str(exc))
            except Exception:
                log.exception("cycle_failed")
                report = CycleReport(cycle_id="-", ok=False, error="cycle crashed")
            finally:
                self.cycle_started = None
                self._inflight = None
            # The cycle's id stays bound until its last line, `cycle_finished` included.
            with structlog.contextvars.bound_contextvars(cycle_id=report.cycle_id):
                try:
                    await self._after_cycle(report, loop.time() - started)
                except (StoreReplaced, StoreHeld) as exc:  # expected: the lease went elsewhere
                    log.warning("cycle_upkeep_failed", error=str(exc))
                    self.runtime.keeper.wake()
                except Exception:  # a boundary too: upkeep must never end the polling
                    log.exception("cycle_upkeep_failed")

    def _holds_any(self) -> bool:
        """Whether this process holds the lease of at least one account (it then polls)."""
        return any(keeper.held for keeper in self.runtime.keepers())

    async def _run_accounts(self) -> CycleReport:
        """The cycle of each account whose lease this process holds, one after the other
        (`watcher.service.accountruns`); one account's failure never skips the next."""
        several = self.config.several_accounts
        reports = []
        for account in self.runtime.accounts():
            if not account.keeper.held:
                self.metrics.account_lease_held.labels(account=account.name).set(0)
                continue
            report = await run_account(account, several=several)
            self.metrics.observe_account(account.name, report.ok, True, report.events)
            reports.append((account.name, report))
        return combine(reports)

    async def _await_cycle(self, inflight: asyncio.Future[CycleReport]) -> CycleReport:
        """The cycle's report; past its slot (one interval) it is said once, at debug."""
        interval = self.pace.interval.total_seconds()
        done, _ = await asyncio.wait({inflight}, timeout=interval)
        if not done:
            cycle_id = self.runtime.cycle.current_id
            log.debug(
                "cycle_still_running",
                cycle_id=cycle_id,
                interval_s=interval,
                waiting_in=waiting_in(inflight),  # e.g. the store's commit, a route's sends
            )
        return await inflight

    async def _after_cycle(self, report: CycleReport, duration: float) -> None:
        self.heartbeat.after_cycle(report)  # off the cycle's path: never waited for
        now = self.clock()
        await self.upkeep.after_cycle(report, duration, now)
        api_now = self.runtime.client.api_now()
        await self.vitals.beat(
            self.runtime.store, report, now, self.limit, api_now, self.config_mark
        )
        self.vitals.notify(report, self.limit, self.pace)
        log.info(
            "cycle_finished",
            ok=report.ok,
            duration_s=round(duration, 3),
            requests=self.upkeep.last_cost,
            knowledge_bases=report.knowledge_bases,
            active_jobs=report.active_jobs,
            events=len(report.events),
            next_in_s=self.pace.interval.total_seconds(),
            pace=self.pace.reason.value,
            quiet=report.quiet,
            full=report.full.value if report.full is not None else None,
            due=report.due.value if report.due is not None else None,
        )

    async def _prune_now(self) -> None:
        """The calendar's hourly job: prune, when this process holds the store."""
        async with self.lock:
            if self.runtime.keeper.held:  # only the store's poller writes
                await self.upkeep.prune(self.clock())

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
            # The state path is checked here too; the port is the daemon's own (kept anyway).
            config = load_config(self.config_path, self.env, preflight=Preflight.STATE_PATH)
            mark = file_mark(config.source, self.env)
        except ConfigError as exc:
            log.error("config_reload_rejected", problems=[str(p) for p in exc.problems])
            self._reloaded()
            return False
        register_config_secrets(config)
        async with self.lock:
            old = self.runtime
            try:
                # The same state file keeps its open store and lease (opening it a second time
                # would drop SQLite's locks); another file is opened and its lease taken first.
                self.runtime = await open_runtime(
                    config, metrics=self.metrics, clock=self.clock, command=_COMMAND, keep=old
                )
            except WatcherError as exc:  # valid on paper, unusable in fact (e.g. the state path)
                problems = exc.problems if isinstance(exc, ConfigError) else (exc,)
                log.error("config_reload_rejected", problems=[str(p) for p in problems])
                self._reloaded()
                return False
            kept = self.runtime.store is old.store
            await old.close(keep_store=kept, successor=self.runtime)
            self.config_mark = mark
            if config.heartbeat != old.config.heartbeat or config.ca_bundle != old.config.ca_bundle:
                await self.heartbeat.close()
                self.heartbeat = heartbeat_sender(config, self.metrics)
            for keeper in self.runtime.keepers():  # another account's own lease: stepped now
                self._keep_watch(keeper)
                keeper.start()
            self.upkeep.use(self.runtime)
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

    async def _shutdown(self, poller: asyncio.Task[None] | None) -> None:
        if self.systemd:
            self.systemd.stopping()
        self.calendar.pause()  # not started when stopped while standing by
        await self._let_cycle_finish()
        if poller is not None:
            await asyncio.wait({poller}, timeout=CYCLE_GRACE)  # it ends after its report
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        async with self.lock:  # the cycle in flight has finished or been cancelled
            try:
                # a process standing by delivers nothing, but a replica of a shared store does:
                # its rounds in flight end (and are acknowledged) before it goes
                if self._holds_any() or self.runtime.store.shared_claims:
                    await asyncio.wait_for(self._final_delivery(), timeout=STOP_GRACE)
            except TimeoutError:  # what is left is due again at the next start
                log.warning("final_delivery_incomplete", error=f"not done in {STOP_GRACE:g}s")
            except StoreError as exc:
                log.warning("final_delivery_incomplete", error=str(exc))
            finally:
                await self.runtime.cycle.dispatcher.cancel()  # whatever a receiver still holds
                await self.heartbeat.close()
                self.calendar.shutdown()
                if self.http:
                    await self.http.stop()
                if self._holds_any():  # it polled: its heartbeat says it stopped
                    await self.vitals.stopping(self.runtime.store)
                await self.runtime.close()
        log.info("watcher_stopped")

    async def _final_delivery(self) -> None:
        """What is due goes out, and the rounds still sending end (each within its deadline)."""
        await self.runtime.cycle.deliver()
        await self.runtime.cycle.dispatcher.drain()

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

    # --- the store's lease -----------------------------------------------------------------

    async def _hold_store(self) -> bool:
        """Stand by until this process holds the store's lease; False when asked to stop first."""
        holding = []
        for keeper in self.runtime.keepers():  # one per account on PostgreSQL
            self._keep_watch(keeper)
            keeper.start()
            holding.append(asyncio.ensure_future(keeper.holding.wait()))
        stop = asyncio.ensure_future(self.stopping.wait())
        delivering = asyncio.ensure_future(self._deliver_while_standing_by())
        await asyncio.wait({*holding, stop}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (*holding, stop, delivering):
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await delivering
        return self._holds_any() and not self.stopping.is_set()

    async def _deliver_while_standing_by(self) -> None:
        """Every `STANDBY_DELIVERY_EVERY` seconds, deliver while another replica polls."""
        while not self.stopping.is_set():
            await self._deliver_standing_by()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), STANDBY_DELIVERY_EVERY)

    async def _deliver_standing_by(self) -> None:
        """A replica of a shared store (PostgreSQL) that does not poll still delivers: outbox
        claims are exclusive between replicas (`watcher.edges.store.postgres`). On an SQLite
        store a process standing by delivers nothing."""
        if not self.runtime.store.shared_claims or self._holds_any():
            return
        async with self.lock:
            try:
                await self.runtime.cycle.deliver()
            except StoreError as exc:
                log.warning("standby_delivery_failed", error=str(exc))
            await self.upkeep.update_lease_gauges()

    def _keep_watch(self, keeper: LeaseKeeper) -> None:
        keeper.on_change = self._tenure_changed
        keeper.on_step = self._stepped

    def _tenure_changed(self, tenure: Tenure) -> None:
        """Tell systemd: a process standing by is up (READY=1) and says for whom it waits."""
        if self.systemd is None or tenure is Tenure.HOLDING:
            return
        self.vitals.standing_by(self.runtime.keeper.problem or str(tenure))

    def _stepped(self) -> None:
        """A lease step while not holding: the standby's sign of life (cycles are not run)."""
        if not self._holds_any():
            self.vitals.standby_step(self.limit)

    # --- health ----------------------------------------------------------------------------

    async def _start_http(self) -> None:
        listen = self.config.http.listen
        if not listen:
            return
        from watcher.service.page import web_server

        self.http = web_server(self, self.env)  # the page, its API, probes and metrics
        try:
            await self.http.start(listen)
        except OSError as exc:  # the configuration's fault (port in use...): exit 78, no loop
            await self.runtime.close()
            reason = (exc.strerror or str(exc)).lower()
            source = self.config.source_of("http", "listen")
            problem = ConfigProblem("http.listen", f"cannot listen on {listen}: {reason}", source)
            raise ConfigError([problem]) from exc
        log.info("http_listening", listen=listen, port=self.http.port)

    async def health(self, probe: Probe) -> Health:
        """The health rule's verdict now (readiness also proves the store takes a write)."""
        store_error = None
        if probe is Probe.READY:
            try:
                await self.runtime.store.check_writable()
            except StoreError as exc:  # not ready, and the probe says why
                store_error = str(exc)
        keeper = self.runtime.keeper
        started = any(k.tenure is not Tenure.STARTING for k in self.runtime.keepers())
        waiting = not self._holds_any() and started  # not at start
        standby = (keeper.problem or "waiting for the store's lease") if waiting else None
        shared = self.runtime.store.shared_claims
        return self.vitals.judge(probe, self.limit, store_error, standby, delivering=shared)


def heartbeat_sender(config: Config, metrics: Metrics | None) -> HeartbeatSender:
    """The `[heartbeat]` sender of `config` (a no-op one when the heartbeat is off)."""
    return HeartbeatSender(config.heartbeat.plan(), metrics, ca_bundle=config.ca_bundle)


async def run_daemon(config: Config, config_path: Path | None, env: dict[str, str]) -> int:
    """Open everything, serve until stopped, return the exit code."""
    runtime = await open_runtime(config, command=_COMMAND, hold=False)
    systemd = SystemdNotifier.from_env(env)
    daemon = Daemon(runtime, config_path=config_path, env=env, systemd=systemd)
    return await daemon.serve()

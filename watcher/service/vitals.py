"""The daemon's vital signs: the heartbeat of each finished cycle, and what it tells outside.

`Vitals` keeps the heartbeat (stored for `watcher health` too), judges it by the one health
rule of `watcher.core.health` for `/healthz` and `/readyz`, and speaks to systemd: READY=1 after
the first cycle, a STATUS= line from the rule, and WATCHDOG=1 with WATCHDOG_USEC= the health
limit after every finished cycle, never from a timer, so systemd restarts the daemon exactly
when the rule calls it stuck. Readings are of the monotonic clock, with the boot id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from watcher.core.clocks import Elapsed
from watcher.core.errors import StoreError
from watcher.core.health import HEARTBEAT_KEY, Health, Heartbeat, Probe, judge
from watcher.core.pace import Pace
from watcher.core.redact import SECRETS
from watcher.edges.store.sqlite import SqliteStore
from watcher.edges.systemd import SystemdNotifier, watchdog_timeout
from watcher.service.cycle import CycleReport
from watcher.service.quickhealth import MARK_KEY

log = structlog.get_logger(__name__)


class Vitals:
    """The heartbeat of one daemon, its verdicts, and its systemd notifications."""

    def __init__(
        self,
        monotonic: Callable[[], Elapsed],
        systemd: SystemdNotifier | None,
        env: Mapping[str, str],
    ) -> None:
        self.monotonic, self.systemd = monotonic, systemd
        self.started = monotonic()
        self.heartbeat: Heartbeat | None = None
        self.standby_at: Elapsed | None = None  # the last lease check while standing by
        self.store_error: str | None = None
        self.ready_sent = False
        self.config_mark: str | None = None  # the one last stored by `beat`, if `mark_stored`
        self.mark_stored = False
        self._watchdog = systemd is not None and watchdog_timeout(env) is not None

    def starting(self, limit: timedelta) -> None:
        """Tell an enabled watchdog how long the first cycle may take (no ping: nothing ran)."""
        if self.systemd is not None and self._watchdog:
            self.systemd.notify(WATCHDOG_USEC=round(limit.total_seconds() * 1e6))

    async def stopping(self, store: SqliteStore) -> None:
        """A clean stop of a daemon that polled: its last heartbeat says so, and `watcher
        health` from outside says "not running" at once rather than "ok" until the limit and
        "stuck" after it (the next daemon's first cycle clears it). A store that refuses it
        costs only that."""
        if self.heartbeat is None:
            return
        stopped = replace(self.heartbeat, stopped=self.monotonic())
        try:
            await store.set_meta(HEARTBEAT_KEY, stopped.encode())
        except StoreError as exc:
            log.warning("heartbeat_not_recorded", error=str(exc))

    async def beat(
        self,
        store: SqliteStore,
        report: CycleReport,
        now: datetime,
        limit: timedelta,
        api_now: datetime,
        config_mark: str | None = None,
    ) -> None:
        """Record a finished cycle, here and (for `watcher health` and `status`) in the store,
        with the API's clock; a store that cannot take it is what readiness reports next.
        `config_mark` (`watcher.service.quickhealth`) is stored when it changed."""
        at = self.monotonic()
        previous = self.heartbeat or Heartbeat(at, False, limit)
        self.heartbeat = previous.after(report.ok, at, limit, report.error, api_now)
        marked = not self.mark_stored or config_mark != self.config_mark
        try:
            # one transaction (one commit, one round trip to the store's thread) a cycle
            values: dict[str, str | None] = {HEARTBEAT_KEY: self.heartbeat.encode()}
            if marked:  # None: delete
                values[MARK_KEY] = config_mark
            await store.set_metas(values, last_cycle_at=now if report.ok else None)
            if marked:
                self.config_mark, self.mark_stored = config_mark, True
            self.store_error = None
        except StoreError as exc:
            # an expected refusal (the lease lost to another replica, a full disk): its words
            # say it all, a traceback would only make it look like a bug
            log.warning("heartbeat_not_recorded", error=str(exc))
            self.store_error = str(exc)
        except Exception as exc:
            log.exception("heartbeat_not_recorded")
            self.store_error = str(exc)

    def judge(
        self,
        probe: Probe,
        limit: timedelta,
        store_error: str | None,
        standby: str | None = None,
        delivering: bool = False,
    ) -> Health:
        """The health rule's verdict now, with this daemon's limit and start; standing by
        (`standby` says why), the last lease check stands for the last cycle (`delivering`:
        a replica of a shared store, ready while it stands by)."""
        beat = self.heartbeat
        if standby is not None:
            at = self.standby_at
            beat = Heartbeat(at, False, limit) if at is not None else None
        return judge(
            probe,
            beat,
            self.monotonic(),
            started=self.started,
            limit=limit,
            store_error=store_error,
            standby=standby,
            delivering=delivering,
        )

    def standing_by(self, reason: str) -> None:
        """Another process holds the store: READY=1 (this one is up) and STATUS= says why."""
        if self.systemd is None:
            return
        if not self.ready_sent:
            self.systemd.ready()
            self.ready_sent = True
        self.systemd.status(SECRETS.redact(reason)[:200])

    def standby_step(self, limit: timedelta) -> None:
        """A lease check finished while standing by: the standby's sign of life."""
        self.standby_at = self.monotonic()
        if self.systemd is not None and self._watchdog:
            self.systemd.watchdog(limit.total_seconds())

    def notify(self, report: CycleReport, limit: timedelta, pace: Pace) -> None:
        """After a finished cycle: READY=1 the first time, STATUS=, and feed the watchdog."""
        if self.systemd is None:
            return
        if not self.ready_sent:
            self.systemd.ready()
            self.ready_sent = True
        health = self.judge(Probe.READY, limit, self.store_error)
        word = "ready" if health.ok else "not ready"
        # redacted before it is clipped, or a cut secret would no longer match
        reason = SECRETS.redact(health.reason)[:160]
        self.systemd.status(
            f"{word}: {reason}; {report.knowledge_bases} KBs, "
            f"{report.active_jobs} active jobs; "
            f"next in {int(pace.interval.total_seconds())}s ({pace.reason.value})"
        )
        if self._watchdog:
            self.systemd.watchdog(limit.total_seconds())

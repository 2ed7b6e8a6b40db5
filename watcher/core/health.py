"""The one definition of healthy, used by `watcher health`, `/healthz`, `/readyz`, the systemd
watchdog and the systemd STATUS line. Pure.

The rule is the age of the last finished cycle on the host's monotonic clock (which never
steps with the wall clock) against one documented limit:

    limit = poll interval + 2 × poll.cycle_deadline + delivery.timeout

the longest a working daemon takes between two finished cycles: it waits at most one
interval, reads the API for at most one deadline, delivers for at most another (a send on
the wire then finishes within `delivery.timeout`). The interval is the longer of
`poll.interval` and the pace in force (a pace stretched by the request budget stretches it).

- **Live** (`/healthz`, the watchdog, `watcher health --live`): a cycle finished within the
  limit, whatever its outcome. When cycles stop finishing, the process is stuck and a
  restart is the cure. A daemon that has not finished its first cycle yet is live for one
  limit after it started.
- **Ready** (`/readyz`, `watcher health`, STATUS): live, the store is writable, and a
  successful cycle (the API read and the state recorded) finished within the limit: one
  failed cycle is tolerated, an API or store outage is not.
- A daemon **standing by** (another process holds the store's lease) runs no cycles: it is
  live while its lease checks keep coming within the limit, and never ready.

The daemon records a `Heartbeat` with each finished cycle; `watcher health`, a separate
process on the same host, reads it from the store and judges it against its own reading of
the same system-wide clock. A heartbeat of another boot (or of another host sharing the file)
cannot be judged: not live.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from watcher.core.clocks import Elapsed

HEARTBEAT_KEY = "heartbeat"
"""The meta key under which the daemon stores its `Heartbeat` (JSON)."""


class Probe(StrEnum):
    """What is asked: is the process making progress, or can it be trusted right now."""

    LIVE = "live"
    READY = "ready"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What the daemon records each time a cycle finishes (monotonic readings of one boot).

    `finished`: when the last cycle finished; `ok`: whether it read the API and recorded
    what it saw; `last_ok`: when the last successful cycle finished (None: none yet);
    `limit`: the health limit in force; `error`: why the last cycle failed, if it did;
    `api`: the API's clock when it finished, so that another process (`watcher status`) can
    read the API's clock on its own monotonic clock (see `api_now`); `stopped`: when the
    daemon that wrote it stopped cleanly (None while it runs; the next cycle's clears it).
    """

    finished: Elapsed
    ok: bool
    limit: timedelta
    last_ok: Elapsed | None = None
    error: str | None = None
    api: datetime | None = None
    stopped: Elapsed | None = None

    def after(
        self,
        ok: bool,
        at: Elapsed,
        limit: timedelta,
        error: str | None,
        api: datetime | None = None,
    ) -> Heartbeat:
        """The heartbeat once another cycle finished at `at` (the API's clock then: `api`)."""
        last_ok = at if ok else self.last_ok
        return Heartbeat(at, ok, limit, last_ok, None if ok else error, api or self.api)

    def api_now(self, now: Elapsed) -> datetime | None:
        """The API's clock at `now` (monotonic), from the one recorded with this heartbeat;
        None when there is none or the readings cannot be compared (another boot)."""
        since = now.since(self.finished)
        return None if self.api is None or since is None else self.api + since

    def encode(self) -> str:
        return json.dumps(
            {
                "finished": self.finished.encode(),
                "ok": self.ok,
                "limit_s": self.limit.total_seconds(),
                "last_ok": self.last_ok.encode() if self.last_ok else None,
                "error": self.error,
                "api": self.api.isoformat() if self.api else None,
                "stopped": self.stopped.encode() if self.stopped else None,
            }
        )

    @classmethod
    def decode(cls, text: str | None) -> Heartbeat | None:
        """Read a stored heartbeat; None when there is none or it cannot be read."""
        try:
            data = json.loads(text) if text else None
            finished = Elapsed.decode(data["finished"]) if isinstance(data, dict) else None
            if finished is None or not isinstance(data, dict):
                return None
            return cls(
                finished=finished,
                ok=bool(data["ok"]),
                limit=timedelta(seconds=float(data["limit_s"])),
                last_ok=Elapsed.decode(data.get("last_ok")),
                error=data.get("error") if isinstance(data.get("error"), str) else None,
                api=datetime.fromisoformat(data["api"]) if data.get("api") else None,
                stopped=Elapsed.decode(data.get("stopped")),
            )
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True, slots=True)
class Health:
    """The verdict of one probe, and a short reason for people either way."""

    ok: bool
    reason: str


def health_limit(interval: timedelta, deadline: timedelta, send_timeout: timedelta) -> timedelta:
    """The longest a working daemon takes between two finished cycles (see the module)."""
    return interval + 2 * deadline + send_timeout


def judge(
    probe: Probe,
    beat: Heartbeat | None,
    now: Elapsed,
    *,
    started: Elapsed | None = None,
    limit: timedelta | None = None,
    store_error: str | None = None,
    standby: str | None = None,
    delivering: bool = False,
) -> Health:
    """The verdict for `probe` at `now` (monotonic).

    `started` is when the daemon started (it alone knows: a probe from outside passes None);
    `limit` overrides the heartbeat's (the daemon's current one); `store_error` is why the
    store is not writable, None when it is (readiness only); `standby` is why this daemon
    does not poll (another holds the store's lease), and then `beat` is its last lease check;
    `delivering`: such a process still delivers (a replica of a shared store), so it is ready.
    """
    limit = limit if limit is not None else (beat.limit if beat else None)
    if beat is not None and beat.stopped is not None and started is None:  # seen from outside
        when = _age(now.since(beat.stopped))
        return Health(False, f"not running: the watcher stopped cleanly {when}, and no cycle "
                      "has finished since")  # fmt: skip
    live = _liveness(beat, now, started, limit, "lease check" if standby else "cycle")
    if probe is Probe.LIVE or not live.ok:
        return live
    if standby is not None and delivering:  # a replica of a shared store: it delivers
        return Health(True, f"ok: standing by and delivering: {standby}")
    if standby is not None:
        return Health(False, f"standing by: {standby}")
    if store_error is not None:
        return Health(False, f"state store not writable: {store_error}")
    if beat is None or limit is None:
        return Health(False, "no successful cycle yet: the first one is under way")
    if beat.last_ok is None:
        return Health(False, _failing("no successful cycle yet", beat.error))
    age = now.since(beat.last_ok)
    if age is None or age > limit:
        text = f"last successful cycle {_age(age)} (limit {_s(limit)})"
        return Health(False, _failing(text, beat.error))
    return Health(True, f"last successful cycle {_s(age)} ago (limit {_s(limit)})")


def _liveness(
    beat: Heartbeat | None,
    now: Elapsed,
    started: Elapsed | None,
    limit: timedelta | None,
    what: str,
) -> Health:
    if beat is None:
        if started is None or limit is None:
            return Health(False, f"no {what} recorded yet: is the daemon running?")
        since = now.since(started) or timedelta(0)
        if since > limit:
            return Health(False, f"stuck: no {what} finished {_s(since)} after start")
        return Health(True, f"starting: first {what} under way for {_s(since)}")
    assert limit is not None
    age = now.since(beat.finished)
    if age is None:
        return Health(False, f"the last {what} was recorded before this boot (or on another host)")
    if age > limit:
        return Health(False, f"stuck: the last {what} finished {_s(age)} ago (limit {_s(limit)})")
    return Health(True, f"last {what} finished {_s(age)} ago (limit {_s(limit)})")


def _failing(text: str, error: str | None) -> str:
    return f"{text}; the last cycle failed: {error}" if error else text


def _age(age: timedelta | None) -> str:
    return "before this boot" if age is None else f"{_s(age)} ago"


def _s(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"

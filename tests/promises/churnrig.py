"""The store shared as users share it: a reloaded daemon, and one-shot commands beside it.

`run_churn(plan, workdir)` serves a real-time simulated account with jobs starting and ending
on several knowledge bases, runs the real daemon (`watcher run`) against it with a webhook
route, reloads it with SIGHUP (the reload that used to drop SQLite's locks), then runs
`watcher status --json`, `watcher health` and `watcher once` one after another, again and
again, for `plan.seconds`: each opens and closes the store beside the daemon. Every process
runs under the store guard (`tests.storeguard`). Then it checks what users would: the
daemon's `/proc/PID/fd` holds no deleted -wal or -shm, `status` kept seeing the daemon's
cycles (not frozen at the reload), `health` stayed healthy, `once` was refused (exit 75)
rather than polling a second time, every alert arrived exactly once, and after a clean stop
`PRAGMA integrity_check` is ok. The three commands of a round run at the same time.

Used by `tests/promises/test_store_sharing.py` (seconds) and `bench/store_churn.py` (a minute).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.promises.crashrig import (
    WATCHER,
    CrashFigures,
    Incarnations,
    StampedReceiver,
    _compare,
    _drain,
    write_config,
)
from tests.receivers import wait_until
from tests.storeguard import EXIT_CODE as GUARD_EXIT
from tests.storeguard import guard_env
from watcher.simulator import RealClock, Simulator, serve_in_thread
from watcher.simulator.loading import parse_scenario

ONCE_HELD = 75  # `watcher once` beside a daemon: the store is held, nothing was done


@dataclass(frozen=True, slots=True)
class ChurnPlan:
    """How long the commands run beside the daemon, and the jobs meanwhile."""

    seconds: float = 5.0
    min_rounds: int = 2  # rounds run even past `seconds` (a loaded machine starts slowly)
    every: float = 1.0  # a round of status, health and once starts at most this often
    kbs: int = 3
    first_job: float = 3.0
    horizon: float = 8.0  # no job starts after this (seconds after the start)
    drain_timeout: float = 30.0


@dataclass
class ChurnFigures:
    """What one churn run did and found."""

    rounds: int = 0
    runs: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    status_lag_s: float = 0.0  # the worst age of the last cycle that `status` showed
    cycles_seen: set[str] = field(default_factory=set)  # distinct last cycles `status` showed
    deleted_side_files: list[str] = field(default_factory=list)
    integrity: str = ""
    exit_code: int | None = None
    alerts: CrashFigures = field(default_factory=lambda: CrashFigures(seed=0))
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        a = self.alerts
        return (
            not (self.failures or self.deleted_side_files or a.lost or a.unexpected)
            and a.duplicated == 0
            and self.integrity == "ok"
            and self.exit_code == 0
        )


def churn_scenario(plan: ChurnPlan) -> dict[str, Any]:
    """Short jobs back to back on every KB, one outcome of each kind in turn."""
    outcomes = ["completed", "failed", "partial", "no_changes", "error"]
    kbs, timeline, n = [], [], 0
    for index in range(plan.kbs):
        key = f"kb{index}"
        kbs.append({"key": key, "name": f"churn-{key}", "data_sources": [{"key": "a"}]})
        at = plan.first_job + index * 0.7
        while at < plan.horizon:
            job = {"kb": key, "id": f"{key}-{n}", "pending": 1.0, "run": 3.0 + index}
            job["outcome"] = outcomes[n % len(outcomes)]
            timeline.append({"at": round(at, 3), "start_job": job})
            at, n = at + 6.0 + index, n + 1
    return {"name": "churn", "knowledge_bases": kbs, "timeline": timeline}


def run_churn(
    plan: ChurnPlan, workdir: Path, log: Callable[[str], None] = lambda _: None
) -> ChurnFigures:
    """Run the churn in `workdir` and return its figures."""
    started = time.monotonic()
    scenario = parse_scenario(churn_scenario(plan), "churn")
    sim = Simulator(scenario, token=_token(), clock=RealClock())
    receiver = StampedReceiver().start()
    figures = ChurnFigures()
    try:
        with serve_in_thread(sim) as base_url:
            # Watched by uuid, as the crash rig does: its late KB owes missing, then found.
            watched = [sim.kb_uuid(kb.key) for kb in scenario.knowledge_bases]
            daemon = Incarnations(workdir, write_config(workdir, base_url, receiver, watched))
            daemon.env = guard_env(daemon.env)
            daemon.start()
            _wait_for_log(daemon, "cycle_finished")
            assert daemon.process is not None
            daemon.process.send_signal(signal.SIGHUP)
            _wait_for_log(daemon, "config_reloaded")
            log("  reloaded; commands beside the daemon from now on")
            _churn(plan, daemon, figures, log)
            figures.deleted_side_files = deleted_side_files(daemon.process.pid)
            _drain_alerts(plan, sim, receiver, workdir)
            figures.exit_code = daemon.stop()
            figures.integrity = integrity(workdir / "watcher.db")
            _compare(figures.alerts, sim, receiver, kills=[])
            if figures.exit_code == GUARD_EXIT or "STORE GUARD" in daemon.output():
                figures.failures.append("the daemon opened its store outside SQLite")
    finally:
        receiver.stop()
    figures.seconds = time.monotonic() - started
    return figures


def _token() -> str:
    from tests.promises.harness import TOKEN

    return TOKEN


def _wait_for_log(daemon: Incarnations, event: str, timeout: float = 30.0) -> None:
    def logged() -> bool:
        return f'"event": "{event}"' in daemon.output()

    assert wait_until(logged, timeout=timeout), f"no {event} within {timeout:g}s"


def _churn(
    plan: ChurnPlan, daemon: Incarnations, figures: ChurnFigures, log: Callable[[str], None]
) -> None:
    """Rounds of status, health and once (together) until `plan.seconds` have passed and at
    least `plan.min_rounds` rounds ran."""
    commands = ((["status", "--json"], 0), (["health"], 0), (["once"], ONCE_HELD))
    end = time.monotonic() + plan.seconds
    while time.monotonic() < end or figures.rounds < plan.min_rounds:
        round_started = time.monotonic()
        figures.rounds += 1
        running = [(args, expected, _start(daemon, args)) for args, expected in commands]
        for args, expected, process in running:
            out, err = process.communicate(timeout=60)
            figures.runs[args[0]] += 1
            if process.returncode != expected:
                figures.failures.append(
                    f"round {figures.rounds}: {args[0]} exited {process.returncode}, not "
                    f"{expected}: {err.strip()[-300:]}"
                )
            elif args[0] == "status":
                last, lag = _last_cycle(out)
                figures.cycles_seen.add(last)
                figures.status_lag_s = max(figures.status_lag_s, lag)
        if figures.rounds % 10 == 0:
            log(f"  round {figures.rounds}: {dict(figures.runs)}")
        time.sleep(max(0.0, plan.every - (time.monotonic() - round_started)))


def _start(daemon: Incarnations, args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(WATCHER), *args, "--config", str(daemon.config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=daemon.env,
        cwd=daemon.workdir,
    )


def _last_cycle(status_json: str) -> tuple[str, float]:
    """The last successful cycle `status` showed, and its age in seconds now."""
    last = json.loads(status_json).get("last_successful_cycle_at")
    if last is None:
        return "never", float("inf")
    return last, (datetime.now(UTC) - datetime.fromisoformat(last)).total_seconds()


def deleted_side_files(pid: int) -> list[str]:
    """The store files process `pid` holds open although they were deleted (`/proc/PID/fd`)."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith(" (deleted)") and ".db" in target:
            found.append(target)
    return found


def integrity(path: Path) -> str:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))


def _drain_alerts(
    plan: ChurnPlan, sim: Simulator, receiver: StampedReceiver, workdir: Path
) -> None:
    from tests.promises.crashrig import CrashPlan

    crash = CrashPlan(seed=0, kills=0, horizon=plan.horizon, drain_timeout=plan.drain_timeout)
    _drain(crash, sim, receiver, [])  # no kills in a churn run


def figures_text(figures: ChurnFigures) -> str:
    """The figures as a few plain lines."""
    a = figures.alerts
    runs = ", ".join(f"{k} {v}" for k, v in sorted(figures.runs.items()))
    return "\n".join(
        [
            f"rounds beside the daemon: {figures.rounds} ({runs}) in {figures.seconds:.0f}s",
            f"command failures: {len(figures.failures)}",
            f"distinct last cycles shown by status: {len(figures.cycles_seen)}; the oldest was"
            f" {figures.status_lag_s:.1f}s old when shown",
            f"deleted store files held by the daemon: {len(figures.deleted_side_files)}",
            f"integrity_check after the stop: {figures.integrity}; exit code {figures.exit_code}",
            f"alerts: expected {a.expected}, delivered {a.delivered}, duplicated {a.duplicated},"
            f" lost {len(a.lost)}, unexpected {len(a.unexpected)}",
        ]
    )

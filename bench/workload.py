"""Shared pieces of the benchmark: the webhook receiver, process probes, latency matching.

Everything here is stdlib plus the project's simulator; nothing is imported from `tests/`.

- `Receiver`: a small HTTP server on 127.0.0.1 that records every POST with its arrival
  time and the (job uuid, event kind) pairs its alert names. Both pollers post to it: the
  watcher through apprise's `json://` scheme (one alert, or one storm digest listing many),
  the reference poller in the same JSON shape.
- `ProcessProbe`: CPU seconds and peak resident memory of a child process from `/proc`.
- `LogTail`: reads a child's JSON log lines in a thread and keeps the `cycle_finished` ones.
- `match_latencies`: detection latency from the simulator's transition records to arrivals.
"""

from __future__ import annotations

import compileall
import json
import math
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from watcher.simulator import TransitionRecord

TOKEN = "dop_v1_" + "be" * 32  # a recognisable fake token: the simulator accepts only this
WATCHER = Path(sys.executable).parent / "watcher"  # the command of this virtual environment


def byte_compile(tree: Path | None = None) -> None:
    """Byte-compile the `watcher` package (of this environment, or the source `tree` holding
    it), as `pip install` does (the container's `pip install --compile` too).

    Under `PYTHONDONTWRITEBYTECODE=1` (set on these machines) the editable checkout a bench
    runs is otherwise compiled from source again by every process it starts: about 0.12 s of
    CPU more per start (`watcher once` 0.48 s instead of 0.36 s at 120 KBs on 2026-12-03),
    a cost no installed watcher pays. Every bench that times a watcher process calls this
    first."""
    if tree is None:
        import watcher

        package = Path(watcher.__file__).parent
    else:
        package = tree / "watcher"
    compileall.compile_dir(package, quiet=1)


ALL_EVENTS = ("started", "completed", "no_changes", "partial", "failed", "cancelled")

# The watcher's headlines (watcher.core.render) and the reference poller's, by event kind.
HEADLINES = {
    "indexing started": "started",
    "indexing completed": "completed",
    "indexing found no changes": "no_changes",
    "indexing partial (finished with gaps)": "partial",
    "indexing failed": "failed",
    "indexing cancelled": "cancelled",
    "indexing stalled": "stalled",
    "indexing moving again": "recovered",
}
# A simulator moment and the event a poller should raise for it.
MOMENT_EVENT = {
    "created": "started",
    "completed": "completed",
    "no_changes": "no_changes",
    "partial": "partial",
    "failed": "failed",
    "cancelled": "cancelled",
}
_JOB_LINE = re.compile(r"- Job: `([0-9a-f-]{36})`")
# a grouped alert's line: the kind as written in markdown, where `_` is escaped (`no\_changes`)
_GROUP_LINE = re.compile(r" job `([0-9a-f-]{36})`: ([a-z_\\]+)")


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert that arrived: which poller (URL path), when, and what it named."""

    path: str
    wall: float
    events: tuple[tuple[str, str], ...]


def parse_alert(payload: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The (job uuid, event kind) pairs an apprise JSON payload names (single or digest)."""
    title, message = str(payload.get("title", "")), str(payload.get("message", ""))
    grouped = tuple((m[1], m[2].replace("\\", "")) for m in _GROUP_LINE.finditer(message))
    if grouped:
        return grouped
    job = _JOB_LINE.search(message)
    kind = next((k for h, k in HEADLINES.items() if title.endswith(h)), None)
    return ((job[1], kind),) if job and kind else ()


class Receiver:
    """A webhook receiver on 127.0.0.1 (OS-chosen port) that records what arrives."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                arrived = time.time()
                try:
                    events = parse_alert(json.loads(body))
                except (ValueError, AttributeError):
                    events = ()
                with receiver._lock:
                    receiver.alerts.append(Alert(self.path, arrived, events))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        """The plain HTTP URL of `path` on this receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def arrivals(self, path: str) -> dict[tuple[str, str], float]:
        """First arrival time of every (job uuid, kind) alerted on `path`."""
        first: dict[tuple[str, str], float] = {}
        with self._lock:
            for alert in self.alerts:
                if alert.path != path:
                    continue
                for key in alert.events:
                    first.setdefault(key, alert.wall)
        return first


@dataclass(frozen=True, slots=True)
class Latency:
    """Detection latencies (seconds) of the transitions that were due, and how many were missed."""

    seconds: tuple[float, ...]
    missed: int
    extra: int = 0

    @property
    def due(self) -> int:
        return len(self.seconds) + self.missed

    def percentile(self, q: float) -> float:
        """The q-th percentile (nearest rank), counting a missed transition as infinitely late."""
        if not self.due:
            return math.nan
        ranked = sorted(self.seconds) + [math.inf] * self.missed
        return ranked[max(0, math.ceil(q / 100 * len(ranked)) - 1)]


def match_latencies(
    transitions: Iterable[TransitionRecord],
    arrivals: dict[tuple[str, str], float],
    *,
    since: float,
    until: float,
    kinds: Sequence[str] = tuple(MOMENT_EVENT),
) -> Latency:
    """Latency of each transition visible in [since, until] that a poller must alert.

    A `created` moment counts only when the poller alerted `started` for it: a job that
    started and finished between two polls rightly gets only its outcome.
    """
    found: list[float] = []
    missed = 0
    for t in transitions:
        if t.kind not in kinds or t.wall is None or not since <= t.wall <= until:
            continue
        arrived = arrivals.get((t.job_uuid, MOMENT_EVENT[t.kind]))
        if arrived is not None:
            found.append(max(0.0, arrived - t.wall))
        elif t.kind != "created":
            missed += 1
    return Latency(tuple(found), missed)


@dataclass
class ProcessProbe:
    """CPU time and memory of one process, read from /proc (Linux)."""

    pid: int
    ticks: float = field(default_factory=lambda: float(os.sysconf("SC_CLK_TCK")))

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far, threads that ended included, counted in
        clock ticks (/proc/<pid>/stat: 10 ms steps)."""
        text = Path(f"/proc/{self.pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks

    def thread_cpu_seconds(self) -> float:
        """CPU seconds its live threads have run so far, to the nanosecond (the first field
        of /proc/<pid>/task/*/schedstat, summed): for spans shorter than a clock tick, as an
        idle cycle of a small account is. A thread that ended no longer counts, so a span
        across a thread's end reads short (the watcher's threads live as long as it does:
        the store's, the executor's); `cpu_seconds` where schedstat is missing."""
        total = 0
        try:
            tasks = list(Path(f"/proc/{self.pid}/task").iterdir())
            for task in tasks:
                try:
                    total += int((task / "schedstat").read_text().split()[0])
                except (FileNotFoundError, ProcessLookupError):
                    continue  # a thread that ended between the listing and the read
        except FileNotFoundError:
            return self.cpu_seconds()
        return total / 1e9 if total else self.cpu_seconds()

    def memory_kb(self) -> dict[str, int]:
        """VmHWM (peak resident) and VmRSS (current resident), in KiB."""
        found = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                found[key] = int(value.split()[0])
        return found

    def rollup_kb(self) -> dict[str, int]:
        """Resident memory split by backing, in KiB: `Rss`, `Anonymous` (the heap, Python's
        objects) and `Shared_Clean` (mostly shared libraries' and modules' file pages, which
        count in RSS too), from /proc/<pid>/smaps_rollup."""
        found = {}
        for line in Path(f"/proc/{self.pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, value = line.partition(":")
            if key in ("Rss", "Anonymous", "Shared_Clean"):
                found[key] = int(value.split()[0])
        return found


class LogTail:
    """Reads a child's JSON log lines (one event per line) and keeps the cycle reports."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.cycles: list[tuple[float, dict[str, Any]]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            try:
                entry = json.loads(raw)
            except ValueError:
                with self._lock:
                    self.errors.append(raw.decode(errors="replace").rstrip()[:300])
                continue
            if not isinstance(entry, dict):
                continue
            with self._lock:
                if entry.get("event") == "cycle_finished":
                    self.cycles.append((time.time(), entry))
                elif entry.get("level") in ("error", "critical"):
                    self.errors.append(str(entry.get("event")))

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)

    def snapshot(self) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return list(self.cycles)

    def wait_for_cycles(self, n: int, timeout: float) -> float | None:
        """Wait until `n` cycles finished; the wall time the n-th one was seen, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cycles = self.snapshot()
            if len(cycles) >= n:
                return cycles[n - 1][0]
            time.sleep(0.02)
        return None


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM the child, wait for it, SIGKILL it if it will not go; its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return int(process.returncode)


def machine() -> dict[str, str]:
    """Date, CPU, cores, RAM, Python and the versions of the packages that matter."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    packages = []
    for name in ("gradient-watcher", "httpx", "apprise", "pydantic", "apscheduler", "pydo"):
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            packages.append(f"{name} (not installed)")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu,
        "nproc": str(os.cpu_count()),
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load average at start": " ".join(Path("/proc/loadavg").read_text().split(" ", 3)[:3]),
        "packages": ", ".join(packages),
    }


def fmt_seconds(value: float, digits: int = 2) -> str:
    """Seconds for a table cell; a missed transition shows as `missed`."""
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "missed"
    return f"{value:.{digits}f}"


def clean_env() -> dict[str, str]:
    """The environment for a `watcher` child: no WATCHER_/DIGITALOCEAN_ variable of the caller,
    the benchmark's token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN_"))}
    env["DIGITALOCEAN_ACCESS_TOKEN"] = TOKEN
    env["DIGITALOCEAN_TOKEN"] = TOKEN
    return env


def watcher_config(
    path: Path,
    base_url: str,
    webhook: str,
    state: Path,
    *,
    interval: float,
    active_interval: float,
    max_rpm: int,
) -> Path:
    """A watcher config for the benchmark: no jitter, JSON logs, one route with every event."""
    events = ", ".join(f'"{e}"' for e in ALL_EVENTS)
    path.write_text(
        f"""
[api]
base_url = "{base_url}"
max_requests_per_minute = {max_rpm}

[poll]
interval = "{interval:g}s"
active_interval = "{min(active_interval, interval):g}s"
jitter = "0s"

[state]
path = "{state}"

[log]
level = "info"
format = "json"

[[routes]]
name = "bench"
urls = ["{webhook.replace("http://", "json://")}"]
events = [{events}]
"""
    )
    return path

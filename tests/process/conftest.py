"""Harness for service tests: the simulator in a thread, `watcher run` as a real subprocess.

`Service` serves simulators from background threads (so a test can advance a ManualClock
while the daemon polls), writes configuration files into `tmp_path`, starts the venv's
`watcher` console script with a clean environment, collects every line it writes to stdout
and stderr, and kills whatever is still running at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

from tests.receivers import WebhookReceiver
from tests.storeguard import guard_env
from watcher.simulator import ManualClock, Scenario, Simulator, serve_in_thread
from watcher.simulator.loading import parse_scenario

WATCHER = Path(sys.executable).parent / "watcher"
HOST = "127.0.0.1"
TOKEN = "dop_v1_" + "5eca1f00" * 8  # a recognisable fake personal access token
START_TIMEOUT = 20.0
EXIT_TIMEOUT = 30.0
# Everything of the developer's shell that could change what the daemon does.
_SCRUBBED_PREFIXES = ("DIGITALOCEAN_", "WATCHER_", "WATCHDOG_")
_SCRUBBED = ("NOTIFY_SOCKET", "CREDENTIALS_DIRECTORY", "LISTEN_FDS", "LISTEN_PID")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it holds; fail the test saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET `url`; the status and body, 4xx/5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


# --- scenarios and configuration ---------------------------------------------------------


def scenario(
    kbs: Sequence[tuple[str, str]], timeline: Sequence[Mapping[str, Any]] = ()
) -> Scenario:
    """A scenario of knowledge bases `(key, name)` with one data source each, and a timeline."""
    data = {
        "name": "service-test",
        "knowledge_bases": [
            {"key": key, "name": name, "data_sources": [{"key": "src", "items": 20}]}
            for key, name in kbs
        ],
        "timeline": list(timeline),
    }
    return parse_scenario(data, "service-test")


def start_job(at: float, kb: str, outcome: str, run: float = 4) -> dict[str, Any]:
    """A timeline entry starting a job on `kb` that ends with `outcome` after `run` seconds."""
    job = {"kb": kb, "id": f"{kb}-{at:g}", "pending": 0.5, "run": run, "outcome": outcome}
    return {"at": at, "start_job": job}


def manual_simulator(scn: Scenario, token: str = TOKEN) -> Simulator:
    """A simulator whose time moves only when the test advances it, starting at wall time."""
    return Simulator(scn, token=token, clock=ManualClock(datetime.now(UTC).replace(microsecond=0)))


@dataclass(frozen=True, slots=True)
class Route:
    """A `[[routes]]` table."""

    name: str
    urls: tuple[str, ...]
    events: tuple[str, ...] = ("*",)


def _toml(value: object) -> str:
    """A TOML value; JSON strings and arrays of them are valid TOML."""
    return json.dumps(value)


def config_text(
    *,
    base_url: str,
    state: Path,
    routes: Sequence[Route],
    interval: str = "1s",
    listen: str | None = None,
    level: str = "debug",
    fmt: str = "json",
    extra: str = "",
) -> str:
    """A complete configuration: no jitter, a generous request budget, fast retries."""
    lines = [
        "[api]",
        f"base_url = {_toml(base_url)}",
        'timeout = "10s"',
        "max_requests_per_minute = 250",
        "reserve = 0",
        "[poll]",
        f"interval = {_toml(interval)}",
        f"active_interval = {_toml(interval)}",
        'jitter = "0s"',
        "[state]",
        f"path = {_toml(str(state))}",
        "[delivery]",
        'retry_base = "0.2s"',
        'retry_max = "1s"',
        "storm_threshold = 50",
        'timeout = "5s"',
        "[log]",
        f"level = {_toml(level)}",
        f"format = {_toml(fmt)}",
    ]
    if listen is not None:
        lines += ["[http]", f"listen = {_toml(listen)}"]
    for route in routes:
        lines += [
            "[[routes]]",
            f"name = {_toml(route.name)}",
            f"urls = {_toml(list(route.urls))}",
            f"events = {_toml(list(route.events))}",
        ]
    return "\n".join(lines) + "\n" + extra


# --- the daemon as a subprocess ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One line the process wrote, where, when, and its JSON object when it is one."""

    stream: str
    text: str
    at: float
    record: dict[str, Any] | None


def _parse(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class WatcherProcess:
    """A running `watcher` command whose output is collected line by line by two threads."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        self.args = list(args)
        self.proc = subprocess.Popen(
            [str(WATCHER), *args],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._lines: list[Line] = []
        self._lock = threading.Lock()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=("stdout", self.proc.stdout), daemon=True),
            threading.Thread(target=self._read, args=("stderr", self.proc.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, stream: str, pipe: IO[bytes]) -> None:
        for raw in pipe:
            text = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._lock:
                self._lines.append(Line(stream, text, time.monotonic(), _parse(text)))
        pipe.close()

    @property
    def lines(self) -> list[Line]:
        with self._lock:
            return list(self._lines)

    @property
    def output(self) -> str:
        """Everything written so far, stdout and stderr interleaved as read."""
        return "\n".join(line.text for line in self.lines)

    def records(self, event: str | None = None, **fields: object) -> list[dict[str, Any]]:
        """The JSON log records written so far (with this event name and these field values)."""
        found = []
        for line in self.lines:
            rec = line.record
            if rec is None or (event is not None and rec.get("event") != event):
                continue
            if all(rec.get(k) == v for k, v in fields.items()):
                found.append(rec)
        return found

    def wait_for_log(
        self, event: str, timeout: float = START_TIMEOUT, count: int = 1, **fields: object
    ) -> dict[str, Any]:
        """Wait until `count` records of `event` (with these fields) were logged; the last one."""
        deadline = time.monotonic() + timeout
        while len(found := self.records(event, **fields)) < count:
            if self.proc.poll() is not None:
                self._join_readers()
                if len(found := self.records(event, **fields)) >= count:
                    break
                raise AssertionError(
                    f"watcher exited ({self.proc.returncode}) before logging {event!r}:\n"
                    + self.tail()
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event!r} log within {timeout:g}s:\n" + self.tail())
            time.sleep(0.02)
        return found[count - 1]

    def tail(self, n: int = 40) -> str:
        return "\n".join(line.text for line in self.lines[-n:])

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        """Wait for the process to end (failing the test if it does not); its exit code."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"watcher still running {timeout:g}s later:\n" + self.tail()
            ) from None
        self._join_readers()
        return code

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """End the process for good (teardown); a no-op when it already ended."""
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        self._join_readers()

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(5)


class Service:
    """One test's simulators, config files and `watcher` processes, all cleaned up at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.state = tmp_path / "watcher.db"
        self._stack = contextlib.ExitStack()
        self._procs: list[WatcherProcess] = []

    def serve(self, sim: Simulator) -> str:
        """Serve `sim` on a loopback port from a thread until the test ends; its base URL."""
        return self._stack.enter_context(serve_in_thread(sim))

    def receiver(self) -> WebhookReceiver:
        """Another webhook receiver, stopped at the end of the test."""
        receiver = WebhookReceiver().start()
        self._stack.callback(receiver.stop)
        return receiver

    def write_config(self, text: str, name: str = "watcher.toml") -> Path:
        path = self.dir / name
        path.write_text(text, encoding="utf-8")
        return path

    def env(self, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
        """A clean environment: no settings of the developer's shell, the token (if any)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED
        }
        if token is not None:
            env["DIGITALOCEAN_ACCESS_TOKEN"] = token
        env.update(extra)
        return guard_env(env)  # every `watcher` process runs under the store guard

    def start(
        self, *args: str, env: Mapping[str, str] | None = None, config: Path | None = None
    ) -> WatcherProcess:
        """Start `watcher <args> --config <config>` in the background."""
        argv = [*args, "--config", str(config or self.dir / "watcher.toml")]
        proc = WatcherProcess(argv, self.env() if env is None else env, self.dir)
        self._procs.append(proc)
        return proc

    def run_daemon(
        self, env: Mapping[str, str] | None = None, config: Path | None = None
    ) -> WatcherProcess:
        """Start `watcher run` and wait for its first finished cycle."""
        proc = self.start("run", env=env, config=config)
        proc.wait_for_log("cycle_finished")
        return proc

    def cli(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        config: Path | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run `watcher <args> --config <config>` to completion."""
        argv = [str(WATCHER), *args, "--config", str(config or self.dir / "watcher.toml")]
        return subprocess.run(
            argv,
            env=dict(self.env() if env is None else env),
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        for proc in self._procs:
            proc.kill()
        self._stack.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """The harness; every process it started is killed and every server stopped afterwards."""
    harness = Service(tmp_path)
    try:
        yield harness
    finally:
        harness.close()


def metrics_url(proc: WatcherProcess, path: str) -> str:
    """The URL of `path` on the daemon's health server (its port is read from its log)."""
    port = proc.wait_for_log("http_listening")["port"]
    return f"http://{HOST}:{port}{path}"


def alert_titles(receiver: WebhookReceiver, path: str | None = None) -> list[str]:
    """The titles of the json:// alerts `receiver` accepted (on `path`, if given)."""
    return [
        str(r.json["title"])
        for r in list(receiver.requests)
        if r.answered == 200 and (path is None or r.path.split("?")[0] == path)
    ]

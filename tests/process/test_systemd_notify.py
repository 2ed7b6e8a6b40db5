"""`watcher run` speaks systemd's notify protocol to a real `AF_UNIX` datagram socket."""

from __future__ import annotations

import re
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.process.conftest import (
    Route,
    Service,
    config_text,
    manual_simulator,
    scenario,
    wait_for,
)
from watcher.simulator import Simulator

MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


@dataclass(frozen=True, slots=True)
class Datagram:
    """One notify message: its fields, and how many API requests the simulator had seen."""

    fields: dict[str, str]
    api_requests: int


class NotifySocket:
    """A bound `AF_UNIX SOCK_DGRAM` socket read by a thread, like systemd's notify socket."""

    def __init__(self, path: Path, sim: Simulator) -> None:
        self.path = path
        self._sim = sim
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._received: list[Datagram] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                payload = self._sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in payload.decode().splitlines())
            with self._lock:
                self._received.append(Datagram(fields, len(self._sim.requests)))

    @property
    def received(self) -> list[Datagram]:
        with self._lock:
            return list(self._received)

    def having(self, key: str) -> list[Datagram]:
        return [d for d in self.received if key in d.fields]

    def wait(self, predicate: Callable[[list[Datagram]], bool], what: str) -> None:
        wait_for(lambda: predicate(self.received), 15, what)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def short_dir(tmp_path: Path) -> Iterator[Path]:
    """`tmp_path`, or a shorter directory when a socket path under it would be too long."""
    if len(str(tmp_path / "notify.sock")) <= MAX_SOCKET_PATH:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="wn-") as short:
        yield Path(short)


def test_the_daemon_notifies_ready_status_watchdog_reloading_and_stopping(
    service: Service, short_dir: Path
) -> None:
    sim = manual_simulator(scenario([("alpha", "alpha-docs"), ("beta", "beta-docs")]))
    base_url = service.serve(sim)
    receiver = service.receiver()
    routes = [Route("ops", (receiver.url_json(),))]
    config = service.write_config(
        config_text(base_url=base_url, state=service.state, routes=routes)
    )
    notify = NotifySocket(short_dir / "notify.sock", sim)
    try:
        env = service.env(NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="2000000")
        proc = service.start("run", env=env)

        # READY=1 only once the first cycle has read the API, with a summary in STATUS=.
        notify.wait(lambda got: any("READY" in d.fields for d in got), "READY=1")
        ready = notify.having("READY")[0]
        assert ready.fields["READY"] == "1" and ready.api_requests > 0
        notify.wait(lambda got: any("STATUS" in d.fields for d in got), "STATUS=")
        status = notify.having("STATUS")[0].fields["STATUS"]
        # the health rule's words: interval 1 s + 2 x cycle deadline 60 s + delivery 5 s
        assert status.startswith("ready: last successful cycle 0s ago (limit 126s); 2 KBs, ")
        # idle, or the budget's floor when the first cycle also made its hourly reads
        # (prices, schedules): either way the next cycle is due in the interval, 1 s
        assert re.search(r"0 active jobs; next in 1s \((idle|budget)\)$", status), status

        # The watchdog is fed by finished cycles only, each saying how long until the next
        # must have finished (the health limit): systemd then restarts exactly when stuck.
        started = notify.having("WATCHDOG_USEC")[0].fields
        assert started == {"WATCHDOG_USEC": "126000000"}  # at start, before any cycle
        notify.wait(lambda got: len([d for d in got if "WATCHDOG" in d.fields]) >= 3, "pings")
        pings = notify.having("WATCHDOG")
        # Each limit is the pace then + 2 x 60 s + 5 s: 126 s when idle, a little more after
        # a first cycle whose hourly reads (prices, schedules) put the budget's floor above 1 s.
        limits = [int(d.fields["WATCHDOG_USEC"]) for d in pings]
        assert all(d.fields.keys() == {"WATCHDOG", "WATCHDOG_USEC"} for d in pings)
        assert all(126_000_000 <= usec <= 128_000_000 for usec in limits), limits
        assert limits[-1] == 126_000_000, limits
        cycles = proc.records("cycle_finished")
        assert len(pings) <= len(cycles) + 1  # never more pings than finished cycles

        # SIGHUP: RELOADING=1 (with the monotonic clock systemd 253+ asks for), then READY=1.
        before = len(notify.received)
        proc.signal(signal.SIGHUP)
        proc.wait_for_log("config_reloaded")
        notify.wait(lambda got: any("READY" in d.fields for d in got[before:]), "READY after HUP")
        after_hup = [d.fields for d in notify.received[before:] if "WATCHDOG" not in d.fields]
        reloading = next(i for i, f in enumerate(after_hup) if f.get("RELOADING") == "1")
        assert int(after_hup[reloading]["MONOTONIC_USEC"]) > 0
        assert any(f.get("READY") == "1" for f in after_hup[reloading + 1 :])

        # A rejected reload ends with READY=1 too, or systemd would wait for it in vain.
        config.write_text(config.read_text().replace("[poll]\n", "[poll]\nbogus = 1\n"))
        before = len(notify.received)
        proc.signal(signal.SIGHUP)
        proc.wait_for_log("config_reload_rejected")
        notify.wait(lambda got: any("READY" in d.fields for d in got[before:]), "READY after bad")
        assert any("RELOADING" in d.fields for d in notify.received[before:])

        # SIGTERM: STOPPING=1, then a clean exit.
        proc.signal(signal.SIGTERM)
        assert proc.wait_exit() == 0, proc.tail()
        notify.wait(lambda got: any("STOPPING" in d.fields for d in got), "STOPPING=1")
        assert notify.having("STOPPING")[-1].fields == {"STOPPING": "1"}
    finally:
        notify.close()

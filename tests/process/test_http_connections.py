"""1,000 idle connections to the page's port cost a real `watcher run` at most its connection
limit in descriptors: it keeps answering probes, polling, recording and alerting.

The hand-written server before uvicorn kept every connection until its read timeout; 1,000 of
them ran the process out of file descriptors, and the store and the API client with it. The
daemon here runs with a descriptor limit of 256, so a server that held every idle connection
would fail it (`max_connections` raised to 4,096 shows it: the test then fails).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket

from tests.process.conftest import (
    Route,
    Service,
    alert_titles,
    config_text,
    free_port,
    http_get,
    manual_simulator,
    scenario,
    start_job,
    wait_for,
)

IDLE = 1000
FD_LIMIT = 256
MAX_CONNECTIONS = 32


def _descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _raise_own_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def test_a_thousand_idle_connections_hold_no_more_descriptors_than_the_limit(
    service: Service,
) -> None:
    sim = manual_simulator(
        scenario([("alpha", "alpha-docs")], [start_job(5, "alpha", "completed", run=4)])
    )
    base_url = service.serve(sim)
    receiver = service.receiver()
    port = free_port()
    extra = f'[http]\nlisten = "127.0.0.1:{port}"\nmax_connections = {MAX_CONNECTIONS}\n'
    routes = [Route("ops", (receiver.url_json("/ops"),))]
    service.write_config(
        config_text(base_url=base_url, state=service.state, routes=routes, extra=extra)
    )
    proc = service.run_daemon()
    resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    before = _descriptors(proc.pid)
    _raise_own_limit(IDLE + 256)

    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        # During the flood: probes answered, descriptors bounded, the job alerted.
        status, body = http_get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200, body
        sim.advance(6)  # the job starts...
        wait_for(lambda: len(alert_titles(receiver, "/ops")) >= 1, 30, "the started alert")
        sim.advance(6)  # ...and completes
        wait_for(
            lambda: any("completed" in t for t in alert_titles(receiver, "/ops")),
            30,
            "the completed alert, delivered during the flood",
        )
        during = _descriptors(proc.pid)
        assert during <= before + MAX_CONNECTIONS + 8, (before, during)
        status, _ = http_get(f"http://127.0.0.1:{port}/api/v1/knowledge_bases")
        assert status == 200
    finally:
        for sock in idle:
            with contextlib.suppress(OSError):
                sock.close()

    assert not [line for line in proc.lines if "Too many open files" in line.text], proc.tail()
    assert not proc.records("cycle_failed"), proc.tail()
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0, proc.tail()


def test_a_page_token_file_that_cannot_serve_stops_run_with_78_naming_the_key(
    service: Service,
) -> None:
    short = service.dir / "page-token"
    short.write_text("too-short\n")
    extra = f'[http]\nlisten = "127.0.0.1:0"\nauth_token_file = "{short}"\n'
    service.write_config(
        config_text(base_url="http://127.0.0.1:9", state=service.state, routes=[], extra=extra)
    )
    run = service.cli("run")
    check = service.cli("check-config")
    assert run.returncode == 78 and check.returncode == 2, (run.stderr, check.stderr)
    for result in (run, check):
        assert "http.auth_token_file: the token in" in result.stderr
        assert "shorter than 16 characters" in result.stderr
        assert "too-short" not in result.stderr and "Traceback" not in result.stderr

"""`watcher run` and `watcher once` ping the `[heartbeat]` monitor: after each successful
cycle, its failure URL after a failed one; and the pings stop when the process is killed,
which is the point of a dead man's switch."""

from __future__ import annotations

import os
import signal
import time

from tests.process.conftest import (
    Route,
    Service,
    config_text,
    manual_simulator,
    scenario,
    wait_for,
)
from tests.receivers import WebhookReceiver
from watcher.simulator import Fault, FaultKind

CHECK = "/hc/4f1c2a9e-7b3d-4e5f-9a8b-0c1d2e3f4a5b"


def _pings(monitor: WebhookReceiver, path: str = CHECK) -> int:
    return sum(1 for r in list(monitor.requests) if r.path == path and r.method == "GET")


def _config(service: Service, base_url: str, monitor: WebhookReceiver, alerts: str) -> None:
    extra = f'[heartbeat]\nurl = "http://127.0.0.1:{monitor.port}{CHECK}"\ntimeout = "2s"\n'
    routes = [Route("ops", (alerts,))]
    service.write_config(
        config_text(base_url=base_url, state=service.state, routes=routes, extra=extra)
    )


def test_the_daemon_pings_each_cycle_says_fail_when_the_api_fails_and_is_silent_once_killed(
    service: Service,
) -> None:
    sim = manual_simulator(scenario([("alpha", "alpha-docs")]))
    base_url = service.serve(sim)
    monitor, alerts = service.receiver(), service.receiver()
    _config(service, base_url, monitor, alerts.url_json("/alerts"))
    proc = service.run_daemon()

    wait_for(lambda: _pings(monitor) >= 3, 20, "three pings, one per 1 s cycle")

    # The API fails every request for a while: the failed cycles ping CHECK/fail.
    sim.inject(Fault(FaultKind.SERVER_ERROR, count=None, status=503), for_seconds=3600)
    wait_for(lambda: _pings(monitor, CHECK + "/fail") >= 1, 30, "a ping to the failure URL")
    sim.clear_faults()
    before = _pings(monitor)
    wait_for(lambda: _pings(monitor) > before, 20, "success pings again once the API answers")

    # kill -9: no goodbye, no final ping; the monitor hears nothing more.
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait_exit()
    heard = len(monitor.requests)
    time.sleep(3.5)  # three and a half poll intervals
    assert len(monitor.requests) == heard

    sent = proc.records("heartbeat_sent")
    assert sent and {r["target"] for r in sent} == {"http://127.0.0.1/…"}
    assert CHECK.rsplit("/", 1)[1] not in proc.output  # the check's uuid is never logged


def test_watcher_once_pings_once_and_a_refusing_monitor_is_logged_not_fatal(
    service: Service,
) -> None:
    sim = manual_simulator(scenario([("alpha", "alpha-docs")]))
    base_url = service.serve(sim)
    monitor, alerts = service.receiver(), service.receiver()
    _config(service, base_url, monitor, alerts.url_json("/alerts"))

    assert service.cli("once").returncode == 0
    assert _pings(monitor) == 1

    monitor.answer(500)
    once = service.cli("once")
    assert once.returncode == 0, once.stderr  # the cycle ran: the monitor's answer is its own
    assert '"heartbeat_failed"' in once.stdout + once.stderr
    assert "HTTP 500" in once.stdout + once.stderr

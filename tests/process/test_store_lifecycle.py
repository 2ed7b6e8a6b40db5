"""The store under real processes: deleted under the daemon, truncated to nothing, shared by
two daemons. Every process runs under the store guard (`tests.storeguard`)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from tests.process.conftest import (
    Route,
    Service,
    WatcherProcess,
    alert_titles,
    config_text,
    http_get,
    manual_simulator,
    metrics_url,
    scenario,
    start_job,
    wait_for,
)
from tests.receivers import WebhookReceiver
from watcher.simulator import Simulator

KBS = [("alpha", "alpha-docs"), ("beta", "beta-docs")]
ONCE_HELD = 75


def _setup(service: Service, jobs: list[dict[str, object]]) -> tuple[Simulator, WebhookReceiver]:
    sim = manual_simulator(scenario(KBS, jobs))
    base_url = service.serve(sim)
    receiver = service.receiver()
    routes = [Route("ops", (receiver.url_json("/ops"),))]
    text = config_text(base_url=base_url, state=service.state, routes=routes, listen="127.0.0.1:0")
    service.write_config(text)
    return sim, receiver


def _titles(receiver: WebhookReceiver) -> list[str]:
    return sorted(t.split(" ", 1)[1] for t in alert_titles(receiver))


def _integrity(path: Path) -> str:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def _cycles(proc: WatcherProcess) -> int:
    return len(proc.records("cycle_finished"))


ALL = [
    "alpha-docs: indexing completed",
    "alpha-docs: indexing started",
    "beta-docs: indexing failed",
    "beta-docs: indexing started",
]


def test_a_store_deleted_under_the_daemon_stops_its_writes_says_why_and_loses_nothing(
    service: Service,
) -> None:
    sim, receiver = _setup(
        service, [start_job(5, "alpha", "completed"), start_job(5, "beta", "failed")]
    )
    proc = service.run_daemon()
    receiver.go_down()  # every alert of the jobs waits in the outbox
    sim.advance(6)
    proc.wait_for_log("job_started", count=2)
    sim.advance(15)
    proc.wait_for_log("job_failed")
    proc.wait_for_log("cycle_finished", count=_cycles(proc) + 1)

    service.state.unlink()
    replaced = proc.wait_for_log("store_replaced")
    assert "was deleted or moved away" in replaced["error"], replaced
    assert "stopped writing" in replaced["error"]
    code, body = http_get(metrics_url(proc, "/readyz"))
    assert code == 503 and "was deleted or moved away" in body, body
    before = _cycles(proc)
    time.sleep(2.5)  # two and a half poll intervals: no cycle, no new file
    assert _cycles(proc) == before
    assert not service.state.exists()
    [rescued] = [p for p in service.dir.iterdir() if ".rescued-" in p.name]
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0, proc.tail()

    # A restart makes no new store silently: it points at what was saved.
    status = service.cli("status")
    assert status.returncode == 1 and f"but {rescued} is the copy" in status.stdout
    refused = service.cli("once")
    assert refused.returncode == 1
    assert f"{rescued} does: a watcher saved it" in refused.stderr, refused.stderr
    assert not service.state.exists()

    # Moved back as told, the saved store goes on: every owed alert arrives, once.
    os.replace(rescued, service.state)
    receiver.come_up()
    again = service.cli("once")
    assert again.returncode == 0, again.stderr
    assert _titles(receiver) == ALL
    assert _integrity(service.state) == "ok"


def test_a_store_truncated_to_nothing_is_refused_by_every_command_and_left_as_it_is(
    service: Service,
) -> None:
    """Eleven undelivered alerts were in it: an empty file is damage, not a new store."""
    _setup(service, [])
    service.state.touch()
    for command in ("once", "status", "health"):
        done = service.cli(command)
        assert done.returncode == 1, (command, done.stderr)
        assert "is not a usable watcher state store (it is empty (0 bytes)" in done.stderr
        assert f"mv {service.state} {service.state}.corrupt" in done.stderr, command
    proc = service.start("run")
    assert proc.wait_exit() == 1
    assert "it is empty (0 bytes)" in proc.output
    assert service.state.stat().st_size == 0
    assert sorted(p.name for p in service.dir.iterdir()) == ["watcher.db", "watcher.toml"]


def test_a_second_daemon_stands_by_naming_the_first_and_takes_over_when_it_goes(
    service: Service,
) -> None:
    """Deleting the store's side files changes nothing; a clean stop hands over at once and a
    kill -9 as soon as the dead process is seen gone; no alert is sent twice."""
    sim, receiver = _setup(
        service,
        [
            start_job(5, "alpha", "completed"),
            start_job(40, "beta", "failed"),
            start_job(80, "alpha", "partial"),
        ],
    )
    first = service.run_daemon()
    second = service.start("run")
    standing = second.wait_for_log("store_standing_by")
    assert f"pid {first.pid} on" in standing["holder"] and standing["reason"] == "held"
    code, body = http_get(metrics_url(second, "/readyz"))
    assert code == 503 and f"watcher run (pid {first.pid}" in body, body
    once = service.cli("once")
    assert once.returncode == ONCE_HELD
    assert f"is held by watcher run (pid {first.pid}" in once.stderr, once.stderr

    for suffix in ("-wal", "-shm"):
        os.unlink(f"{service.state}{suffix}")
    sim.advance(6)  # the first job starts...
    first.wait_for_log("job_started")
    sim.advance(15)  # ...and ends
    first.wait_for_log("job_completed")
    first.wait_for_log("store_side_file_replaced")
    time.sleep(3)  # a standby looks every 2 s: it must keep standing by
    assert second.records("store_lease_acquired") == []
    assert _cycles(second) == 0

    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0
    taken = second.wait_for_log("store_lease_acquired")
    assert taken["reason"] == "released" and taken["epoch"] == 2
    sim.advance(20)  # beta's job starts...
    second.wait_for_log("job_started")
    sim.advance(15)  # ...and ends
    second.wait_for_log("job_failed")
    # The kill comes after that cycle marked its alerts sent: a kill between a send and its
    # acknowledgement may repeat an alert, and this test is not about that window.
    second.wait_for_log("cycle_finished", count=_cycles(second) + 1)

    second.proc.kill()  # kill -9: its lease stays in the row, its process is gone
    second.proc.wait(10)
    third = service.start("run")
    taken = third.wait_for_log("store_lease_acquired")
    assert taken["reason"] == "holder_gone" and taken["epoch"] == 3
    sim.advance(25)  # alpha's second job starts...
    third.wait_for_log("job_started")
    sim.advance(15)  # ...and ends
    third.wait_for_log("job_partial")
    wait_for(lambda: len(alert_titles(receiver)) >= 6, 20, "six alerts")
    fourth = service.start("run")  # stopped while standing by: a clean exit, nothing done
    fourth.wait_for_log("store_standing_by")
    fourth.signal(signal.SIGTERM)
    assert fourth.wait_exit() == 0, fourth.tail()
    assert fourth.records("watcher_stopped") and _cycles(fourth) == 0
    third.signal(signal.SIGTERM)
    assert third.wait_exit() == 0
    assert _titles(receiver) == sorted(
        [*ALL, "alpha-docs: indexing started", "alpha-docs: indexing partial (finished with gaps)"]
    )
    assert _integrity(service.state) == "ok"
    status = json.loads(service.cli("status", "--json").stdout)
    assert status["lease"] == {"epoch": 3, "holder": None, "since": None}

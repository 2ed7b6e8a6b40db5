"""Two `watcher run` replicas on one PostgreSQL, as an operator sees them: `status` lists both
and the lease epoch, `health` is healthy where one stands by, the password shows nowhere, and
a SIGTERM hands the lease over at once."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.harness import TOKEN
from tests.promises.crashrig import (
    WATCHER,
    CrashPlan,
    StampedReceiver,
    crash_scenario,
    write_config,
)
from tests.promises.replicarig import ChaosPlan, LeaseWatch, Replicas, config_text
from tests.receivers import wait_until
from tests.stores import Engine, pg_available
from watcher.simulator import RealClock, Simulator, serve_in_thread
from watcher.simulator.loading import parse_scenario

pytestmark = pytest.mark.skipif(pg_available() is not None, reason=str(pg_available()))
PASSWORD = "pw-6b1e-never-shown"


def watcher(replicas: Replicas, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WATCHER), *args, "--config", str(replicas.config)],
        capture_output=True,
        text=True,
        env=replicas.env,
        timeout=60,
        check=False,
    )


def test_two_replicas_show_in_status_are_healthy_and_hand_over_on_sigterm(tmp_path: Path) -> None:
    scenario = parse_scenario(crash_scenario(CrashPlan(seed=7, kills=0, kbs=2)), "replicas")
    sim = Simulator(scenario, token=TOKEN, clock=RealClock(1.0))
    receiver = StampedReceiver().start()
    place = Engine("postgresql", tmp_path)
    url = place.url.replace("postgres@", f"postgres:{PASSWORD}@")  # trust: never checked
    try:
        with serve_in_thread(sim) as base_url:
            base = write_config(tmp_path, base_url, receiver).read_text("utf-8")
            config = tmp_path / "replica.toml"
            config.write_text(config_text(base, url, ChaosPlan(seed=7, lease=5.0)), "utf-8")
            replicas = Replicas(tmp_path, config, 2)
            replicas.start(0)
            watch = LeaseWatch(place.url)
            assert watch.next_epoch(0, 30) is not None
            replicas.start(1)
            assert wait_until(lambda: len(watch.replicas_seen()) == 2, timeout=30)
            status = watcher(replicas, "status", "--json")
            health = watcher(replicas, "health")
            text = watcher(replicas, "status")
            epoch, holder = watch.now()
            poller = 0 if holder == replicas.pid(0) else 1
            replicas.signal(poller, signal.SIGTERM)
            came = watch.next_epoch(epoch, 30)
            process = replicas.procs[poller]
            assert process is not None
            first = process.wait(timeout=30)
            replicas.procs[poller] = None
            codes = [first, *replicas.stop_all()]
            watch.conn.close()
    finally:
        receiver.stop()
        place.drop()
    data = json.loads(status.stdout)
    assert sorted(r["epoch"] is None for r in data["replicas"]) == [False, True]
    assert [lease["epoch"] for lease in data["leases"]] == [epoch]
    assert health.returncode == 0, health.stdout + health.stderr
    assert "Replicas: 2 on this store" in text.stdout
    assert f"(epoch {epoch}), delivers" in text.stdout
    # handed over at once: the stopping poller released the lease (its successor took it for
    # that reason), it did not leave it to expire (the lease's 5 s; no wall-clock bound here)
    assert came is not None, "no replica took the lease over"
    records = [json.loads(line) for line in replicas.logs().splitlines() if line.startswith("{")]
    taken = [r for r in records if r.get("event") == "store_lease_acquired"]
    assert [r["reason"] for r in taken if r["epoch"] > epoch] == ["released"], taken
    assert codes == [0, 0]
    everything = status.stdout + text.stdout + health.stdout + replicas.logs()
    assert PASSWORD not in everything

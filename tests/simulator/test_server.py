"""Serving the simulator: in the test's loop, in a thread, standalone; real-time clocks."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.simulator import AUTH, START, manual
from watcher.simulator import (
    ManualClock,
    RealClock,
    Simulator,
    load_scenario,
    serve,
    serve_in_thread,
)

KBS = "/v2/gen-ai/knowledge_bases"
REPO = Path(__file__).resolve().parents[2]


async def test_serve_listens_on_loopback_and_leaves_no_task_behind() -> None:
    sim = manual(load_scenario("quiet"))
    before = asyncio.all_tasks()
    async with serve(sim) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
            assert (await http.get(KBS)).status_code == 200
    assert asyncio.all_tasks() == before
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"{base_url}{KBS}")


def test_serve_in_thread_answers_blocking_clients_and_joins_its_thread() -> None:
    sim = manual(load_scenario("demo"))
    with serve_in_thread(sim) as base_url:
        sim.advance(20)
        response = httpx.get(f"{base_url}/v2/gen-ai/indexing_jobs", headers=AUTH)
        assert response.status_code == 200
    assert not [t for t in threading.enumerate() if t.name == "watcher-simulator"]
    assert [r.status for r in sim.requests] == [200]


def test_two_simulators_serve_side_by_side_on_their_own_ports() -> None:
    first, second = manual(load_scenario("quiet")), manual(load_scenario("demo"))
    with serve_in_thread(first) as one, serve_in_thread(second) as two:
        assert one != two
        totals = [
            httpx.get(f"{url}{KBS}", headers=AUTH).json()["meta"]["total"] for url in (one, two)
        ]
    assert totals == [4, 7]


def test_real_clock_with_a_speed_factor_runs_lifecycles_in_real_time() -> None:
    sim = Simulator(load_scenario("demo"), clock=RealClock(speed=5000, start=START))
    time.sleep(0.02)  # at least 100 simulated seconds
    uuid = sim.job_uuid("docs-refresh")
    finished = sim.read(lambda world, now: world.job(uuid, now))
    assert finished["status"] == "INDEX_JOB_STATUS_COMPLETED"
    transitions = sim.transitions()
    assert all(t.wall is not None and t.wall <= time.time() for t in transitions)


def test_advance_refuses_a_real_clock() -> None:
    sim = Simulator(load_scenario("quiet"), clock=RealClock())
    with pytest.raises(TypeError, match="ManualClock"):
        sim.advance(1)


def test_manual_clock_refuses_to_go_back() -> None:
    with pytest.raises(ValueError, match="forward"):
        ManualClock(START).advance(-1)


def test_watcher_simulate_gives_a_token_lacking_a_scope_that_writes_answer_403() -> None:
    command = ["watcher", "simulate", "--port", "0", "--scenario", "quiet", "--token", "tok-1"]
    command[0] = str(Path(sys.executable).parent / "watcher")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [*command, "--scoped-token", "ro-1=genai:read"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        base_url = lines[1].split("base URL:")[1].strip()
        assert "ro-1 (only genai:read)" in lines[3]
        ro = {"Authorization": "Bearer ro-1"}
        assert httpx.get(f"{base_url}{KBS}", headers=ro).status_code == 200
        job = f"{base_url}/v2/gen-ai/indexing_jobs/00000000-0000-0000-0000-000000000000/cancel"
        assert httpx.put(job, headers=ro).status_code == 403
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


def test_run_standalone_serves_until_interrupted() -> None:
    code = "from watcher.simulator import run_standalone; run_standalone(0, 'quiet', 'tok-1', 2.0)"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        base_url = lines[1].split("base URL:")[1].strip()
        assert "tok-1" in lines[2]
        response = httpx.get(f"{base_url}{KBS}", headers={"Authorization": "Bearer tok-1"})
        assert response.json()["meta"]["total"] == 4
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


def test_watcher_simulate_on_a_busy_port_says_so_in_one_line_without_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(Path(sys.executable).parent / "watcher"), "simulate", "--port", str(port)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2
    said = f"watcher simulate: --port {port}: could not listen on 127.0.0.1:{port}"
    assert said in done.stderr
    for noise in ("Traceback", "never retrieved", "exc_type", "SystemExit"):
        assert noise not in done.stderr + done.stdout

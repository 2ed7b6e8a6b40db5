"""Helpers for the simulator tests: a fixed start, small scenarios built in code, a client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from watcher.simulator import ManualClock, Scenario, Simulator
from watcher.simulator.scenario import DataSourceSpec, Event, JobSpec, KbSpec, StartJob

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOKEN = "sim-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DO_BASE = "https://api.digitalocean.com"


def kb(key: str = "kb", items: tuple[int, ...] = (100,)) -> KbSpec:
    """A knowledge base with one data source per entry of `items`."""
    sources = tuple(DataSourceSpec(f"ds{i}", n) for i, n in enumerate(items))
    return KbSpec(key, f"{key}-name", sources)


def start(at: float, job_id: str, kb_key: str = "kb", **plan: Any) -> Event:
    """A timeline event starting job `job_id` on `kb_key` at `at` seconds."""
    return Event(at, StartJob(JobSpec(kb=kb_key, id=job_id, **plan)))


def scenario(*events: Event, kbs: tuple[KbSpec, ...] = (kb(),)) -> Scenario:
    return Scenario("test", kbs, events)


def manual(scn: Scenario, **kwargs: Any) -> Simulator:
    """A simulator on a ManualClock starting at START."""
    return Simulator(scn, token=TOKEN, clock=ManualClock(START), **kwargs)


def job(sim: Simulator, job_id: str) -> dict[str, Any]:
    """The wire object of job `job_id` at the simulator's current time."""
    uuid = sim.job_uuid(job_id)
    found: dict[str, Any] = sim.read(lambda world, now: world.job(uuid, now))
    return found


def client(sim: Simulator, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """An HTTP client that talks to the simulator in process (no socket)."""
    transport = httpx.ASGITransport(app=sim.app)
    return httpx.AsyncClient(transport=transport, base_url=DO_BASE, headers=AUTH | (headers or {}))

"""The simulated API keeps its own clock: an offset, whole-second timestamps, a `Date` header."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests.simulator import AUTH, START, client, manual, scenario, start
from watcher.simulator import load_scenario, serve

KBS = "/v2/gen-ai/knowledge_bases"
JOBS = "/v2/gen-ai/indexing_jobs"


@pytest.mark.parametrize("offset", [0.0, 90.0, -90.0, 600.0, -600.0])
async def test_every_answer_carries_a_date_header_on_the_apis_own_clock(offset: float) -> None:
    sim = manual(load_scenario("quiet"), api_clock_offset=offset)
    sim.advance(7.6)
    async with client(sim) as http:
        ok = await http.get(KBS)
        refused = await http.get(KBS, headers={"Authorization": "Bearer wrong"})
    expected = (START + timedelta(seconds=offset + 7.6)).replace(microsecond=0)
    for answer in (ok, refused):
        assert parsedate_to_datetime(answer.headers["date"]) == expected
    assert refused.status_code == 401


@pytest.mark.parametrize("offset", [90.0, -600.0])
async def test_job_timestamps_are_whole_seconds_on_the_apis_clock(offset: float) -> None:
    sim = manual(scenario(start(2.4, "j", pending=1, run=30)), api_clock_offset=offset)
    sim.advance(3.0)
    async with client(sim) as http:
        job = (await http.get(JOBS)).json()["jobs"][0]
    created = datetime.fromisoformat(job["created_at"])
    assert created == (START + timedelta(seconds=offset + 2.4)).replace(microsecond=0)
    assert job["created_at"].endswith("Z") and "." not in job["created_at"]
    # the lifecycle itself is unchanged: the job is still pending 0.6 s after its creation
    assert job["phase"] == "BATCH_JOB_PHASE_PENDING"


async def test_over_a_socket_there_is_one_date_header_and_it_is_the_simulators() -> None:
    sim = manual(load_scenario("quiet"), api_clock_offset=-3600.0)
    async with serve(sim) as base_url, httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        answer = await http.get(KBS)
    assert len(answer.headers.get_list("date")) == 1
    assert parsedate_to_datetime(answer.headers["date"]) == START - timedelta(hours=1)


def test_the_reference_clock_and_the_apis_clock_differ_by_the_offset() -> None:
    sim = manual(load_scenario("quiet"), api_clock_offset=-90.0)
    assert sim.now() - sim.clock.now() == timedelta(seconds=-90)
    assert sim.t0 == START - timedelta(seconds=90)

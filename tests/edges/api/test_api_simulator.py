"""The API client against the real simulated API on 127.0.0.1 (uvicorn, port chosen by the OS).

The simulator runs on a `ManualClock`; the client's sleep advances that same clock, so waits
the client chooses (backoff, retry-after, budget) cost no real time and show up in the
simulator's request log as simulated timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from tests.edges.api.clients import settings, split
from watcher.core.errors import ApiStatusError, NotFound, RetryableSourceError, Unauthorized
from watcher.core.model import Phase, Status
from watcher.edges.api.client import ApiClient
from watcher.edges.api.wire import unknown_values
from watcher.simulator import (
    Fault,
    FaultKind,
    ManualClock,
    Scenario,
    Simulator,
    generated_scenario,
    load_scenario,
    serve,
)

TOKEN = "sim-token"
SOURCE = "environment variable DIGITALOCEAN_ACCESS_TOKEN"


class SimClock:
    """The client's clock and sleep, tied to the simulator's manual clock."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.mono = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self.sim.now().timestamp()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds
        self.sim.advance(seconds)
        await asyncio.sleep(0)


class Harness:
    """A served simulator and a way to make clients for it."""

    def __init__(self, sim: Simulator, base_url: str) -> None:
        self.sim = sim
        self.base_url = base_url
        self.clock = SimClock(sim)

    def client(self, token: str = TOKEN, **options: Any) -> ApiClient:
        source = options.pop("token_source", SOURCE)
        overrides, collaborators = split(options)
        return ApiClient(
            settings(self.base_url, **overrides),
            token,
            token_source=source,
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
            wall_clock=self.clock.wall,
            **collaborators,
        )

    def statuses(self) -> list[int | None]:
        return [r.status for r in self.sim.requests]

    def truth(self, view: Callable[[Any, datetime], list[dict[str, Any]]]) -> set[str]:
        """The uuids the simulated world holds right now, read behind the API's back."""
        return {item["uuid"] for item in self.sim.read(view)}


Serve = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def served() -> AsyncIterator[Serve]:
    """Start a simulator for a scenario on loopback; everything is stopped after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(scenario: Scenario, **sim_options: Any) -> Harness:
            sim = Simulator(scenario, token=TOKEN, clock=ManualClock(), **sim_options)
            base_url = await stack.enter_async_context(serve(sim))
            return Harness(sim, base_url)

        yield start


async def test_knowledge_bases_over_three_pages_survive_a_shift_with_no_duplicate_and_no_loss(
    served: Serve,
) -> None:
    """25 KBs at 10 per page, a new KB inserted while page 2 is read: every KB exactly once."""
    h = await served(generated_scenario(25, busy=False))
    async with h.client(per_page=10) as client:
        first = await client.list_knowledge_bases()
        assert len(h.sim.requests) == 3  # 10 + 10 + 5, no shift, one sweep
        h.sim.inject(Fault(FaultKind.PAGE_SHIFT, path_prefix="/v2/gen-ai/knowledge_bases"))
        second = await client.list_knowledge_bases()
    uuids = [kb.uuid for kb in second]
    assert len(uuids) == len(set(uuids)) == 26
    assert {kb.uuid for kb in first} < set(uuids)
    assert set(uuids) == h.truth(lambda world, now: world.knowledge_bases(now))
    assert any("page_shift" in r.faults for r in h.sim.requests)


async def test_jobs_over_three_pages_survive_a_shift_with_no_duplicate_and_no_loss(
    served: Serve,
) -> None:
    """The account-wide job list, shifted mid-sweep, still comes back whole and once."""
    h = await served(generated_scenario(10, busy=False))
    truth_before = h.truth(lambda world, now: world.jobs(now))
    assert len(truth_before) > 20  # three pages of 10
    h.sim.inject(Fault(FaultKind.PAGE_SHIFT, path_prefix="/v2/gen-ai/indexing_jobs"))
    async with h.client(per_page=10) as client:
        jobs = await client.list_jobs()
    uuids = [job.uuid for job in jobs]
    assert len(uuids) == len(set(uuids))
    assert set(uuids) == h.truth(lambda world, now: world.jobs(now))
    assert truth_before < set(uuids)


async def test_429_then_success_waits_the_retry_after_the_simulator_sent(
    served: Serve,
) -> None:
    """An injected 429 with `retry-after: 3` costs exactly one 3-second wait."""
    h = await served(generated_scenario(3, busy=False))
    h.sim.inject(Fault(FaultKind.RATE_LIMITED, retry_after=3))
    async with h.client() as client:
        kbs = await client.list_knowledge_bases()
    assert len(kbs) == 3
    assert h.clock.sleeps == [3.0]
    assert h.statuses() == [429, 200]


async def test_5xx_is_retried_and_then_gives_up_with_a_typed_error(
    served: Serve,
) -> None:
    """A 503 on every attempt ends in `RetryableSourceError` naming the status and API error."""
    h = await served(generated_scenario(3, busy=False))
    h.sim.inject(Fault(FaultKind.SERVER_ERROR, status=503, count=None))
    async with h.client(max_attempts=3) as client:
        with pytest.raises(RetryableSourceError) as caught:
            await client.list_jobs()
        assert h.statuses() == [503, 503, 503]
        text = str(caught.value)
        assert "GET /v2/gen-ai/indexing_jobs" in text and "503" in text
        assert "service_unavailable" in text and "request_id=" in text
        h.sim.clear_faults()
        assert await client.list_jobs()  # the same client carries on once the API is back


async def test_a_5xx_burst_shorter_than_the_attempts_is_absorbed(
    served: Serve,
) -> None:
    """Two 500s and then a good answer: the caller only sees the good answer."""
    h = await served(generated_scenario(3, busy=False))
    h.sim.inject(Fault(FaultKind.SERVER_ERROR, count=2))
    async with h.client() as client:
        assert len(await client.list_knowledge_bases()) == 3
    assert h.statuses() == [500, 500, 200]
    assert len(h.clock.sleeps) == 2


@pytest.mark.parametrize(
    "kind", [FaultKind.TRUNCATED_JSON, FaultKind.HTML_ERROR, FaultKind.CONNECTION_RESET]
)
async def test_a_broken_answer_costs_one_retry(served: Serve, kind: FaultKind) -> None:
    """A truncated body, a proxy's HTML page or a reset connection is retried once."""
    h = await served(generated_scenario(3, busy=False))
    h.sim.inject(Fault(kind))
    async with h.client() as client:
        assert len(await client.list_knowledge_bases()) == 3
    assert len(h.sim.requests) == 2 and h.statuses()[-1] == 200


async def test_a_refused_token_gives_a_401_that_names_the_token_source(
    served: Serve,
) -> None:
    """A wrong token fails at once with a message naming 401 and the token's source only."""
    h = await served(generated_scenario(3, busy=False))
    source = "token file /run/credentials/watcher.service/do-token"
    async with h.client("dop_v1_wrong", token_source=source) as client:
        with pytest.raises(Unauthorized) as caught:
            await client.list_knowledge_bases()
    text = str(caught.value)
    assert "401" in text and "refused the token" in text and source in text
    assert "dop_v1_wrong" not in text
    assert caught.value.api_id == "unauthorized" and caught.value.request_id
    assert h.statuses() == [401]


async def test_unknown_enum_values_from_the_api_are_kept_and_not_terminal(
    served: Serve,
) -> None:
    """Phase and status strings the spec does not know come back UNKNOWN with the raw text."""
    h = await served(generated_scenario(5, busy=False))
    h.sim.inject(Fault(FaultKind.UNKNOWN_ENUM, path_prefix="/v2/gen-ai/indexing_jobs"))
    async with h.client() as client:
        jobs = await client.list_jobs()
    assert jobs
    for job in jobs:
        assert (job.phase, job.status) == (Phase.UNKNOWN, Status.UNKNOWN)
        assert job.phase_raw == "BATCH_JOB_PHASE_COMPLETED"
        assert job.status_raw == "INDEX_JOB_STATUS_QUEUED"
        assert not job.is_terminal
        assert unknown_values(job) == {"BATCH_JOB_PHASE_COMPLETED", "INDEX_JOB_STATUS_QUEUED"}


async def test_string_counters_from_the_api_arrive_as_integers(
    served: Serve,
) -> None:
    """`total_tokens` and the per-source counts are JSON strings on the wire and ints here."""
    h = await served(load_scenario("demo"))
    raw_jobs = h.sim.read(lambda world, now: world.jobs(now))
    raw = next(j for j in raw_jobs if int(j["total_tokens"]) > 0)
    assert isinstance(raw["total_tokens"], str)
    async with h.client() as client:
        job = await client.get_job(raw["uuid"])
        sources = await client.list_job_data_sources(raw["uuid"])
    assert job.total_tokens == int(raw["total_tokens"])
    raw_sources = {s["data_source_uuid"]: s for s in raw["data_source_jobs"]}
    assert sources and len(sources) == len(raw_sources)
    for source in sources:
        assert source.data_source_uuid is not None
        expected = raw_sources[source.data_source_uuid]
        assert isinstance(expected["indexed_item_count"], str)
        assert source.indexed_item_count == int(expected["indexed_item_count"])
        assert source.total_bytes == int(expected["total_bytes"])
    unset = raw["finished_at"] == "0001-01-01T00:00:00Z"
    assert (job.finished_at is None) is unset  # Go's zero time means "not finished"
    assert job.created_at is not None and job.created_at.tzinfo is not None


def most_in_any_minute(stamps: list[datetime]) -> int:
    """The largest number of stamps in any half-open 60-second window."""
    seconds = sorted(s.timestamp() for s in stamps)
    best, start = 0, 0
    for end, t in enumerate(seconds):
        while seconds[start] <= t - 60.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_the_client_budget_bounds_requests_per_minute_seen_by_the_api(
    served: Serve,
) -> None:
    """With a budget of 30/min, the simulator never sees more than 30 requests in a minute."""
    h = await served(generated_scenario(3, busy=False))
    job_uuid = next(iter(h.truth(lambda world, now: world.jobs(now))))
    async with h.client(max_requests_per_minute=30) as client:
        for _ in range(100):
            await client.get_job(job_uuid)
    received = h.sim.requests
    assert len(received) == 100 and set(h.statuses()) == {200}
    assert most_in_any_minute([r.at for r in received]) == 30


async def test_the_apis_own_burst_limit_is_waited_out_as_told(
    served: Serve,
) -> None:
    """An API allowing 20/min answers 429 with retry-after; the client waits and finishes."""
    h = await served(generated_scenario(3, busy=False), per_minute=20)
    job_uuid = next(iter(h.truth(lambda world, now: world.jobs(now))))
    async with h.client(max_requests_per_minute=250) as client:
        for _ in range(50):
            await client.get_job(job_uuid)
    admitted = [r for r in h.sim.requests if r.status == 200]
    assert len(admitted) == 50
    assert 429 in h.statuses()
    assert most_in_any_minute([r.at for r in admitted]) <= 20


async def test_start_cancel_and_conflict_round_trip(served: Serve) -> None:
    """A started job can be read and cancelled; a second start on a busy KB is one 409."""
    h = await served(generated_scenario(2, busy=False))
    async with h.client() as client:
        kb = (await client.list_knowledge_bases())[0]
        started = await client.create_job(kb.uuid)
        assert started.knowledge_base_uuid == kb.uuid and not started.is_terminal
        with pytest.raises(ApiStatusError) as caught:
            await client.create_job(kb.uuid)
        assert caught.value.status == 409
        cancelled = await client.cancel_job(started.uuid)
        assert cancelled.uuid == started.uuid
        assert (await client.get_job(started.uuid)).status is Status.CANCELLED
        assert (await client.get_knowledge_base(kb.uuid)).uuid == kb.uuid
        recent = await client.list_kb_jobs(kb.uuid)
        assert recent[0].uuid == started.uuid
    assert h.statuses().count(409) == 1


async def test_an_unknown_job_is_not_found(served: Serve) -> None:
    """A uuid the API does not know raises `NotFound` with the API's id and request id."""
    h = await served(generated_scenario(1, busy=False))
    async with h.client() as client:
        with pytest.raises(NotFound) as caught:
            await client.get_job("00000000-0000-4000-8000-000000000000")
    assert caught.value.api_id == "not_found" and caught.value.request_id

"""Every fault kind, switched on at run time or from the scenario timeline."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.simulator import AUTH, client, manual
from watcher.simulator import Fault, FaultKind, load_scenario, serve
from watcher.simulator.faults import fault_from_json

KBS = "/v2/gen-ai/knowledge_bases"
JOBS = "/v2/gen-ai/indexing_jobs"


async def test_429_burst_with_retry_after_answers_n_times_then_recovers() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.RATE_LIMITED, count=2, retry_after=7))
    async with client(sim) as http:
        answers = [await http.get(KBS) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "7"
    assert answers[0].json()["id"] == "too_many_requests"
    assert "ratelimit-remaining" in answers[0].headers


async def test_429_without_retry_after_has_no_retry_after_header() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.RATE_LIMITED, retry_after=None))
    async with client(sim) as http:
        answer = await http.get(KBS)
    assert answer.status_code == 429
    assert "retry-after" not in answer.headers


@pytest.mark.parametrize(
    ("status", "error_id"),
    [(500, "server_error"), (502, "bad_gateway"), (503, "service_unavailable")],
)
async def test_server_errors_answer_n_times_in_do_error_shape(status: int, error_id: str) -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.SERVER_ERROR, status=status, count=3))
    async with client(sim) as http:
        answers = [await http.get(JOBS) for _ in range(4)]
    assert [a.status_code for a in answers] == [status, status, status, 200]
    assert answers[0].json()["id"] == error_id


async def test_html_error_page_is_not_json() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.HTML_ERROR, status=503))
    async with client(sim) as http:
        answer = await http.get(JOBS)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "text/html"
    assert "503 Service Unavailable" in answer.text
    with pytest.raises(json.JSONDecodeError):
        answer.json()


async def test_truncated_json_is_a_200_with_a_cut_body() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.TRUNCATED_JSON))
    async with client(sim) as http:
        cut = await http.get(JOBS)
        whole = await http.get(JOBS)
    assert cut.status_code == 200
    assert int(cut.headers["content-length"]) == len(cut.content) == len(whole.content) // 2
    with pytest.raises(json.JSONDecodeError):
        cut.json()


async def test_unknown_enum_values_appear_in_every_job_object_of_the_answer() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.UNKNOWN_ENUM, count=None))
    async with client(sim) as http:
        jobs = (await http.get(JOBS)).json()["jobs"]
        kbs = (await http.get(KBS)).json()["knowledge_bases"]
    latest = [k["last_indexing_job"] for k in kbs if "last_indexing_job" in k]
    for found in [*jobs, *latest]:
        assert found["phase"] == "BATCH_JOB_PHASE_COMPLETED"
        assert found["status"] == "INDEX_JOB_STATUS_QUEUED"
    assert {ds["status"] for j in jobs for ds in j["data_source_jobs"]} <= {
        "DATA_SOURCE_STATUS_UPDATED",
        "DATA_SOURCE_STATUS_NOT_UPDATED",
        "DATA_SOURCE_STATUS_PARTIALLY_UPDATED",
        "DATA_SOURCE_STATUS_FAILED",
        "DATA_SOURCE_STATUS_CANCELLED",
    }


async def test_missing_fields_are_dropped_from_jobs_and_data_sources() -> None:
    sim = manual(load_scenario("quiet"))
    drop = ("status", "updated_at", "failed_item_count")
    sim.inject(Fault(FaultKind.MISSING_FIELDS, drop=drop))
    async with client(sim) as http:
        jobs = (await http.get(JOBS)).json()["jobs"]
        again = (await http.get(JOBS)).json()["jobs"]
    assert all("status" not in j and "updated_at" not in j for j in jobs)
    assert all("failed_item_count" not in ds for j in jobs for ds in j["data_source_jobs"])
    assert all("status" in j for j in again)


async def test_page_shift_moves_items_down_between_page_requests() -> None:
    sim = manual(load_scenario("demo"))
    async with client(sim) as http:
        first = (await http.get(KBS, params={"per_page": 3})).json()
        sim.inject(Fault(FaultKind.PAGE_SHIFT, path_prefix=KBS))
        second = (await http.get(KBS, params={"per_page": 3, "page": 2})).json()
        jobs = (await http.get(JOBS, params={"per_page": 3})).json()
    assert second["knowledge_bases"][0]["uuid"] == first["knowledge_bases"][2]["uuid"]
    assert second["meta"]["total"] == first["meta"]["total"] + 1
    assert jobs["jobs"][0]["knowledge_base_uuid"] not in {
        k["uuid"] for k in first["knowledge_bases"]
    }
    assert sim.requests[1].faults == ("page_shift",)


async def test_page_shift_waits_for_a_follow_up_page() -> None:
    sim = manual(load_scenario("demo"))
    sim.inject(Fault(FaultKind.PAGE_SHIFT))
    async with client(sim) as http:
        await http.get(KBS)
        await http.get(JOBS, params={"page": 1})
    assert len(sim.faults) == 1


async def test_faults_only_hit_their_path_prefix_and_method() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.SERVER_ERROR, count=None, path_prefix=f"{JOBS}/", method="GET"))
    async with client(sim) as http:
        listing = await http.get(JOBS)
        kbs = await http.get(KBS)
        single = await http.get(f"{JOBS}/{listing.json()['jobs'][0]['uuid']}")
        cancel = await http.put(f"{JOBS}/nope/cancel")
    assert (listing.status_code, kbs.status_code, single.status_code) == (200, 200, 500)
    assert cancel.status_code == 404


async def test_fault_without_count_lasts_until_cleared() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.SERVER_ERROR, count=None))
    async with client(sim) as http:
        broken = [(await http.get(KBS)).status_code for _ in range(5)]
        sim.clear_faults()
        healed = await http.get(KBS)
    assert broken == [500] * 5
    assert healed.status_code == 200


async def test_fault_injected_for_a_while_expires_with_simulated_time() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.SERVER_ERROR, count=None), for_seconds=10)
    async with client(sim) as http:
        during = await http.get(KBS)
        sim.advance(10)
        after = await http.get(KBS)
    assert (during.status_code, after.status_code) == (500, 200)


async def test_timeline_switches_faults_on_and_off() -> None:
    sim = manual(load_scenario("flaky"))
    async with client(sim) as http:
        calm = await http.get(KBS)
        sim.advance(5)
        storm = [(await http.get(KBS)).status_code for _ in range(4)]
        sim.advance(20)  # t=25: the 429s, the HTML page and the cut body wait their turn
        queued = [await http.get(JOBS) for _ in range(5)]
        odd = (await http.get(JOBS)).json()["jobs"][0]["phase"]  # unknown enums for 10 s
        sim.advance(10)
        normal = (await http.get(JOBS)).json()["jobs"][0]["phase"]
    assert calm.status_code == 200
    assert storm == [503, 503, 503, 200]
    assert [r.status_code for r in queued] == [429, 429, 429, 502, 200]
    assert [r.headers.get("retry-after") for r in queued[:3]] == ["2", "2", None]
    assert sim.requests[-3].faults == ("unknown_enum", "truncated_json")
    assert odd == "BATCH_JOB_PHASE_COMPLETED"
    assert normal.startswith("BATCH_JOB_PHASE_") and normal != odd


async def test_slow_answer_is_delayed_then_served() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.SLOW, delay=0.05))
    async with client(sim) as http:
        began = time.monotonic()
        answer = await http.get(KBS)
        elapsed = time.monotonic() - began
    assert answer.status_code == 200
    assert elapsed >= 0.05
    assert sim.requests[0].faults == ("slow",)


async def test_connection_reset_closes_the_socket_without_an_answer() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.CONNECTION_RESET))
    async with serve(sim) as base_url, httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        with pytest.raises(httpx.TransportError):
            await http.get(KBS)
        after = await http.get(KBS)
    assert after.status_code == 200
    assert [r.status for r in sim.requests] == [None, 200]
    assert sim.requests[0].faults == ("connection_reset",)


async def test_connection_reset_in_process_raises_connection_reset_error() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.CONNECTION_RESET))
    async with client(sim) as http:
        with pytest.raises(ConnectionResetError):
            await http.get(KBS)


def test_fault_with_a_non_positive_count_is_refused() -> None:
    sim = manual(load_scenario("quiet"))
    with pytest.raises(ValueError, match="count"):
        sim.inject(Fault(FaultKind.SLOW, count=0))


async def test_a_dribbled_answer_sends_its_headers_at_once_then_a_byte_at_a_time() -> None:
    """One byte every 50 ms: a read timeout of 0.5 s between bytes never fires."""
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.DRIBBLE, delay=0.05))
    timeout = httpx.Timeout(0.5)
    async with (
        serve(sim) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=timeout) as http,
        http.stream("GET", KBS) as answer,
    ):
        assert answer.status_code == 200
        size = int(answer.headers["content-length"])
        began = time.monotonic()
        got = b""
        async for chunk in answer.aiter_raw():
            got += chunk
            if len(got) >= 6:
                break
        elapsed = time.monotonic() - began
    assert size > 100
    assert 0.2 <= elapsed < size * 0.05  # a few bytes took a few ticks; the rest never came
    assert sim.requests[0].faults == ("dribble",)


async def test_a_client_that_hangs_up_stops_the_dribble_and_the_next_answer_is_whole() -> None:
    sim = manual(load_scenario("quiet"))
    sim.inject(Fault(FaultKind.DRIBBLE, delay=0.02, chunk=4))
    async with serve(sim) as base_url:
        async with (
            httpx.AsyncClient(base_url=base_url, headers=AUTH) as http,
            http.stream("GET", KBS) as answer,
        ):
            async for _ in answer.aiter_raw():
                break
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
            whole = await http.get(KBS)
    assert whole.status_code == 200 and whole.json()["knowledge_bases"]
    assert [r.faults for r in sim.requests] == [("dribble",), ()]


def test_a_dribble_fault_reads_from_a_scenario_with_its_pace() -> None:
    fault = fault_from_json({"kind": "dribble", "delay": 2, "chunk": 8})
    assert (fault.kind, fault.dribble_every, fault.chunk) == (FaultKind.DRIBBLE, 2, 8)
    assert Fault(FaultKind.DRIBBLE).dribble_every == 1.0

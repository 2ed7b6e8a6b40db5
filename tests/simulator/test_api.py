"""The HTTP surface: auth, rate limits, pagination, errors, start and cancel (in process)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.simulator import TOKEN, client, kb, manual, scenario, start
from watcher.simulator import generated_scenario, load_scenario

KBS = "/v2/gen-ai/knowledge_bases"
JOBS = "/v2/gen-ai/indexing_jobs"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": ""},
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
async def test_missing_or_wrong_token_gets_401_with_do_error_body(headers: dict[str, str]) -> None:
    sim = manual(load_scenario("quiet"))
    async with client(sim, headers) as http:
        response = await http.get(KBS)
    assert response.status_code == 401
    body = response.json()
    assert (body["id"], body["message"]) == ("unauthorized", "Unable to authenticate you.")
    assert body["request_id"] == response.headers["x-request-id"]
    assert TOKEN not in response.text


async def test_every_answer_carries_rate_limit_headers_from_a_sliding_window() -> None:
    sim = manual(load_scenario("quiet"))
    async with client(sim) as http:
        ok = await http.get(KBS)
        missing = await http.get(f"{JOBS}/no-such-job")
        unauthorized = await http.get(KBS, headers={"Authorization": "Bearer nope"})
    remaining = [int(r.headers["ratelimit-remaining"]) for r in (ok, missing, unauthorized)]
    assert remaining == [4999, 4998, 4997]
    assert {r.headers["ratelimit-limit"] for r in (ok, missing, unauthorized)} == {"5000"}
    reset = int(ok.headers["ratelimit-reset"])
    assert reset == int(sim.now().timestamp()) + 3600


async def test_over_the_per_minute_limit_gets_429_with_retry_after_until_the_window_moves() -> None:
    sim = manual(load_scenario("quiet"), per_minute=5)
    async with client(sim) as http:
        for _ in range(5):
            assert (await http.get(KBS)).status_code == 200
            sim.advance(2)
        limited = await http.get(KBS)
        assert limited.status_code == 429
        assert limited.json()["id"] == "too_many_requests"
        assert limited.headers["retry-after"] == "50"
        sim.advance(49)
        assert (await http.get(KBS)).status_code == 429
        sim.advance(1)
        assert (await http.get(KBS)).status_code == 200


async def test_over_the_hourly_limit_gets_429_without_retry_after() -> None:
    sim = manual(load_scenario("quiet"), per_hour=3, per_minute=100)
    async with client(sim) as http:
        for _ in range(3):
            await http.get(KBS)
        limited = await http.get(KBS)
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    assert limited.headers["ratelimit-remaining"] == "0"


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_kb_list_pages_carry_links_and_meta() -> None:
    sim = manual(load_scenario("demo"))
    async with client(sim) as http:
        first = (await http.get(KBS, params={"per_page": 3})).json()
        middle = (await http.get(KBS, params={"per_page": 3, "page": 2})).json()
        last = (await http.get(KBS, params={"per_page": 3, "page": 3})).json()
    assert first["meta"] == {"total": 7, "page": 1, "pages": 3}
    assert "previous" not in first["links"]["pages"]
    assert _query(first["links"]["pages"]["next"]) == {"page": "2", "per_page": "3"}
    assert _query(middle["links"]["pages"]["previous"])["page"] == "1"
    assert _query(middle["links"]["pages"]["last"])["page"] == "3"
    assert "next" not in last["links"]["pages"]
    names = [k["name"] for page in (first, middle, last) for k in page["knowledge_bases"]]
    assert len(names) == len(set(names)) == 7


async def test_per_page_defaults_to_20_and_is_clamped_to_200() -> None:
    sim = manual(generated_scenario(250, busy=False))
    async with client(sim) as http:
        default = (await http.get(KBS)).json()
        clamped = (await http.get(KBS, params={"per_page": 1000})).json()
    assert len(default["knowledge_bases"]) == 20
    assert default["meta"] == {"total": 250, "page": 1, "pages": 13}
    assert len(clamped["knowledge_bases"]) == 200
    assert clamped["meta"]["pages"] == 2


async def test_every_kb_carries_its_latest_job_as_last_indexing_job() -> None:
    sim = manual(load_scenario("demo"))
    sim.advance(20)
    async with client(sim) as http:
        kbs = (await http.get(KBS)).json()["knowledge_bases"]
        detail = (await http.get(f"{KBS}/{sim.kb_uuid('docs')}")).json()
    by_name = {k["name"]: k for k in kbs}
    assert by_name["product-docs"]["last_indexing_job"]["uuid"] == sim.job_uuid("docs-refresh")
    assert detail["database_status"] == "ONLINE"
    assert detail["knowledge_base"]["last_indexing_job"]["status"] == "INDEX_JOB_STATUS_COMPLETED"


async def test_account_job_list_is_newest_first_across_pages() -> None:
    sim = manual(load_scenario("demo"))
    sim.advance(15)
    async with client(sim) as http:
        pages = [
            (await http.get(JOBS, params={"per_page": 5, "page": n})).json() for n in (1, 2, 3, 4)
        ]
    jobs = [j for page in pages for j in page["jobs"]]
    created = [j["created_at"] for j in jobs]
    assert created == sorted(created, reverse=True)
    assert len(jobs) == pages[0]["meta"]["total"] == 15
    assert pages[3]["jobs"] == []


async def test_kb_job_list_returns_the_latest_15_newest_first() -> None:
    sim = manual(load_scenario("quiet"))
    async with client(sim) as http:
        body = (await http.get(f"{KBS}/{sim.kb_uuid('busy-history')}/indexing_jobs")).json()
    created = [j["created_at"] for j in body["jobs"]]
    assert len(created) == 15
    assert created == sorted(created, reverse=True)
    assert body["meta"] == {"total": 15, "page": 1, "pages": 1}


@pytest.mark.parametrize(
    "path",
    [f"{JOBS}/nope", f"{JOBS}/nope/data_sources", f"{KBS}/nope", f"{KBS}/nope/indexing_jobs"],
)
async def test_unknown_uuid_is_404_with_do_error_body(path: str) -> None:
    sim = manual(load_scenario("quiet"))
    async with client(sim) as http:
        response = await http.get(path)
    assert response.status_code == 404
    assert response.json()["id"] == "not_found"
    assert response.json()["message"]


async def test_non_integer_page_is_400_bad_request() -> None:
    sim = manual(load_scenario("quiet"))
    async with client(sim) as http:
        response = await http.get(KBS, params={"page": "two"})
    assert response.status_code == 400
    assert response.json()["id"] == "bad_request"


async def test_job_data_sources_endpoint_lists_each_source_of_the_job() -> None:
    sim = manual(load_scenario("demo"))
    sim.advance(30)
    async with client(sim) as http:
        uuid = sim.job_uuid("support-sync")
        body = (await http.get(f"{JOBS}/{uuid}/data_sources")).json()
    statuses = [ds["status"] for ds in body["indexed_data_sources"]]
    assert statuses == [
        "DATA_SOURCE_STATUS_UPDATED",
        "DATA_SOURCE_STATUS_FAILED",
        "DATA_SOURCE_STATUS_PARTIALLY_UPDATED",
    ]


async def test_post_starts_a_job_that_follows_the_scenario_start_plan() -> None:
    sim = manual(scenario(kbs=(kb(items=(10, 20)),)))
    kb_uuid = sim.kb_uuid("kb")
    async with client(sim) as http:
        sources = (await http.get(f"{KBS}/{kb_uuid}")).json()
        assert "last_indexing_job" not in sources["knowledge_base"]
        created = await http.post(JOBS, json={"knowledge_base_uuid": kb_uuid})
        uuid = created.json()["job"]["uuid"]
        sim.advance(60)
        finished = (await http.get(f"{JOBS}/{uuid}")).json()["job"]
    assert created.status_code == 200
    assert created.json()["job"]["status"] == "INDEX_JOB_STATUS_PENDING"
    assert finished["status"] == "INDEX_JOB_STATUS_COMPLETED"
    assert finished["total_datasources"] == 2


async def test_post_with_selected_data_sources_indexes_only_those() -> None:
    sim = manual(scenario(start(-100, "old", run=10), kbs=(kb(items=(10, 20)),)))
    kb_uuid = sim.kb_uuid("kb")
    async with client(sim) as http:
        old = (await http.get(f"{JOBS}/{sim.job_uuid('old')}")).json()["job"]
        second = old["data_source_uuids"][1]
        created = await http.post(
            JOBS, json={"knowledge_base_uuid": kb_uuid, "data_source_uuids": [second]}
        )
        unknown = await http.post(
            JOBS, json={"knowledge_base_uuid": kb_uuid, "data_source_uuids": ["nope"]}
        )
    assert created.json()["job"]["data_source_uuids"] == [second]
    assert unknown.status_code == 400


async def test_post_on_a_kb_with_a_running_job_is_skipped_with_409_conflict() -> None:
    sim = manual(scenario(start(0, "running", run=100)))
    sim.advance(5)
    async with client(sim) as http:
        response = await http.post(JOBS, json={"knowledge_base_uuid": sim.kb_uuid("kb")})
    assert response.status_code == 409
    assert response.json()["id"] == "conflict"
    assert sim.job_uuid("running") in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b"[]", 400), (b'{"knowledge_base_uuid": "nope"}', 404)],
)
async def test_post_with_a_bad_body_or_unknown_kb_is_refused(body: bytes, status: int) -> None:
    sim = manual(load_scenario("quiet"))
    async with client(sim) as http:
        response = await http.post(JOBS, content=body)
    assert response.status_code == status


async def test_put_cancel_cancels_a_running_job_and_refuses_a_finished_one() -> None:
    sim = manual(scenario(start(0, "j", pending=0, run=100)))
    sim.advance(10)
    uuid = sim.job_uuid("j")
    async with client(sim) as http:
        cancelled = await http.put(f"{JOBS}/{uuid}/cancel", json={"uuid": uuid})
        again = await http.put(f"{JOBS}/{uuid}/cancel", json={"uuid": uuid})
        mismatch = await http.put(f"{JOBS}/{uuid}/cancel", json={"uuid": "other"})
    assert cancelled.status_code == 200
    assert cancelled.json()["job"]["status"] == "INDEX_JOB_STATUS_CANCELLED"
    assert cancelled.json()["job"]["finished_at"] == "2026-01-05T09:00:10Z"
    assert again.status_code == 422
    assert again.json()["id"] == "unprocessable_entity"
    assert mismatch.status_code == 400


async def test_unknown_path_and_wrong_method_answer_in_do_error_shape() -> None:
    sim = manual(load_scenario("quiet"))
    async with client(sim) as http:
        missing = await http.get("/v2/gen-ai/nothing-here")
        wrong = await http.delete(JOBS)
    assert (missing.status_code, missing.json()["id"]) == (404, "not_found")
    assert (wrong.status_code, wrong.json()["id"]) == (405, "method_not_allowed")


async def test_request_log_records_method_path_query_status_and_time() -> None:
    sim = manual(load_scenario("quiet"))
    async with client(sim) as http:
        await http.get(KBS, params={"page": 1})
        sim.advance(5)
        await http.get(f"{JOBS}/nope")
    first, second = sim.requests
    assert (first.method, first.path, first.query, first.status) == ("GET", KBS, "page=1", 200)
    assert (second.status, (second.at - first.at).total_seconds()) == (404, 5)


async def test_head_answers_the_headers_of_get_without_a_body() -> None:
    sim = manual(load_scenario("quiet"))
    async with client(sim) as http:
        head = await http.head(KBS)
        get = await http.get(KBS)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))


async def test_a_request_is_in_the_log_before_its_answer_goes_out() -> None:
    """A client that has its answer finds its request in `requests` (a test reading the log
    right after a call, on a loaded machine, saw it empty while the server had yet to log)."""
    sim = manual(load_scenario("quiet"))
    logged_at_start: list[list[tuple[str, str, int | None]]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            logged_at_start.append([(r.method, r.path, r.status) for r in sim.requests])

    scope = {
        "type": "http",
        "method": "GET",
        "path": KBS,
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {TOKEN}".encode())],
    }
    await sim.app(scope, receive, send)
    assert logged_at_start == [[("GET", KBS, 200)]]

"""The API client's retry, backoff, budget, paging and error translation, over `MockTransport`.

A fake clock stands in for time: `sleep` advances it instantly and records what was asked,
so the tests can assert the waits the client chose without waiting.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from tests.edges.api.clients import settings, split
from watcher.core.errors import (
    ApiStatusError,
    ConfigError,
    Forbidden,
    MalformedResponse,
    NotFound,
    RetryableSourceError,
    Unauthorized,
)
from watcher.edges.api.client import ApiClient, RequestRecord

TOKEN = "dop_v1_" + "f" * 64
SOURCE = "environment variable DIGITALOCEAN_ACCESS_TOKEN"
EPOCH = 1_700_000_000.0
Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Monotonic and wall time that only move when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(clock: FakeClock, handler: Handler, **overrides: Any) -> ApiClient:
    """A client on a mock transport with the fake clock and a seeded jitter source; `overrides`
    are settings (`per_page=2`, `max_attempts=3`) or collaborators (`on_response=...`)."""
    options, collaborators = split(dict(overrides))
    return ApiClient(
        settings("https://api.example.test", **options),
        TOKEN,
        token_source=SOURCE,
        **{
            "transport": httpx.MockTransport(handler),
            "sleep": clock.sleep,
            "monotonic": clock.monotonic,
            "wall_clock": clock.wall,
            "rng": random.Random(7),
            **collaborators,
        },
    )


def job(uuid: str, **fields: Any) -> dict[str, Any]:
    return {"uuid": uuid, "phase": "BATCH_JOB_PHASE_RUNNING", **fields}


def ok(body: object, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=body, headers=headers)


def error(status: int, api_id: str, **headers: str) -> httpx.Response:
    body = {"id": api_id, "message": f"{api_id} happened", "request_id": "req-42"}
    return httpx.Response(status, json=body, headers=headers)


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with the given responses in turn (the last one repeats)."""
    seen: list[httpx.Request] = []
    queue: Iterator[httpx.Response | Exception] = iter(responses)
    last: list[httpx.Response | Exception] = [responses[-1]]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(queue, last[0])
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


JOB_BODY = {"job": job("j-1", total_tokens="12")}


async def test_requests_carry_the_bearer_token_and_a_user_agent(clock: FakeClock) -> None:
    """Every request authenticates with `Bearer <token>` and names the watcher."""
    handler, seen = scripted(ok(JOB_BODY))
    async with make_client(clock, handler) as client:
        got = await client.get_job("j-1")
    assert got.uuid == "j-1" and got.total_tokens == 12
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert seen[0].headers["user-agent"].startswith("gradient-watcher/")
    assert seen[0].url.path == "/v2/gen-ai/indexing_jobs/j-1"


async def test_a_uuid_with_slashes_cannot_escape_its_path_segment(clock: FakeClock) -> None:
    """Path parameters are percent-encoded, so a strange uuid stays one segment."""
    handler, seen = scripted(ok(JOB_BODY))
    async with make_client(clock, handler) as client:
        await client.get_job("../knowledge_bases")
    assert seen[0].url.raw_path == b"/v2/gen-ai/indexing_jobs/..%2Fknowledge_bases"


async def test_429_with_retry_after_waits_that_long_then_succeeds(clock: FakeClock) -> None:
    """A 429 carrying `retry-after: 7` makes the client sleep exactly 7 s and try again."""
    handler, seen = scripted(error(429, "too_many_requests", **{"Retry-After": "7"}), ok(JOB_BODY))
    async with make_client(clock, handler) as client:
        await client.get_job("j-1")
    assert clock.sleeps == [7.0]
    assert len(seen) == 2


async def test_429_without_retry_after_waits_until_ratelimit_reset(clock: FakeClock) -> None:
    """Without `retry-after`, a 429 waits until the `ratelimit-reset` Unix time."""
    reset = str(int(EPOCH + 12))
    handler, _ = scripted(
        error(429, "too_many_requests", **{"ratelimit-reset": reset, "ratelimit-remaining": "0"}),
        ok(JOB_BODY),
    )
    async with make_client(clock, handler, low_remaining=0) as client:
        await client.get_job("j-1")
    assert clock.sleeps == [12.0]


async def test_a_server_requested_wait_is_capped_at_max_wait(clock: FakeClock) -> None:
    """A reset an hour away does not freeze the client: the wait is capped."""
    reset = str(int(EPOCH + 3600))
    handler, _ = scripted(
        error(429, "too_many_requests", **{"ratelimit-reset": reset}), ok(JOB_BODY)
    )
    async with make_client(clock, handler, max_wait=45.0) as client:
        await client.get_job("j-1")
    assert clock.sleeps == [45.0]


async def test_5xx_is_retried_with_jittered_exponential_backoff_then_succeeds(
    clock: FakeClock,
) -> None:
    """Two 503s then a 200: two sleeps, each within its full-jitter bound."""
    handler, seen = scripted(error(503, "unavailable"), error(502, "bad_gateway"), ok(JOB_BODY))
    async with make_client(clock, handler, backoff_base=1.0) as client:
        await client.get_job("j-1")
    assert len(seen) == 3
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 1.0 and 0 <= clock.sleeps[1] <= 2.0


async def test_5xx_every_time_gives_up_with_a_typed_error_naming_the_request(
    clock: FakeClock,
) -> None:
    """After `max_attempts` 500s the error names method, path, status, id, message, request id."""
    handler, seen = scripted(error(500, "server_error"))
    async with make_client(clock, handler, max_attempts=4, backoff_max=3.0) as client:
        with pytest.raises(RetryableSourceError) as caught:
            await client.get_job("j-1")
    assert len(seen) == 4 and len(clock.sleeps) == 3
    assert all(s <= 3.0 for s in clock.sleeps)
    text = str(caught.value)
    for part in ("GET", "/v2/gen-ai/indexing_jobs/j-1", "500", "server_error", "req-42"):
        assert part in text
    assert "server_error happened" in text
    assert caught.value.status == 500


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")],
)
async def test_transport_failures_are_retried_and_then_translated(
    clock: FakeClock, failure: Exception
) -> None:
    """Connection errors and timeouts are retried, then raised as `RetryableSourceError`."""
    handler, seen = scripted(failure)
    async with make_client(clock, handler, max_attempts=3) as client:
        with pytest.raises(RetryableSourceError) as caught:
            await client.list_kb_jobs("kb-1")
    assert len(seen) == 3
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, httpx.HTTPError)
    assert type(failure).__name__ in str(caught.value)


async def test_a_transport_failure_then_success_returns_the_answer(clock: FakeClock) -> None:
    """A single timeout costs one retry, not the call."""
    handler, _ = scripted(httpx.ConnectTimeout("slow"), ok({"jobs": [job("j-1")]}))
    async with make_client(clock, handler) as client:
        jobs = await client.list_kb_jobs("kb-1")
    assert [j.uuid for j in jobs] == ["j-1"]


async def test_401_names_the_token_source_and_never_the_token(clock: FakeClock) -> None:
    """A 401 is not retried; its message says 401, token refused, and where the token came from."""
    handler, seen = scripted(error(401, "unauthorized"))
    with capture_logs() as logs:
        async with make_client(clock, handler) as client:
            with pytest.raises(Unauthorized) as caught:
                await client.list_knowledge_bases()
    text = str(caught.value)
    assert "401" in text and "refused the token" in text and SOURCE in text
    assert TOKEN not in text and "dop_v1_" not in text
    assert (caught.value.api_id, caught.value.request_id) == ("unauthorized", "req-42")
    assert len(seen) == 1 and clock.sleeps == []
    assert TOKEN not in repr(logs)


@pytest.mark.parametrize(
    ("operation", "scope"),
    [
        ("read", "genai:read"),
        ("create", "genai:create"),
        ("cancel", "genai:update"),
    ],
)
async def test_403_says_which_scope_the_token_lacks(
    clock: FakeClock, operation: str, scope: str
) -> None:
    """A 403 names the missing scope for the kind of request (read, create, cancel)."""
    handler, seen = scripted(error(403, "forbidden"))
    async with make_client(clock, handler) as client:
        with pytest.raises(Forbidden) as caught:
            if operation == "read":
                await client.get_job("j-1")
            elif operation == "create":
                await client.create_job("kb-1", ["ds-1"])
            else:
                await client.cancel_job("j-1")
    assert scope in str(caught.value) and SOURCE in str(caught.value)
    assert len(seen) == 1


async def test_404_raises_not_found_with_the_api_error_fields(clock: FakeClock) -> None:
    """A 404 is raised at once as `NotFound` carrying id, message and request id."""
    handler, seen = scripted(error(404, "not_found"))
    async with make_client(clock, handler) as client:
        with pytest.raises(NotFound) as caught:
            await client.get_knowledge_base("kb-x")
    assert caught.value.api_message == "not_found happened"
    assert caught.value.path == "/v2/gen-ai/knowledge_bases/kb-x"
    assert len(seen) == 1


async def test_other_4xx_raise_api_status_error_without_retry(clock: FakeClock) -> None:
    """A 422 is nobody's transient problem: one request, an `ApiStatusError`."""
    handler, seen = scripted(error(422, "unprocessable_entity"))
    async with make_client(clock, handler) as client:
        with pytest.raises(ApiStatusError) as caught:
            await client.create_job("kb-1")
    assert caught.value.status == 422 and not caught.value.retryable
    assert len(seen) == 1


async def test_an_error_without_a_json_body_uses_the_request_id_header(clock: FakeClock) -> None:
    """An HTML error page still gives a typed error, with `x-request-id` as the request id."""
    page = httpx.Response(404, text="<html>nope</html>", headers={"x-request-id": "hdr-1"})
    handler, _ = scripted(page)
    async with make_client(clock, handler) as client:
        with pytest.raises(NotFound) as caught:
            await client.get_job("j-1")
    assert caught.value.request_id == "hdr-1" and caught.value.api_id is None


async def test_a_redirect_is_not_followed(clock: FakeClock) -> None:
    """A 302 to another host is reported, never followed with the token."""
    moved = httpx.Response(302, headers={"location": "https://evil.example/v2/gen-ai/jobs"})
    handler, seen = scripted(moved)
    async with make_client(clock, handler) as client:
        with pytest.raises(ApiStatusError, match="Redirects are not followed"):
            await client.get_job("j-1")
    assert [r.url.host for r in seen] == ["api.example.test"]


@pytest.mark.parametrize(
    "body",
    [b"<html>oops</html>", b'{"job": {"uuid": "j-1", "phase": "BATCH_', b"", b"[1, 2]"],
)
async def test_a_2xx_with_an_unreadable_body_is_retried_then_malformed(
    clock: FakeClock, body: bytes
) -> None:
    """A 200 whose body is not JSON (or not the right JSON) is retried, then `MalformedResponse`."""
    handler, seen = scripted(httpx.Response(200, content=body))
    async with make_client(clock, handler, max_attempts=3) as client:
        with pytest.raises(MalformedResponse, match="GET /v2/gen-ai/indexing_jobs/j-1"):
            await client.get_job("j-1")
    assert len(seen) == 3


async def test_a_truncated_body_then_a_good_one_succeeds(clock: FakeClock) -> None:
    """One truncated answer costs one retry."""
    handler, _ = scripted(httpx.Response(200, content=b'{"job": {"uu'), ok(JOB_BODY))
    async with make_client(clock, handler) as client:
        assert (await client.get_job("j-1")).uuid == "j-1"


async def test_a_create_that_may_have_reached_the_api_is_never_sent_twice(
    clock: FakeClock,
) -> None:
    """POST after a 500 or a read timeout is not retried: the job may already exist."""
    for failure in (error(500, "server_error"), httpx.ReadTimeout("slow")):
        handler, seen = scripted(failure, ok(JOB_BODY))
        async with make_client(clock, handler) as client:
            with pytest.raises(RetryableSourceError):
                await client.create_job("kb-1")
        assert len(seen) == 1


async def test_a_create_refused_with_429_is_retried(clock: FakeClock) -> None:
    """A 429 means the API did nothing, so even a POST is sent again."""
    handler, seen = scripted(error(429, "too_many_requests", **{"retry-after": "2"}), ok(JOB_BODY))
    async with make_client(clock, handler) as client:
        created = await client.create_job("kb-1", ["ds-1"])
    assert created.uuid == "j-1" and len(seen) == 2
    assert json.loads(seen[1].content) == {
        "knowledge_base_uuid": "kb-1",
        "data_source_uuids": ["ds-1"],
    }


async def test_cancel_puts_the_uuid_to_the_cancel_path(clock: FakeClock) -> None:
    """`cancel_job` sends `PUT …/{uuid}/cancel` with `{"uuid"}` and returns the job."""
    handler, seen = scripted(ok({"job": job("j-1", status="INDEX_JOB_STATUS_CANCELLED")}))
    async with make_client(clock, handler) as client:
        cancelled = await client.cancel_job("j-1")
    assert cancelled.outcome is not None
    assert (seen[0].method, seen[0].url.path) == ("PUT", "/v2/gen-ai/indexing_jobs/j-1/cancel")
    assert json.loads(seen[0].content) == {"uuid": "j-1"}


def paged_handler(
    items: list[dict[str, Any]], key: str, *, before_page: Callable[[int], None] | None = None
) -> tuple[Handler, list[int]]:
    """A list endpoint that pages `items` (read live, so tests can change it) like the API."""
    pages_asked: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        per_page = int(request.url.params["per_page"])
        if before_page is not None:
            before_page(page)
        pages_asked.append(page)
        pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links: dict[str, str] = {"first": "f", "last": "l"}
        if page < pages:
            links["next"] = f"?page={page + 1}"
        if page > 1:
            links["previous"] = f"?page={page - 1}"
        meta = {"total": len(items), "page": page, "pages": pages}
        return ok({key: chunk, "links": {"pages": links}, "meta": meta})

    return handler, pages_asked


async def test_a_list_is_read_over_all_its_pages(clock: FakeClock) -> None:
    """450 jobs at 200 per page: pages 1, 2, 3, every job once, in order."""
    items = [job(f"j-{n:03}") for n in range(450)]
    handler, pages = paged_handler(items, "jobs")
    async with make_client(clock, handler) as client:
        jobs = await client.list_jobs()
    assert pages == [1, 2, 3]
    assert [j.uuid for j in jobs] == [i["uuid"] for i in items]


async def test_per_page_is_capped_at_200(clock: FakeClock) -> None:
    """Asking for more than the API allows is clamped to 200."""
    handler, seen = scripted(ok({"jobs": []}))
    async with make_client(clock, handler, per_page=5000) as client:
        await client.list_jobs()
    assert seen[0].url.params["per_page"] == "200"


async def test_an_item_pushed_down_a_page_is_not_duplicated(clock: FakeClock) -> None:
    """A job created between pages 1 and 2 repeats an item; the result holds each uuid once."""
    items = [job(f"j-{n}") for n in range(6)]

    def insert_once(page: int) -> None:
        if page == 2 and items[0]["uuid"] != "j-new":
            items.insert(0, job("j-new"))

    handler, pages = paged_handler(items, "jobs", before_page=insert_once)
    async with make_client(clock, handler, per_page=2) as client:
        jobs = await client.list_jobs()
    uuids = [j.uuid for j in jobs]
    assert len(uuids) == len(set(uuids))
    assert set(uuids) == {f"j-{n}" for n in range(6)} | {"j-new"}
    assert pages == [1, 2, 3, 4, 1, 2, 3, 4]  # the shift triggered one more full sweep


async def test_an_item_pulled_up_onto_a_read_page_is_not_lost(clock: FakeClock) -> None:
    """A job deleted from page 1 while page 2 is read moves j-2 onto page 1; it is still found."""
    items = [job(f"j-{n}") for n in range(6)]

    def delete_once(page: int) -> None:
        if page == 2 and items[0]["uuid"] == "j-0":
            del items[0]

    handler, _ = paged_handler(items, "jobs", before_page=delete_once)
    async with make_client(clock, handler, per_page=2) as client:
        jobs = await client.list_jobs()
    assert sorted(j.uuid for j in jobs) == [f"j-{n}" for n in range(6)]


async def test_a_list_that_never_settles_costs_a_bounded_number_of_sweeps(
    clock: FakeClock,
) -> None:
    """A list that grows on every page read still ends, after three sweeps."""
    items = [job(f"j-{n}") for n in range(4)]
    counter = iter(range(10_000))

    def grow(page: int) -> None:
        items.insert(0, job(f"new-{next(counter)}"))

    handler, pages = paged_handler(items, "jobs", before_page=grow)
    async with make_client(clock, handler, per_page=2) as client:
        jobs = await client.list_jobs()
    assert pages.count(1) == 3
    assert {f"j-{n}" for n in range(4)} <= {j.uuid for j in jobs}


@pytest.mark.parametrize(
    ("body", "expected_requests"),
    [
        # a next link forever but meta says the end: meta wins
        (
            {
                "jobs": [job("a")],
                "links": {"pages": {"next": "x"}},
                "meta": {"page": 1, "pages": 1},
            },
            1,
        ),
        # an empty page ends the list whatever the links say
        ({"jobs": [], "links": {"pages": {"next": "x"}}}, 1),
    ],
)
async def test_paging_stops_on_the_api_end_signals(
    clock: FakeClock, body: dict[str, Any], expected_requests: int
) -> None:
    """Paging stops at `meta.page >= meta.pages` and on an empty page."""
    handler, seen = scripted(ok(body))
    async with make_client(clock, handler) as client:
        await client.list_jobs()
    assert len(seen) == expected_requests


async def test_a_list_whose_next_link_never_ends_is_a_failed_read_within_its_bounds(
    clock: FakeClock,
) -> None:
    """A server that always says `next` (no `meta`) cannot keep the client paging: past the
    pages `max_list_items` allows at `per_page`, the read fails, and no partial list is
    returned (a list cut short would make present knowledge bases look missing)."""
    counter = iter(range(10_000))

    def endless(request: httpx.Request) -> httpx.Response:
        items = [job(f"j-{next(counter)}") for _ in range(5)]  # half pages: items stay low
        return ok({"jobs": items, "links": {"pages": {"next": "more"}}})

    async with make_client(clock, endless, per_page=10, max_list_items=1000) as client:
        with pytest.raises(MalformedResponse, match="a list without end"):
            await client.list_jobs()
    assert client.requests_sent == 1000 // 10 + 1


async def test_unusable_items_are_skipped_and_logged(clock: FakeClock) -> None:
    """A job without a uuid is skipped with a warning; the rest of the page is kept."""
    handler, _ = scripted(ok({"jobs": [job("j-1"), {"phase": "BATCH_JOB_PHASE_RUNNING"}]}))
    with capture_logs() as logs:
        async with make_client(clock, handler) as client:
            jobs = await client.list_jobs()
    assert [j.uuid for j in jobs] == ["j-1"]
    skipped = [e for e in logs if e["event"] == "api_item_skipped"]
    assert skipped and "no uuid" in skipped[0]["reason"]


def max_in_any_minute(times: list[float]) -> int:
    """The most timestamps that fall in any half-open 60-second window."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 60.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_the_budget_holds_requests_per_sliding_minute_over_500_requests(
    clock: FakeClock,
) -> None:
    """500 requests at a budget of 120/min: no 60 s window ever sees more than 120."""
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.now)
        return ok(JOB_BODY)

    async with make_client(clock, handler, max_requests_per_minute=120) as client:
        for _ in range(500):
            await client.get_job("j-1")
    assert len(sent_at) == 500
    assert max_in_any_minute(sent_at) == 120
    assert clock.now >= 4 * 60  # 500 requests cannot fit in less than four full windows


async def test_the_budget_holds_for_concurrent_callers(clock: FakeClock) -> None:
    """Callers in parallel share one budget."""
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.now)
        return ok(JOB_BODY)

    async with make_client(clock, handler, max_requests_per_minute=30) as client:
        await asyncio.gather(*(client.get_job("j-1") for _ in range(100)))
    assert len(sent_at) == 100
    assert max_in_any_minute(sorted(sent_at)) <= 30


async def test_low_ratelimit_remaining_spreads_requests_until_the_reset(clock: FakeClock) -> None:
    """With 10 requests left and the reset 100 s away, requests go out 10 s apart."""
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.now)
        headers = {"ratelimit-remaining": "10", "ratelimit-reset": str(int(clock.wall() + 100))}
        return ok(JOB_BODY, **headers)

    async with make_client(clock, handler, low_remaining=250) as client:
        for _ in range(4):
            await client.get_job("j-1")
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert gaps == pytest.approx([10.0, 10.0, 10.0])


async def test_plenty_of_ratelimit_remaining_does_not_slow_down(clock: FakeClock) -> None:
    """Above `low_remaining` the client does not pace at all."""
    handler, _ = scripted(ok(JOB_BODY, **{"ratelimit-remaining": "4000", "ratelimit-reset": "1"}))
    async with make_client(clock, handler) as client:
        for _ in range(5):
            await client.get_job("j-1")
    assert clock.sleeps == []


async def test_rate_limit_and_request_counters_and_records_are_exposed(clock: FakeClock) -> None:
    """The last rate-limit headers, request counts and one record per attempt are visible."""
    records: list[RequestRecord] = []
    handler, _ = scripted(
        error(503, "unavailable"),
        ok(JOB_BODY, **{"RateLimit-Limit": "5000", "RateLimit-Remaining": "4999"}),
    )
    async with make_client(clock, handler, on_response=records.append) as client:
        await client.get_job("j-1")
    assert client.rate_limit is not None
    assert (client.rate_limit.limit, client.rate_limit.remaining) == (5000, 4999)
    assert client.requests_sent == 2
    assert client.requests_by_endpoint == {"GET /v2/gen-ai/indexing_jobs/{uuid}": 2}
    assert [(r.endpoint, r.status, r.attempt) for r in records] == [
        ("/v2/gen-ai/indexing_jobs/{uuid}", 503, 1),
        ("/v2/gen-ai/indexing_jobs/{uuid}", 200, 2),
    ]


async def test_every_request_is_logged_at_debug_without_the_token(clock: FakeClock) -> None:
    """Each attempt logs `api_request` with method, path, status and budget; never the token."""
    handler, _ = scripted(ok({"indexed_data_sources": [{"status": "DATA_SOURCE_STATUS_UPDATED"}]}))
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            async with make_client(clock, handler) as client:
                sources = await client.list_job_data_sources("j-1")
    finally:
        structlog.configure(**saved)
    assert len(sources) == 1
    requests = [e for e in logs if e["event"] == "api_request"]
    assert len(requests) == 1
    entry = requests[0]
    assert entry["log_level"] == "debug"
    assert (entry["method"], entry["status"]) == ("GET", 200)
    assert entry["path"] == "/v2/gen-ai/indexing_jobs/j-1/data_sources"
    assert "budget_left" in entry and "duration_s" in entry
    assert TOKEN not in repr(logs) and "Bearer" not in repr(logs)


@pytest.mark.parametrize("token", ["", "   ", "dop_v1_abc\ndef", "tökén"])
def test_an_unusable_token_is_a_config_error_that_does_not_echo_it(token: str) -> None:
    """An empty token or one a header cannot carry is refused up front, naming its source."""
    with pytest.raises(ConfigError) as caught:
        ApiClient("https://api.example.test", token, token_source=SOURCE)
    assert SOURCE in str(caught.value)
    if token.strip():
        assert token.strip() not in str(caught.value)

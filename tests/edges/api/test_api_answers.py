"""Broken or hostile answers, one kind each, through `httpx.MockTransport`: every read ends in
values or a `SourceError`, within its deadline and its caps, and one bad item hides nothing.

The kinds (issue 11): an answer that never ends, an answer too big (bytes, or items), an
answer that cannot be parsed (whatever the exception), pages without end, copies of one job
that disagree within one answer, and items that cannot be read.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from tests.edges.api.clients import settings
from watcher.core.errors import MalformedResponse, RetryableSourceError, SourceError
from watcher.core.model import Phase
from watcher.edges.api import wire
from watcher.edges.api.client import ApiClient

TOKEN = "dop_v1_" + "a" * 64
BASE = "https://api.example.test"
GUARD_S = 10.0  # a read that is not over by then would never be: the test fails
Handler = Callable[[httpx.Request], httpx.Response]


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


def client_for(handler: Handler, **overrides: Any) -> ApiClient:
    return ApiClient(
        settings(BASE, **overrides),
        TOKEN,
        token_source="test",
        transport=httpx.MockTransport(handler),
        sleep=no_wait,
    )


def kb(uuid: str, **fields: Any) -> dict[str, Any]:
    return {"uuid": uuid, "name": f"{uuid}-name", **fields}


def job(
    uuid: str, phase: str = "RUNNING", status: str = "IN_PROGRESS", **fields: Any
) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "phase": f"BATCH_JOB_PHASE_{phase}",
        "status": f"INDEX_JOB_STATUS_{status}",
        "updated_at": "2026-11-30T10:00:00Z",
        **fields,
    }


def raw_ok(content: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(
        200, content=content, headers={"content-type": "application/json", **headers}
    )


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


# --- an answer that never ends ------------------------------------------------------------


async def trickle() -> AsyncIterator[bytes]:
    """Headers went out; now one byte every 50 ms, for ever (faster than any read timeout)."""
    yield b'{"knowledge_bases": ['
    while True:
        await asyncio.sleep(0.05)
        yield b" "


async def test_an_answer_that_trickles_forever_ends_at_the_request_deadline() -> None:
    """The deadline covers the whole answer, not the gap between two bytes: each attempt ends
    after `timeout`, and the read is a retryable failure after its attempts."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=trickle())

    async with client_for(handler, timeout=0.3, max_attempts=2) as client:
        with pytest.raises(RetryableSourceError, match=r"no complete answer within 0.3s"):
            await asyncio.wait_for(client.list_knowledge_bases(), GUARD_S)
    assert len(seen) == 2


async def test_a_request_that_gets_no_headers_at_all_ends_at_the_same_deadline() -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async with client_for(silent, timeout=0.2, max_attempts=1) as client:  # type: ignore[arg-type]
        with pytest.raises(RetryableSourceError, match="no complete answer"):
            await asyncio.wait_for(client.get_job("j-1"), GUARD_S)


# --- an answer too big ----------------------------------------------------------------------


def padded_page(size: int) -> bytes:
    """A valid page of one KB whose name pads the body to about `size` bytes."""
    return json.dumps({"knowledge_bases": [kb("kb-1", name="x" * size)]}).encode()


async def test_an_answer_over_the_size_cap_is_a_failed_read_logged_with_its_size() -> None:
    """A valid page of 2 MB with a 1 MiB cap: refused, not parsed, not retried, logged."""
    seen: list[httpx.Request] = []
    parsed: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return raw_ok(padded_page(2_000_000))

    original = wire.parse_knowledge_base

    def counting(obj: object) -> Any:
        parsed.append(obj)
        return original(obj)

    with capture_logs() as logs:
        async with client_for(handler, max_response_bytes=1024 * 1024) as client:
            client._kb_memo._parse = counting  # every parse of a KB item goes through it
            with pytest.raises(MalformedResponse, match=r"larger than 1,048,576 bytes"):
                await client.list_knowledge_bases()
    assert len(seen) == 1, "an answer over the cap would be as large again: not retried"
    assert parsed == []
    [logged] = events(logs, "api_response_too_large")
    assert logged["limit_bytes"] == 1024 * 1024 and logged["size_bytes"] > 1024 * 1024


async def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read() -> None:
    pulled: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        pulled.append(1)
        yield b"{}"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body(), headers={"content-length": "50000000"})

    with capture_logs() as logs:
        async with client_for(handler, max_response_bytes=1024 * 1024) as client:
            with pytest.raises(MalformedResponse, match="declared 50,000,000 bytes"):
                await client.list_knowledge_bases()
    assert pulled == []
    assert events(logs, "api_response_too_large")[0]["declared"] is True


async def test_a_small_compressed_answer_that_inflates_past_the_cap_is_refused() -> None:
    """50 MB of spaces gzip to ~50 kB: the cap counts the bytes as they inflate."""
    bomb = gzip.compress(b'{"knowledge_bases": [' + b" " * 50_000_000 + b"]}")
    assert len(bomb) < 100_000

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(bomb), 16_384):
            yield bomb[start : start + 16_384]

    def handler(request: httpx.Request) -> httpx.Response:
        assert "gzip" in request.headers["accept-encoding"]
        return httpx.Response(200, content=stream(), headers={"content-encoding": "gzip"})

    async with client_for(handler, max_response_bytes=1024 * 1024) as client:
        with pytest.raises(MalformedResponse, match=r"at least 1,048,577 bytes"):
            await client.list_knowledge_bases()


async def test_a_compressed_answer_within_the_cap_reads_as_usual() -> None:
    body = gzip.compress(json.dumps({"knowledge_bases": [kb("kb-1")]}).encode())

    async def stream() -> AsyncIterator[bytes]:
        yield body[:10]
        yield body[10:]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=stream(), headers={"content-encoding": "gzip"})

    async with client_for(handler) as client:
        assert [k.uuid for k in await client.list_knowledge_bases()] == ["kb-1"]


async def test_a_list_of_more_items_than_the_cap_is_refused_before_any_is_parsed() -> None:
    """One answer carrying 200,000 small KBs (junk that would be kept in the store)."""
    junk = [{"uuid": f"junk-{n}"} for n in range(200_000)]
    body = json.dumps({"knowledge_bases": junk, "jobs": junk})
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return raw_ok(body.encode())

    with capture_logs() as logs:
        async with client_for(handler, max_list_items=20_000) as client:
            with pytest.raises(MalformedResponse, match=r"200,000 items, more than the 20,000"):
                await client.list_knowledge_bases()
            with pytest.raises(MalformedResponse, match=r"200,000 items"):
                await client.list_kb_jobs("kb-1")
    assert len(seen) == 2, "a list too long would be as long again: not retried"
    assert len(events(logs, "api_list_too_long")) == 2


async def test_a_meta_total_over_the_cap_is_refused_on_the_first_page() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        links = {"pages": {"next": "?page=2"}}
        return httpx.Response(
            200, json={"jobs": [job("j-1")], "links": links, "meta": {"total": 10**9}}
        )

    async with client_for(handler) as client:
        with pytest.raises(MalformedResponse, match=r"meta.total says 1,000,000,000 items"):
            await client.list_jobs()
    assert len(seen) == 1


# --- an answer that cannot be parsed ----------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"knowledge_bases": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
async def test_json_nested_deeper_than_python_recurses_is_a_failed_read(body: bytes) -> None:
    """`RecursionError` from the decoder is an unreadable answer like any other."""
    async with client_for(lambda request: raw_ok(body), max_attempts=2) as client:
        for read in (
            client.list_knowledge_bases,
            client.list_jobs,
            lambda: client.list_kb_jobs("kb-1"),
            lambda: client.get_job("j-1"),
            lambda: client.list_job_data_sources("j-1"),
        ):
            with pytest.raises(MalformedResponse, match="RecursionError"):
                await read()


async def test_an_error_answer_with_a_body_nested_too_deep_is_still_its_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=DEEP)

    async with client_for(handler, max_attempts=2) as client:
        with pytest.raises(RetryableSourceError) as caught:
            await client.get_job("j-1")
    assert caught.value.status == 503


@pytest.mark.parametrize(
    "error",
    [
        RecursionError("deep"),
        TypeError("unhashable"),
        KeyError("k"),
        AttributeError("a"),
        IndexError("i"),
        ZeroDivisionError("z"),
        UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"),
        OverflowError("o"),
        MemoryError(),
        AssertionError("a"),
        RuntimeError("r"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_no_exception_type_raised_while_reading_an_answer_escapes_as_itself(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """Whatever breaks while a page is parsed, the read raises a `SourceError` (which the
    cycle counts as a failed API read), never the exception itself."""

    def broken(*args: object, **kwargs: object) -> Any:
        raise error

    monkeypatch.setattr(wire, "parse_page", broken)
    monkeypatch.setattr(wire, "parse_single", broken)
    monkeypatch.setattr(wire, "parse_items", broken)
    async with client_for(lambda r: raw_ok(b"{}"), max_attempts=2) as client:
        for read in (
            client.list_knowledge_bases,
            lambda: client.get_job("j"),
            lambda: client.list_kb_jobs("k"),
        ):
            with pytest.raises(SourceError) as caught:
                await read()
            assert type(error).__name__ in str(caught.value)


# --- pages without end ------------------------------------------------------------------------


def page_handler(
    answer: Callable[[int], dict[str, Any]],
) -> tuple[Handler, list[int]]:
    asked: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        asked.append(number)
        return httpx.Response(200, json=answer(number))

    return handler, asked


async def test_a_next_link_that_points_to_its_own_page_is_a_loop_after_one_request() -> None:
    """A server that ignores `page` and links each page to itself."""
    url = f"{BASE}/v2/gen-ai/knowledge_bases?page=1&per_page=200"
    handler, asked = page_handler(
        lambda n: {"knowledge_bases": [kb("kb-1")], "links": {"pages": {"next": url}}}
    )
    async with client_for(handler) as client:
        with pytest.raises(MalformedResponse, match="next link points back to page 1: a loop"):
            await client.list_knowledge_bases()
    assert asked == [1]


async def test_an_answer_for_another_page_than_the_one_asked_is_a_loop() -> None:
    handler, asked = page_handler(
        lambda n: {
            "jobs": [job("j-1")],
            "links": {"pages": {"next": f"?page={n + 1}"}},
            "meta": {"page": 1, "pages": 5, "total": 5},
        }
    )
    async with client_for(handler, per_page=1) as client:
        with pytest.raises(MalformedResponse, match="asked for page 2, the API answered page 1"):
            await client.list_jobs()
    assert asked == [1, 2]


async def test_meta_pages_of_a_billion_stops_where_meta_total_says_and_is_a_failed_read() -> None:
    """Six items at two per page, but `pages: 10**9` and a `next` link on every page, each
    with items: pages 1..4 are asked (three, plus the slack), each once, then the read fails."""

    def answer(n: int) -> dict[str, Any]:
        return {
            "jobs": [job(f"j-{n}-a"), job(f"j-{n}-b")],
            "links": {"pages": {"next": f"?page={n + 1}"}},
            "meta": {"page": n, "pages": 10**9, "total": 6},
        }

    handler, asked = page_handler(answer)
    async with client_for(handler, per_page=2) as client:
        with pytest.raises(MalformedResponse, match=r"past the 4 pages that meta.total \(6\)"):
            await client.list_jobs()
    assert asked == [1, 2, 3, 4]


async def test_a_page_is_never_asked_for_twice_in_one_pass() -> None:
    """A list that shifts while read gets a second pass; within each pass pages only grow."""
    items = [job(f"j-{n}") for n in range(6)]
    passes: list[list[int]] = [[]]

    def answer(n: int) -> dict[str, Any]:
        if n == 1 and passes[-1]:
            passes.append([])
        passes[-1].append(n)
        if len(passes) == 1 and n == 2:
            items.insert(0, job("j-new"))
        chunk = items[(n - 1) * 2 : n * 2]
        pages = -(-len(items) // 2)
        links = {"pages": {"next": f"?page={n + 1}"}} if n < pages else {}
        return {
            "jobs": chunk,
            "links": links,
            "meta": {"page": n, "pages": pages, "total": len(items)},
        }

    handler, _ = page_handler(answer)
    async with client_for(handler, per_page=2) as client:
        jobs = await client.list_jobs()
    assert {j.uuid for j in jobs} == {f"j-{n}" for n in range(6)} | {"j-new"}
    assert passes == [[1, 2, 3, 4], [1, 2, 3, 4]]


# --- copies of one job that disagree within one answer ---------------------------------------


async def test_a_running_job_and_a_completed_copy_in_one_list_are_left_out_and_logged() -> None:
    """The issue's case: no copy is believed; the other jobs of the list are kept."""
    running = job("j-1")
    completed = job("j-1", phase="SUCCEEDED", status="COMPLETED")
    body = {"jobs": [running, job("j-2", phase="SUCCEEDED", status="COMPLETED"), completed]}
    with capture_logs() as logs:
        async with client_for(lambda r: httpx.Response(200, json=body)) as client:
            first = await client.list_kb_jobs("kb-1")
            again = await client.list_kb_jobs("kb-1")
    assert [j.uuid for j in first] == [j.uuid for j in again] == ["j-2"]
    [logged] = events(logs, "api_job_copies_disagree")  # once, not once per read
    assert logged["job"] == "j-1"
    assert logged["copies"] == [
        "BATCH_JOB_PHASE_RUNNING/INDEX_JOB_STATUS_IN_PROGRESS",
        "BATCH_JOB_PHASE_SUCCEEDED/INDEX_JOB_STATUS_COMPLETED",
    ]


async def test_two_identical_copies_of_a_job_are_one_job() -> None:
    body = {"jobs": [job("j-1"), job("j-1")]}
    with capture_logs() as logs:
        async with client_for(lambda r: httpx.Response(200, json=body)) as client:
            jobs = await client.list_kb_jobs("kb-1")
    assert [j.uuid for j in jobs] == ["j-1"]
    assert events(logs, "api_job_copies_disagree") == []


async def test_a_page_of_the_account_job_list_with_disagreeing_copies_leaves_the_job_out() -> None:
    body = {"jobs": [job("j-1"), job("j-1", phase="FAILED", status="FAILED"), job("j-2")]}
    async with client_for(lambda r: httpx.Response(200, json=body)) as client:
        assert [j.uuid for j in await client.list_jobs()] == ["j-2"]


async def test_a_kb_listed_twice_with_disagreeing_latest_jobs_is_kept_without_that_job() -> None:
    body = {
        "knowledge_bases": [
            kb("kb-1", last_indexing_job=job("j-1")),
            kb("kb-2", last_indexing_job=job("j-2")),
            kb("kb-1", last_indexing_job=job("j-1", phase="SUCCEEDED", status="COMPLETED")),
        ],
        "meta": {"page": 1, "pages": 1, "total": 3},
    }
    async with client_for(lambda r: httpx.Response(200, json=body)) as client:
        kbs = {k.uuid: k for k in await client.list_knowledge_bases()}
    assert set(kbs) == {"kb-1", "kb-2"}
    assert kbs["kb-1"].last_indexing_job is None
    assert kbs["kb-2"].last_indexing_job is not None


# --- items that cannot be read ---------------------------------------------------------------


def kb_page_bytes(*items: bytes) -> bytes:
    return b'{"knowledge_bases": [' + b",".join(items) + b'], "meta": {"page": 1, "pages": 1}}'


GOOD = json.dumps(kb("kb-good", last_indexing_job=job("j-good"))).encode()


@pytest.mark.parametrize(
    "name",
    [b'"bad-\xff\xfe-kb"', b'"\\ud800-lone"', b'"cut-\xe2\x82"'],
    ids=["invalid-bytes", "escaped-lone-surrogate", "cut-sequence"],
)
async def test_a_kb_name_that_is_not_valid_utf8_costs_only_that_name(name: bytes) -> None:
    """The issue's case: the KB is still watched (its name as if missing), its job read, the
    others untouched; the unreadable text is logged once, not once per cycle."""
    bad = (
        b'{"uuid": "kb-bad", "name": '
        + name
        + b', "last_indexing_job": '
        + json.dumps(job("j-bad")).encode()
        + b"}"
    )
    with capture_logs() as logs:
        async with client_for(lambda r: raw_ok(kb_page_bytes(GOOD, bad))) as client:
            first = {k.uuid: k for k in await client.list_knowledge_bases()}
            await client.list_knowledge_bases()
    assert set(first) == {"kb-good", "kb-bad"}
    assert first["kb-bad"].name is None
    assert first["kb-bad"].last_indexing_job is not None
    assert first["kb-bad"].last_indexing_job.phase is Phase.RUNNING
    assert first["kb-good"].name == "kb-good-name"
    [logged] = events(logs, "api_text_unreadable")
    assert (logged["field"], logged["item"]) == ("knowledge_bases[].name", "kb-bad")


async def test_an_item_whose_uuid_cannot_be_read_is_dropped_and_the_rest_kept() -> None:
    bad = b'{"uuid": "kb-\xff", "name": "x"}'
    with capture_logs() as logs:
        async with client_for(lambda r: raw_ok(kb_page_bytes(GOOD, bad, GOOD))) as client:
            kbs = await client.list_knowledge_bases()
            await client.list_knowledge_bases()
    assert [k.uuid for k in kbs] == ["kb-good"]
    skipped = events(logs, "api_item_skipped")
    assert len(skipped) == 1 and "uuid is not valid UTF-8" in skipped[0]["reason"]


async def test_unreadable_text_in_a_job_state_is_an_unknown_state_never_a_crash() -> None:
    body = (
        b'{"job": {"uuid": "j-1", "phase": "BATCH_JOB_PHASE_\xffSUCCEEDED", "status": "\\udc80"}}'
    )
    async with client_for(lambda r: raw_ok(body)) as client:
        got = await client.get_job("j-1")
    assert (got.phase_raw, got.status_raw, got.is_terminal) == (None, None, False)


async def test_items_of_the_wrong_types_are_dropped_and_the_rest_kept() -> None:
    body = {
        "knowledge_bases": [
            7,
            "kb-as-text",
            ["a"],
            {"uuid": ["not", "text"]},
            kb("kb-1", name=5, created_at={"x": 1}, last_indexing_job=[1, 2]),
            {
                "uuid": "kb-2",
                "last_indexing_job": {"uuid": "j", "data_source_jobs": "x", "total_tokens": [1]},
            },
        ],
        "links": [],
        "meta": {"total": "many", "page": {}},
    }
    async with client_for(lambda r: httpx.Response(200, json=body)) as client:
        kbs = {k.uuid: k for k in await client.list_knowledge_bases()}
    assert set(kbs) == {"kb-1", "kb-2"}
    assert kbs["kb-1"].name is None and kbs["kb-1"].last_indexing_job is None
    job2 = kbs["kb-2"].last_indexing_job
    assert job2 is not None and job2.data_source_jobs == () and job2.total_tokens is None

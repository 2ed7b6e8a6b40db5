"""The KB list read every cycle: a page of the same bytes as at the last complete read is
neither decoded nor parsed again, and any byte that differs is read afresh: a changed job
inside an otherwise identical page, a malformed item, a failed read."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from tests.edges.api.clients import settings
from watcher.core.errors import SourceError
from watcher.core.model import KnowledgeBase
from watcher.edges.api import caller, copies
from watcher.edges.api.client import ApiClient

TOKEN = "dop_v1_" + "e" * 64
RUNNING, DONE = "INDEX_JOB_STATUS_IN_PROGRESS", "INDEX_JOB_STATUS_COMPLETED"


def kb(n: int, status: str = DONE) -> dict[str, Any]:
    return {
        "uuid": f"kb-{n}",
        "name": f"docs-{n}",
        "last_indexing_job": {
            "uuid": f"job-{n}",
            "knowledge_base_uuid": f"kb-{n}",
            "status": status,
        },
    }


class Account:
    """The KB list, served two per page; `broken` pages answer 503."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.broken: set[int] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        if page in self.broken:
            return httpx.Response(503, json={"id": "unavailable", "message": "try later"})
        last = (len(self.items) + 1) // 2
        body: dict[str, Any] = {"knowledge_bases": self.items[2 * page - 2 : 2 * page]}
        if page < last:
            body["links"] = {"pages": {"next": f"https://api.example.test/x?page={page + 1}"}}
        body["meta"] = {"page": page, "pages": last, "total": len(self.items)}
        return httpx.Response(200, content=json.dumps(body).encode())


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every page of the KB list the client decoded (not the error answers), in order."""
    bodies: list[bytes] = []
    real: Callable[[bytes], object] = caller.decode_json

    def spy(content: bytes) -> object:
        if b'"knowledge_bases"' in content:
            bodies.append(content)
        return real(content)

    monkeypatch.setattr(caller, "decode_json", spy)
    return bodies


async def noop(_: float) -> None:
    return None


def client(account: Account) -> ApiClient:
    return ApiClient(
        settings("https://api.example.test", per_page=2, max_attempts=1),
        TOKEN,
        token_source="test",
        transport=httpx.MockTransport(account),
        sleep=noop,
        rng=random.Random(7),
    )


async def statuses(c: ApiClient) -> dict[str, str | None]:
    return {
        k.uuid: k.last_indexing_job.status.value if k.last_indexing_job else None
        for k in await c.list_knowledge_bases()
    }


async def test_pages_of_the_same_bytes_are_not_decoded_again(decoded: list[bytes]) -> None:
    account = Account([kb(1), kb(2), kb(3)])
    async with client(account) as c:
        first = await c.list_knowledge_bases()
        again = await c.list_knowledge_bases()
    assert [k.uuid for k in again] == ["kb-1", "kb-2", "kb-3"]
    assert again == first
    assert len(decoded) == 2  # the two pages of the first read, and nothing since


async def test_a_page_of_the_same_bytes_is_not_settled_again_and_keeps_a_disagreeing_job_out(
    decoded: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two KBs naming one job in two states: the job is left out of both (`copies`), on the
    kept page as on the read one, and the page is settled once, not on every read."""
    settled: list[int] = []
    real = copies.settle_kbs

    def spy(kbs: Sequence[KnowledgeBase]) -> tuple[list[KnowledgeBase], copies.Conflicts]:
        settled.append(len(kbs))
        return real(kbs)

    monkeypatch.setattr(copies, "settle_kbs", spy)
    twin = kb(2, RUNNING)
    twin["last_indexing_job"]["uuid"] = "job-1"
    account = Account([kb(1), twin])
    with capture_logs() as logs:
        async with client(account) as c:
            first = await statuses(c)
            again = await statuses(c)
    assert first == again == {"kb-1": None, "kb-2": None}
    assert len(decoded) == 1 and settled == [2]
    disagree = [entry for entry in logs if entry["event"] == "api_job_copies_disagree"]
    assert len(disagree) == 1


async def test_a_job_changed_inside_an_otherwise_identical_page_is_read(
    decoded: list[bytes],
) -> None:
    account = Account([kb(1), kb(2), kb(3), kb(4)])
    async with client(account) as c:
        await statuses(c)
        account.items[3] = kb(4, RUNNING)  # page 2 only; the same length of text or not
        after = await statuses(c)
        assert after["kb-4"] == RUNNING and after["kb-3"] == DONE
        assert len(decoded) == 3  # page 1 kept, page 2 read again
        account.items[3] = kb(4)  # and back: the change is seen again
        assert (await statuses(c))["kb-4"] == DONE


async def test_a_malformed_item_is_skipped_on_every_read_and_its_repair_is_seen(
    decoded: list[bytes],
) -> None:
    account = Account([kb(1), {"name": "no uuid"}, kb(3)])
    with capture_logs() as logs:
        async with client(account) as c:
            assert list(await statuses(c)) == ["kb-1", "kb-3"]
            assert list(await statuses(c)) == ["kb-1", "kb-3"]  # kept page: still skipped
            assert len(decoded) == 2
            account.items[1] = kb(2)
            assert list(await statuses(c)) == ["kb-1", "kb-2", "kb-3"]
    skipped = [entry for entry in logs if entry["event"] == "api_item_skipped"]
    assert len(skipped) == 1  # said once, as before the pages were kept


async def test_after_a_failed_read_the_last_complete_read_still_serves(
    decoded: list[bytes],
) -> None:
    account = Account([kb(1), kb(2), kb(3)])
    async with client(account) as c:
        await statuses(c)
        account.items[0] = kb(1, RUNNING)
        account.broken = {2}
        with pytest.raises(SourceError):
            await c.list_knowledge_bases()
        account.broken = set()
        account.items[0] = kb(1)  # page 1 as at the last complete read
        assert (await statuses(c))["kb-1"] == DONE
    # page 1 read anew in the failed read, and page 1 of the failed read never kept
    assert len(decoded) == 3

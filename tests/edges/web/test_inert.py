"""Text from the API and from receivers is inert and escaped on the page and in the API, and no
secret leaves through either."""

from __future__ import annotations

import html
import json
import re

import httpx

from tests.edges.web.conftest import Host, Serve
from tests.edges.web.history import KbPlan, job_uuid, settle, write_history
from watcher.core.inert import is_inert
from watcher.core.outbox import DeliveryState
from watcher.core.redact import SECRETS
from watcher.edges.store.sqlite import SqliteStore

UUID = "eeeeeeee-0000-4000-8000-000000000005"
FORGED = '</code></th><td><span class="badge s-completed">completed</span>'
HOSTILE = (
    "docs\x1b]0;pwned\x07\x1b[2J\x00\u202eexe.txt\n"
    f"{FORGED}<script>alert(1)</script><img src=x onerror=alert(2)>"
)
SECRET = "hunter2-Zq9@x#T/7%Lm"


async def _hostile(store: SqliteStore) -> None:
    plan = KbPlan(UUID, HOSTILE, ["completed", "failed"], error=f"<b>{SECRET}</b>\x1b[31m")
    await write_history(store, [plan])
    await settle(store, DeliveryState.DEAD, limit=1, error=f"refused: token {SECRET}\u202e")


def _pages(job: str) -> list[str]:
    return ["/", f"/kb/{UUID}", f"/kb/{UUID}/jobs/{job}", "/deliveries?state=dead", "/watcher"]


def _apis(job: str) -> list[str]:
    return [
        "/api/v1/knowledge_bases",
        f"/api/v1/knowledge_bases/{UUID}",
        f"/api/v1/knowledge_bases/{UUID}/events",
        f"/api/v1/jobs/{job}",
        "/api/v1/deliveries?state=dead",
        "/api/v1/watcher",
    ]


async def test_a_hostile_name_and_error_stay_text_on_every_page(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    await _hostile(store)
    base = await serve()
    for path in _pages(job_uuid(UUID, 1)):
        page = (await client.get(base + path)).text
        assert is_inert(page, newlines=True), path
        assert "<script>alert" not in page and "<img src=x" not in page, path
        assert FORGED not in page, path
        if path != "/watcher":
            assert "docs\\x1b]0;pwned\\x07\\x1b[2J\\x00\\u202eexe.txt " in html.unescape(page), path
    overview = (await client.get(base + "/")).text
    assert len(re.findall(r'class="badge s-', overview)) == 1  # no forged badge


async def test_the_api_gives_the_same_text_inert(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    await _hostile(store)
    base = await serve()
    for path in _apis(job_uuid(UUID, 1)):
        raw = (await client.get(base + path)).text
        assert is_inert(json.dumps(json.loads(raw), ensure_ascii=False), newlines=True), path
    kb = (await client.get(base + f"/api/v1/knowledge_bases/{UUID}")).json()
    assert kb["name"].startswith("docs\\x1b]0;pwned\\x07")


async def test_no_secret_reaches_the_page_or_the_api(
    serve: Serve, store: SqliteStore, host: Host, client: httpx.AsyncClient
) -> None:
    SECRETS.register(SECRET)
    host.setup = (f"route ops: knowledge_bases[0]: {SECRET}",)
    host.config = f"Configuration is valid.\n  Token: {SECRET}"
    await _hostile(store)
    base = await serve()
    forms = {SECRET, html.escape(SECRET), json.dumps(SECRET)[1:-1], "hunter2-Zq9"}
    for path in [*_pages(job_uuid(UUID, 1)), *_apis(job_uuid(UUID, 1))]:
        body = (await client.get(base + path)).text
        leaked = [form for form in forms if form in body]
        assert not leaked, (path, leaked)
    job = (await client.get(base + f"/api/v1/jobs/{job_uuid(UUID, 1)}")).json()
    [bad] = [ds for ds in job["data_sources"] if ds["error_msg"]]
    assert "***" in bad["error_msg"]

"""A mutating proxy in front of the simulator: the fault harness's hostile answers (issue 11).

`MutatingProxy` forwards every request to the simulator and, while a `ProxyMode` is on,
rewrites the answers that mode aims at (the `PROXY_PATHS` of the mode), the way a broken
cache, a misconfigured gateway or a hostile middlebox could:

- `trickle`: status and headers at once, then one byte every 50 ms, for ever (faster than
  any read timeout: only a deadline on the whole answer ends it);
- `huge`: the knowledge-base list padded to 50 MB, sent chunked (no `Content-Length`);
- `many_items`: the knowledge-base list carrying 200,000 junk knowledge bases (about 10 MB,
  under the byte cap: only the item cap stops it);
- `deep_json`: a body nested 100,000 levels deep (`RecursionError` in any JSON decoder);
- `self_next`: no `meta`, a `next` link pointing to the request itself, and page 1 whatever
  page is asked (the page parameter ignored);
- `endless_pages`: `meta.pages` of 10⁹, a `next` link on every page, and items on every
  page (page N serves the real page N modulo the real number of pages);
- `conflicting`: each job list carries a "completed" copy of every job still running;
- `invalid_utf8`: the first knowledge base's name holds bytes that are not UTF-8, and a junk
  item whose uuid is not UTF-8 either is added to the list;
- `false_terminal`: every running job reads completed in every answer, each answer
  consistent with itself (a lying replica: what only a correction can repair).

`open_proxied_rig` is `harness.open_rig` with the proxy between the watcher and the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from tests.harness import COUNTING, Harness, merged, route, simulator
from tests.receivers import WebhookReceiver
from watcher.service.cycle import CycleReport

HOST = "127.0.0.1"
KB_LIST = "/v2/gen-ai/knowledge_bases"
_JOB_LISTS = ("/indexing_jobs",)
_HOP_BY_HOP = {"content-length", "content-encoding", "transfer-encoding", "connection"}
HUGE_BYTES = 50_000_000
JUNK_ITEMS = 200_000
DEPTH = 100_000
TRICKLE_EVERY = 0.05
_BAD_NAME = b"bad-\xff\xfe-name"
_BAD_UUID = b"junk-\xff\xff-uuid"


class ProxyMode(StrEnum):
    """The hostile answers the proxy can give (see the module's docstring)."""

    TRICKLE = "trickle"
    HUGE = "huge"
    MANY_ITEMS = "many_items"
    DEEP_JSON = "deep_json"
    SELF_NEXT = "self_next"
    ENDLESS_PAGES = "endless_pages"
    CONFLICTING = "conflicting"
    INVALID_UTF8 = "invalid_utf8"
    FALSE_TERMINAL = "false_terminal"

    @property
    def breaks_reads(self) -> bool:
        """Whether the mode makes the knowledge-base list unreadable (a failed API read)."""
        return self not in _READABLE


_READABLE = frozenset({ProxyMode.CONFLICTING, ProxyMode.INVALID_UTF8, ProxyMode.FALSE_TERMINAL})


def aimed_at(mode: ProxyMode, method: str, path: str) -> bool:
    """Whether `mode` rewrites the answer to this request."""
    if method != "GET":
        return False
    if mode is ProxyMode.FALSE_TERMINAL:
        return True
    if mode is ProxyMode.CONFLICTING:
        return path.endswith(_JOB_LISTS)
    return path == KB_LIST


@dataclass
class MutatingProxy:
    """Forwards to `upstream`; while `mode` is set, rewrites the answers it aims at."""

    upstream: str
    mode: ProxyMode | None = None
    hits: Counter[ProxyMode] = field(default_factory=Counter)
    _client: httpx.AsyncClient | None = None
    _cache: dict[str, bytes] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT"])]
        )

    async def _handle(self, request: Request) -> Response:
        mode = self.mode
        aimed = mode is not None and aimed_at(mode, request.method, request.url.path)
        if aimed and mode is ProxyMode.TRICKLE:
            self.hits[mode] += 1
            return StreamingResponse(_trickle(), media_type="application/json")
        params = dict(request.query_params)
        if aimed and mode is ProxyMode.SELF_NEXT:
            params["page"] = "1"
        if aimed and mode is ProxyMode.ENDLESS_PAGES:
            params["page"] = str(await self._real_page(request, int(params.get("page", "1"))))
        upstream = await self._forward(request, params)
        if not aimed or mode is None or upstream.status_code != 200:
            return _relay(upstream, upstream.content)
        self.hits[mode] += 1
        return self._mutated(mode, request, upstream)

    async def _forward(self, request: Request, params: Mapping[str, str]) -> httpx.Response:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.upstream, timeout=30)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type")
        }
        return await self._client.request(
            request.method,
            request.url.path,
            params=params,
            headers={**headers, "accept-encoding": "identity"},
            content=await request.body(),
        )

    async def _real_page(self, request: Request, asked: int) -> int:
        """The real page that page `asked` of an endless list serves (cycling through them)."""
        first = await self._forward(request, {**request.query_params, "page": "1"})
        pages = max(1, int(first.json().get("meta", {}).get("pages", 1)))
        return (asked - 1) % pages + 1

    def _mutated(self, mode: ProxyMode, request: Request, upstream: httpx.Response) -> Response:
        body: dict[str, Any] = upstream.json()
        match mode:
            case ProxyMode.HUGE:
                return StreamingResponse(_huge(body), headers=_headers(upstream))
            case ProxyMode.MANY_ITEMS:
                return _relay(upstream, self._junk_list(body))
            case ProxyMode.DEEP_JSON:
                return _relay(upstream, b"[" * DEPTH + b"]" * DEPTH)
            case ProxyMode.SELF_NEXT:
                body.pop("meta", None)
                body["links"] = {"pages": {"next": str(request.url)}}
            case ProxyMode.ENDLESS_PAGES:
                asked = int(request.query_params.get("page", "1"))
                meta = body.setdefault("meta", {})
                meta.update(page=asked, pages=10**9)
                body["links"] = {
                    "pages": {"next": str(request.url.include_query_params(page=asked + 1))}
                }
            case ProxyMode.CONFLICTING:
                body["jobs"] = [
                    *body.get("jobs", []),
                    *(_completed(j) for j in body.get("jobs", []) if _running(j)),
                ]
            case ProxyMode.INVALID_UTF8:
                return _relay(upstream, _unreadable(body))
            case ProxyMode.FALSE_TERMINAL:
                _walk_jobs(body)
            case ProxyMode.TRICKLE:
                raise AssertionError("answered before forwarding")
        return _relay(upstream, json.dumps(body).encode())

    def _junk_list(self, body: dict[str, Any]) -> bytes:
        if "many" not in self._cache:
            junk = [{"uuid": f"junk-{n:06d}", "name": f"junk-{n}"} for n in range(JUNK_ITEMS)]
            self._cache["many"] = json.dumps(
                {"knowledge_bases": junk, "meta": {"page": 1, "pages": 1, "total": JUNK_ITEMS}}
            ).encode()
        return self._cache["many"]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _headers(upstream: httpx.Response) -> dict[str, str]:
    """The simulator's headers (its `Date`, its rate limits) without the hop-by-hop ones."""
    return {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}


def _relay(upstream: httpx.Response, content: bytes) -> Response:
    return Response(content, status_code=upstream.status_code, headers=_headers(upstream))


async def _trickle() -> AsyncIterator[bytes]:
    yield b'{"knowledge_bases": ['
    while True:
        await asyncio.sleep(TRICKLE_EVERY)
        yield b" "


async def _huge(body: dict[str, Any]) -> AsyncIterator[bytes]:
    """The real answer with a 50 MB `padding` string inside, in 1 MB chunks."""
    head = json.dumps(body).encode()[:-1] + b', "padding": "'
    yield head
    block = b"x" * 1_000_000
    for _ in range(HUGE_BYTES // len(block)):
        yield block
        await asyncio.sleep(0)
    yield b'"}'


def _running(job: Mapping[str, Any]) -> bool:
    return str(job.get("status", "")).endswith(("IN_PROGRESS", "PENDING"))


def _completed(job: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **job,
        "phase": "BATCH_JOB_PHASE_SUCCEEDED",
        "status": "INDEX_JOB_STATUS_COMPLETED",
        "finished_at": job.get("updated_at"),
    }


def _walk_jobs(node: Any) -> None:
    """Every running job in the answer reads completed, in place."""
    if isinstance(node, list):
        for item in node:
            _walk_jobs(item)
    elif isinstance(node, dict):
        for value in node.values():
            _walk_jobs(value)
        if "phase" in node and _running(node):
            node.update(_completed(node))


def _unreadable(body: dict[str, Any]) -> bytes:
    """The list with the first KB's name, and a junk item's uuid, not UTF-8."""
    items = body.get("knowledge_bases", [])
    if items:
        items[0]["name"] = "@@BAD_NAME@@"
    items.append({"uuid": "@@BAD_UUID@@", "name": "junk"})
    raw = json.dumps(body).encode()
    return raw.replace(b"@@BAD_NAME@@", _BAD_NAME).replace(b"@@BAD_UUID@@", _BAD_UUID)


@contextlib.asynccontextmanager
async def serve_proxy(proxy: MutatingProxy) -> AsyncIterator[str]:
    """Serve the proxy on a loopback port in the running loop; yields its base URL."""
    config = uvicorn.Config(
        proxy.app(),
        host=HOST,
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        date_header=False,  # the simulator's own `Date` goes through
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="mutating-proxy")
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("the mutating proxy did not start")
        await asyncio.sleep(0.002)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        await task
        await proxy.aclose()


@dataclass
class ProxiedRig(Harness):
    """A harness whose watcher reads the simulator through a `MutatingProxy`; each cycle's real
    duration (seconds, the loop's monotonic clock) is kept beside its report."""

    proxy: MutatingProxy | None = None
    durations: list[float] = field(default_factory=list)
    _proxy_server: contextlib.AbstractAsyncContextManager[str] | None = None

    async def serve(self) -> None:
        """Serve the simulator, and the proxy in front of it: the watcher is given the proxy."""
        await super().serve()
        self.proxy = MutatingProxy(self.base_url)
        self._proxy_server = serve_proxy(self.proxy)
        self.base_url = await self._proxy_server.__aenter__()

    async def unserve(self) -> None:
        if self._proxy_server is not None:
            server, self._proxy_server = self._proxy_server, None
            await server.__aexit__(None, None, None)
        await super().unserve()

    async def cycle(self) -> CycleReport:
        began = time.monotonic()
        report = await super().cycle()
        self.durations.append(time.monotonic() - began)
        return report

    def set_mode(self, mode: ProxyMode | None) -> None:
        assert self.proxy is not None
        self.proxy.mode = mode


@contextlib.asynccontextmanager
async def open_proxied_rig(
    scenario: Mapping[str, Any],
    tmp_path: Path,
    receiver: WebhookReceiver,
    *,
    routes: Sequence[Mapping[str, Any]] | None = None,
    **sections: Any,
) -> AsyncIterator[ProxiedRig]:
    """`harness.open_harness` (the COUNTING settings), with the watcher pointed at a mutating
    proxy of the simulator."""
    routes = routes or [route("ops", receiver.url_json("/ops"))]
    rig = ProxiedRig(
        simulator(scenario),
        tmp_path / "watcher.db",
        [dict(r) for r in routes],
        merged(COUNTING, sections),
        receiver,
    )
    with capture_logs() as logs:
        rig.logs = logs
        try:
            await rig.serve()
            await rig.start()
            yield rig
        finally:
            await rig.stop()
            await rig.unserve()
    structlog.contextvars.clear_contextvars()

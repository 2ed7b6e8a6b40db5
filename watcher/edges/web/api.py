"""`/api/v1`: the page's views as JSON, for the page's own script and for scripts of yours.

| method, path | what |
|---|---|
| GET `/api/v1/knowledge_bases?state=&sort=&limit=&cursor=` | knowledge bases and counts |
| GET `/api/v1/knowledge_bases/{uuid}` | one of them |
| GET `/api/v1/knowledge_bases/{uuid}/jobs?limit=&cursor=` | its jobs, newest first |
| GET `/api/v1/knowledge_bases/{uuid}/history` | every kept job as a chart point, oldest first |
| GET `/api/v1/knowledge_bases/{uuid}/events?limit=&cursor=` | its events, their deliveries |
| GET `/api/v1/jobs/{uuid}` | a job: data sources with their errors, events, deliveries |
| GET `/api/v1/events?limit=&cursor=` | every event, newest first |
| GET `/api/v1/deliveries?state=pending\\|dead\\|sent&route=&limit=&cursor=` | outbox rows |
| POST `/api/v1/deliveries/{id}/retry` | send a dead letter again (token required) |
| GET `/api/v1/watcher` | health, poll interval and why, last cycle, API, budget, config |

Lists are `{"items": [...], "next": URL or null, "next_cursor": ...}`; follow `next` until it
is null. Errors are `{"error": text}` with 400 (a bad parameter), 401/403 (access), 404, 409
(not a dead letter) or 503 (the store cannot be read).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from watcher.core.errors import StoreError
from watcher.edges.web import reads
from watcher.edges.web.host import WatcherHost
from watcher.edges.web.reads import API_LIMIT, BadQuery, NotFound
from watcher.edges.web.respond import json_response

log = structlog.get_logger(__name__)
Handler = Callable[[Request], Awaitable[Any]]


def _answer(work: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A handler's result as JSON, its failures as the documented errors."""

    async def endpoint(request: Request) -> Response:
        try:
            return json_response(await work(request))
        except BadQuery as exc:
            return json_response({"error": str(exc)}, 400)
        except NotFound as exc:
            return json_response({"error": str(exc)}, 404)
        except StoreError as exc:
            log.warning("page_store_unreadable", error=str(exc))
            return json_response({"error": f"the store cannot be read: {exc}"}, 503)

    return endpoint


def routes(host: WatcherHost) -> list[BaseRoute]:
    """The API's routes over `host`."""

    def q(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    async def kbs(request: Request) -> Any:
        return await reads.overview(host, q(request), API_LIMIT)

    async def kb(request: Request) -> Any:
        view = await reads.knowledge_base(host, request.path_params["uuid"])
        view.pop("charts")  # drawn for the page; the points are at .../history
        return view

    async def kb_jobs(request: Request) -> Any:
        return await reads.jobs(host, request.path_params["uuid"], q(request), API_LIMIT)

    async def kb_history(request: Request) -> Any:
        return await reads.history(host, request.path_params["uuid"])

    async def kb_events(request: Request) -> Any:
        return await reads.events(host, request.path_params["uuid"], q(request), API_LIMIT)

    async def all_events(request: Request) -> Any:
        return await reads.events(host, None, q(request), API_LIMIT)

    async def job(request: Request) -> Any:
        return await reads.job(host, request.path_params["uuid"])

    async def deliveries(request: Request) -> Any:
        return await reads.deliveries(host, q(request), API_LIMIT)

    async def watcher(request: Request) -> Any:
        return await reads.watcher(host)

    async def index(request: Request) -> Any:
        return {"endpoints": [r.path for r in table if isinstance(r, Route)]}

    get = ["GET", "HEAD"]
    table: list[BaseRoute] = [
        Route("/api/v1", _answer(index), methods=get),
        Route("/api/v1/knowledge_bases", _answer(kbs), methods=get),
        Route("/api/v1/knowledge_bases/{uuid}", _answer(kb), methods=get),
        Route("/api/v1/knowledge_bases/{uuid}/jobs", _answer(kb_jobs), methods=get),
        Route("/api/v1/knowledge_bases/{uuid}/history", _answer(kb_history), methods=get),
        Route("/api/v1/knowledge_bases/{uuid}/events", _answer(kb_events), methods=get),
        Route("/api/v1/events", _answer(all_events), methods=get),
        Route("/api/v1/jobs/{uuid}", _answer(job), methods=get),
        Route("/api/v1/deliveries", _answer(deliveries), methods=get),
        Route("/api/v1/deliveries/{id:int}/retry", _retry(host), methods=["POST"]),
        Route("/api/v1/watcher", _answer(watcher), methods=get),
    ]
    return table


def _retry(host: WatcherHost) -> Callable[[Request], Awaitable[Response]]:
    """POST: queue one dead letter again, with a fresh `dead_after` (the access rules have
    already demanded the token); 409 when the row is not a dead letter."""

    async def endpoint(request: Request) -> Response:
        row = int(request.path_params["id"])
        now, _ = host.clocks()
        try:
            queued = await host.store.retry_dead(now, [row])
        except StoreError as exc:
            log.warning("page_retry_failed", delivery=row, error=str(exc))
            return json_response({"error": f"the store refused the retry: {exc}"}, 503)
        if not queued:
            return json_response({"error": f"delivery {row} is not a dead letter"}, 409)
        log.info("dead_letters_retried", ids=queued, by="page")
        return json_response({"retried": queued})

    return endpoint

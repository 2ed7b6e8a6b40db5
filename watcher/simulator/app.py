"""The routes of the simulated API: a Starlette app behind the `Gate` (auth, limits, faults).

Shapes follow `apiListKnowledgeBasesOutput`, `apiGetKnowledgeBaseOutput`,
`apiListKnowledgeBaseIndexingJobsOutput`, `apiGetKnowledgeBaseIndexingJobOutput`,
`apiListIndexingJobDataSourcesOutput`, `apiStartKnowledgeBaseIndexingJobOutput` and
`apiCancelKnowledgeBaseIndexingJobOutput`. Choices where DigitalOcean documents nothing:
starting a job on a KB that already has an active one answers 409 `conflict` (the new job
"is skipped"); cancelling a finished job answers 422 `unprocessable_entity`; a malformed
body or query answers 400 `bad_request`; unknown paths 404 and wrong methods 405, all in
DigitalOcean's error shape. The per-KB job list carries `links`/`meta` for its one page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from watcher.simulator import models
from watcher.simulator.backend import Backend
from watcher.simulator.extras import SPACES, Extras
from watcher.simulator.gate import Gate, error_body
from watcher.simulator.world import KbBusy, NotCancellable, NotFound, World

JsonObject = dict[str, Any]
T = TypeVar("T")
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200
_ERROR_IDS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "unprocessable_entity",
}
_NOT_FOUND = "The resource you requested could not be found."


class ApiFailure(Exception):
    """An error answer in DigitalOcean's shape."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def _failure_response(request: Request, status: int, message: str) -> Response:
    request_id = str(getattr(request.state, "request_id", ""))
    body = error_body(_ERROR_IDS.get(status, "error"), message, request_id)
    return JSONResponse(body, status_code=status)


async def _on_failure(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiFailure)
    return _failure_response(request, exc.status, exc.message)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = _NOT_FOUND if exc.status_code == 404 else str(exc.detail)
    response = _failure_response(request, exc.status_code, message)
    response.headers.update(exc.headers or {})
    return response


def _int_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiFailure(400, f"{name} must be an integer") from exc


@dataclass(frozen=True, slots=True)
class Page:
    """The page a list request asks for (`page` from 1, `per_page` clamped to 1..200)."""

    number: int
    size: int

    @classmethod
    def of(cls, request: Request) -> Page:
        per_page = _int_query(request, "per_page", DEFAULT_PER_PAGE)
        size = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
        return cls(max(1, _int_query(request, "page", 1)), size)

    @property
    def window(self) -> slice:
        return slice((self.number - 1) * self.size, self.number * self.size)


def paginate(
    request: Request, page: Page, total: int, items: list[JsonObject], key: str
) -> JsonObject:
    """One page of a list with DigitalOcean's `links.pages` and `meta`."""
    pages = max(1, math.ceil(total / page.size))

    def url(number: int) -> str:
        return str(request.url.include_query_params(page=number, per_page=page.size))

    links = {"first": url(1), "last": url(pages)}
    if page.number > 1:
        links["previous"] = url(min(page.number - 1, pages))
    if page.number < pages:
        links["next"] = url(page.number + 1)
    return {
        key: items,
        "links": {"pages": links},
        "meta": {"total": total, "page": page.number, "pages": pages},
    }


async def _json_body(request: Request) -> JsonObject:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiFailure(400, "the request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiFailure(400, "the request body must be a JSON object")
    return body


class Api:
    """The endpoint functions, reading the simulator's world at the current simulated time."""

    def __init__(self, sim: Backend) -> None:
        self.sim = sim

    def _read(self, view: Callable[[World, datetime], T]) -> T:
        try:
            return self.sim.read(view)
        except NotFound as exc:
            raise ApiFailure(404, _NOT_FOUND) from exc

    async def list_kbs(self, request: Request) -> Response:
        page = Page.of(request)
        total, kbs = self._read(lambda world, now: world.kb_page(now, page.window))
        return JSONResponse(paginate(request, page, total, kbs, "knowledge_bases"))

    async def get_kb(self, request: Request) -> Response:
        uuid = request.path_params["uuid"]
        kb = self._read(lambda world, now: world.knowledge_base(uuid, now))
        return JSONResponse({"knowledge_base": kb, "database_status": "ONLINE"})

    async def kb_jobs(self, request: Request) -> Response:
        uuid = request.path_params["uuid"]
        jobs = self._read(lambda world, now: world.kb_jobs(uuid, now))
        url = str(request.url.remove_query_params(["page", "per_page"]))
        return JSONResponse(
            {
                "jobs": jobs,
                "links": {"pages": {"first": url, "last": url}},
                "meta": {"total": len(jobs), "page": 1, "pages": 1},
            }
        )

    async def list_jobs(self, request: Request) -> Response:
        page = Page.of(request)
        total, jobs = self._read(lambda world, now: world.job_page(now, page.window))
        return JSONResponse(paginate(request, page, total, jobs, "jobs"))

    async def get_job(self, request: Request) -> Response:
        uuid = request.path_params["uuid"]
        return JSONResponse({"job": self._read(lambda world, now: world.job(uuid, now))})

    async def job_sources(self, request: Request) -> Response:
        uuid = request.path_params["uuid"]
        sources = self._read(lambda world, now: world.job_sources(uuid, now))
        return JSONResponse({"indexed_data_sources": sources})

    async def start_job(self, request: Request) -> Response:
        body = await _json_body(request)
        kb_uuid = body.get("knowledge_base_uuid")
        sources = body.get("data_source_uuids") or []
        if not isinstance(kb_uuid, str) or not kb_uuid:
            raise ApiFailure(400, "knowledge_base_uuid is required")
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise ApiFailure(400, "data_source_uuids must be a list of strings")
        defaults = self.sim.scenario.on_start

        def start(world: World, now: datetime) -> JsonObject:
            plan = world.start_by_api(kb_uuid, sources, now, defaults)
            return world.job(plan.uuid, now)

        try:
            job = self._read(start)
        except KbBusy as exc:
            message = f"an indexing job ({exc.job_uuid}) is already running for this knowledge base"
            raise ApiFailure(409, message + "; the new job was skipped") from exc
        except ValueError as exc:
            raise ApiFailure(400, str(exc)) from exc
        return JSONResponse({"job": job})

    async def cancel_job(self, request: Request) -> Response:
        uuid = request.path_params["uuid"]
        body = await _json_body(request)
        if body.get("uuid") not in (None, "", uuid):
            raise ApiFailure(400, "the uuid in the body does not match the uuid in the path")

        def cancel(world: World, now: datetime) -> JsonObject:
            world.cancel(uuid, now)
            return world.job(uuid, now)

        try:
            job = self._read(cancel)
        except NotCancellable as exc:
            raise ApiFailure(422, str(exc)) from exc
        return JSONResponse({"job": job})


def build_app(sim: Backend) -> ASGIApp:
    """The whole simulated API for `sim`: the gate in front of the Starlette routes."""
    api = Api(sim)
    prefix = "/v2/gen-ai"
    routes = [
        Route(f"{prefix}/knowledge_bases", api.list_kbs, methods=["GET"]),
        Route(f"{prefix}/knowledge_bases/{{uuid}}", api.get_kb, methods=["GET"]),
        Route(f"{prefix}/knowledge_bases/{{uuid}}/indexing_jobs", api.kb_jobs, methods=["GET"]),
        Route(f"{prefix}/indexing_jobs", api.list_jobs, methods=["GET"]),
        Route(f"{prefix}/indexing_jobs", api.start_job, methods=["POST"]),
        Route(f"{prefix}/indexing_jobs/{{uuid}}", api.get_job, methods=["GET"]),
        Route(f"{prefix}/indexing_jobs/{{uuid}}/data_sources", api.job_sources, methods=["GET"]),
        Route(f"{prefix}/indexing_jobs/{{uuid}}/cancel", api.cancel_job, methods=["PUT"]),
        Route(f"{prefix}/models", models.list_models, methods=["GET"]),
        Route(f"{prefix}/models/catalog", models.list_catalog, methods=["GET"]),
    ]
    extras = Extras(sim, ApiFailure)
    routes += [
        Route(f"{prefix}/scheduled-indexing/knowledge-base/{{uuid}}", extras.get_schedule),
        Route(f"{prefix}/indexing_jobs/{{uuid}}/details_signed_url", extras.signed_url),
        Route(f"{SPACES}{{uuid}}.csv", extras.report, methods=["GET"]),
    ]
    handlers = {ApiFailure: _on_failure, HTTPException: _on_http_exception}
    inner = Starlette(routes=routes, exception_handlers=handlers)
    return Gate(inner, sim)

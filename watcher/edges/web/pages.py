"""The page: server-rendered HTML (Jinja2, autoescaped) from the API's own views.

Every asset is inside the package (`templates/`, `static/`): the page works on a host without
Internet access. The one script (`static/page.js`, a few kilobytes) refreshes the overview
from `/api/v1/knowledge_bases` without reloading, submits the filter when it changes, and
sends a dead letter's retry with the token typed in; everything else works without it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Final

import jinja2
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from watcher.core.browse import Filter, Order
from watcher.core.durations import format_elapsed, format_setting
from watcher.core.errors import StoreError
from watcher.edges.web import reads, views
from watcher.edges.web.host import WatcherHost
from watcher.edges.web.reads import PAGE_LIMIT, BadQuery, NotFound
from watcher.edges.web.respond import html_response, text_response

log = structlog.get_logger(__name__)
_STATIC_TYPES: Final = {
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def _static() -> dict[str, bytes]:
    root = resources.files("watcher.edges.web") / "static"
    return {name: (root / name).read_bytes() for name in _STATIC_TYPES}


def _duration(value: float | None) -> str:
    if value is None:
        return "–"
    if 0 < value < 10 and value != int(value):
        return f"{value:.1f}s"  # the demo's half-second polls
    return format_elapsed(timedelta(seconds=value))


def _span(value: float | None) -> str:
    """A configured length as the configuration writes it (`90d`, `15m`)."""
    return "–" if value is None else format_setting(timedelta(seconds=value))


def _ago(value: float | None) -> str:
    return "–" if value is None else f"{format_elapsed(timedelta(seconds=value))} ago"


def _count(value: int | float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _spark_label(marks: list[dict[str, Any]]) -> str:
    """`last 20 jobs: 18 completed, 2 failed` (most frequent first): a sparkline for a reader."""
    counts = Counter(mark["state"] for mark in marks)
    told = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in counts.most_common())
    return f"last {len(marks)} jobs: {told}" if marks else "no jobs"


def _when(value: str | None) -> str:
    if not value:
        return "–"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def environment(assets: Mapping[str, bytes]) -> jinja2.Environment:
    """The templates, autoescaped, strict about undefined names, with the page's filters."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("watcher.edges.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=_duration,
        span=_span,
        ago=_ago,
        count=_count,
        when=_when,
        spark_label=_spark_label,
    )
    version = hashlib.sha256(b"".join(assets[name] for name in sorted(assets))).hexdigest()[:12]
    env.globals.update(
        asset_version=version,
        filters=[f.value for f in Filter],
        orders=[o.value for o in Order],
    )
    return env


def routes(host: WatcherHost, *, writable: bool) -> list[BaseRoute]:
    """The page's routes over `host`; `writable`: whether a token allows writes at all."""
    assets = _static()
    env = environment(assets)

    def render(name: str, status: int = 200, **context: Any) -> Response:
        page = env.get_template(name).render(writable=writable, **context)
        return html_response(page, status)

    def page(
        name: str, load: Callable[[Request], Awaitable[dict[str, Any]]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return render(name, view=await load(request), query=dict(request.query_params))
            except BadQuery as exc:
                return render("error.html", 400, title="Bad request", reason=str(exc))
            except NotFound as exc:
                return render("error.html", 404, title="Not found", reason=str(exc))
            except StoreError as exc:
                log.warning("page_store_unreadable", error=str(exc))
                reason = f"the store cannot be read: {exc}"
                return render("error.html", 503, title="Store unavailable", reason=reason)

        return endpoint

    async def overview(request: Request) -> dict[str, Any]:
        listed = await reads.overview(host, request.query_params, PAGE_LIMIT)
        facts = await host.facts()
        listed["watcher"] = views.facts_view(facts)
        return listed

    async def kb(request: Request) -> dict[str, Any]:
        uuid = request.path_params["uuid"]
        view = await reads.knowledge_base(host, uuid)
        view["jobs"] = await reads.jobs(host, uuid, request.query_params, 50)
        view["events"] = await reads.events(host, uuid, {}, 50)
        return view

    async def job(request: Request) -> dict[str, Any]:
        view = await reads.job(host, request.path_params["job"])
        if view["kb_uuid"] != request.path_params["uuid"]:
            raise NotFound("no such job for this knowledge base")
        return view

    async def deliveries(request: Request) -> dict[str, Any]:
        return await reads.deliveries(host, request.query_params, 200)

    async def watcher(request: Request) -> dict[str, Any]:
        return await reads.watcher(host)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            return text_response("not found", 404)
        headers = {"cache-control": "public, max-age=86400, immutable"}
        return Response(assets[name], 200, headers, _STATIC_TYPES[name])

    get = ["GET", "HEAD"]
    return [
        Route("/", page("overview.html", overview), methods=get),
        Route("/kb/{uuid}", page("kb.html", kb), methods=get),
        Route("/kb/{uuid}/jobs/{job}", page("job.html", job), methods=get),
        Route("/deliveries", page("deliveries.html", deliveries), methods=get),
        Route("/watcher", page("watcher.html", watcher), methods=get),
        Route("/static/{name}", static, methods=get),
    ]

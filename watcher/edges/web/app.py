"""The one ASGI app of `[http] listen`: probes, metrics, the page and its JSON API.

- `/healthz`, `/readyz`: the health rule's verdicts, 200 or 503 with `{"live"|"ready": bool,
  "reason": text}`; `/metrics`: Prometheus. Their contract is the one they had before the page.
- `/`, `/kb/{uuid}`, `/kb/{uuid}/jobs/{job}`, `/deliveries`, `/watcher`: the page, rendered on
  the server (`watcher.edges.web.pages`); `/static/...` its style sheet and script.
- `/api/v1/...`: the same views as JSON (`watcher.edges.web.api`).

Around every response: the access rules (`watcher.edges.web.access`), a strict
Content-Security-Policy (nothing but this origin's own script and style; no inline script or
style, no frames, forms only to itself) with the usual companions, `no-store` for everything
but the static files, gzip, and the secrets' redaction of every body
(`watcher.core.redact.SECRETS`) on its way out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watcher.core.health import Health, Probe
from watcher.core.redact import SECRETS
from watcher.edges.web import api, pages
from watcher.edges.web.access import Access, Need, Verdict
from watcher.edges.web.host import WatcherHost
from watcher.edges.web.respond import json_response, refusal, text_response

log = structlog.get_logger(__name__)

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS: Final = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_PROBES: Final = {"/healthz": Probe.LIVE, "/readyz": Probe.READY}
_REFUSALS: Final = {
    Verdict.NO_CREDENTIALS: (401, "this needs the token of http.auth_token_file"),
    Verdict.NOT_SERVED: (
        403,
        "this watcher listens beyond loopback without http.auth_token_file: only /healthz, "
        "/readyz and /metrics are served to other machines. Set http.auth_token_file, or "
        "reach the page through an SSH tunnel to a loopback listener",
    ),
    Verdict.WRITES_OFF: (
        403,
        "writes from the page need http.auth_token_file; or use the command line "
        "(`watcher retry ID`)",
    ),
    Verdict.FOREIGN_HOST: (
        403,
        "this watcher serves its page without credentials under a loopback name only "
        "(localhost, 127.0.0.1, [::1]); open it by one of those",
    ),
}


def need_of(method: str, path: str) -> Need:
    """What a request asks for, by its method and path."""
    if path in _PROBES:
        return Need.PROBE
    if method not in ("GET", "HEAD"):
        return Need.WRITE
    if path == "/metrics":
        return Need.METRICS
    return Need.READ


class Guard:
    """ASGI middleware: the access rules first, then the security headers on every answer."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        verdict = self.access.judge(
            need_of(request.method, request.url.path),
            request.headers.get("authorization"),
            request.headers.get("host"),
        )

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *_HEADERS]
            await send(message)

        if verdict is Verdict.ALLOW:
            await self.app(scope, receive, with_headers)
            return
        status, reason = _REFUSALS[verdict]
        response = refusal(request, status, reason)
        await response(scope, receive, with_headers)


def _probe(host: WatcherHost, probe: Probe) -> Callable[[Request], Awaitable[Response]]:
    async def answer(request: Request) -> Response:
        try:
            verdict = await host.health(probe)
        except Exception as exc:  # the probe must answer even when the check is broken
            log.exception("health_check_failed", probe=probe.value)
            verdict = Health(False, f"health check failed: {type(exc).__name__}")
        body = {probe.value: verdict.ok, "reason": SECRETS.redact(verdict.reason)}
        return json_response(body, 200 if verdict.ok else 503)

    return answer


def _metrics(host: WatcherHost) -> Callable[[Request], Awaitable[Response]]:
    async def answer(request: Request) -> Response:
        headers = {"cache-control": "no-store"}
        return Response(host.metrics(), 200, headers, CONTENT_TYPE_LATEST)

    return answer


async def _not_found(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return json_response({"error": "not found"}, 404)
    return text_response("not found", 404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return text_response("method not allowed: use GET", 405)


def create_app(host: WatcherHost, access: Access) -> Starlette:
    """The app: probes and metrics, the page, its static files and the JSON API."""
    get = ["GET", "HEAD"]
    routes = [
        Route("/healthz", _probe(host, Probe.LIVE), methods=get),
        Route("/readyz", _probe(host, Probe.READY), methods=get),
        Route("/metrics", _metrics(host), methods=get),
        *pages.routes(host, writable=access.token is not None),
        *api.routes(host),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(Guard, access=access),
            Middleware(GZipMiddleware, minimum_size=1024),
        ],
        exception_handlers={404: _not_found, 405: _not_allowed},
    )

"""The opt-in health and metrics endpoint: `/healthz`, `/readyz` and `/metrics` over HTTP/1.1.

`/healthz` answers liveness and `/readyz` readiness, both from one injected check: the health
rule of `watcher.core.health` (200 or 503, with JSON `{"live"|"ready": bool, "reason": text}`).

Built on `asyncio.start_server` with a small request parser rather than uvicorn: three GET
routes need no framework, and `uvicorn.Server.serve()` installs its own SIGINT/SIGTERM handlers
with `signal.signal`, which would take the daemon's graceful shutdown away from it. Every
response closes its connection; requests have a size limit and a read timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from watcher.core.health import Health, Probe
from watcher.core.redact import SECRETS
from watcher.edges.metrics import Metrics

log = structlog.get_logger(__name__)

READ_TIMEOUT = 5.0
MAX_HEAD_BYTES = 16 * 1024


HealthCheck = Callable[[Probe], Awaitable[Health]]


@dataclass(frozen=True, slots=True)
class _Response:
    status: HTTPStatus
    content_type: str
    body: bytes


def parse_listen(listen: str) -> tuple[str, int]:
    """Split `host:port` or `[v6]:port` into host and port; raise ValueError when malformed."""
    host, sep, port_text = listen.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"listen address {listen!r} is not host:port or [ipv6]:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"listen address {listen!r}: write an IPv6 host as [addr]:port")
    port = int(port_text)
    if not host or port > 65535:
        raise ValueError(f"listen address {listen!r} has no host or a port above 65535")
    return host, port


def is_loopback(host: str) -> bool:
    """Return whether `host` names only the local machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HealthServer:
    """Serves `/healthz`, `/readyz` (from an injected health check) and `/metrics`."""

    def __init__(self, metrics: Metrics, check: HealthCheck) -> None:
        self._metrics = metrics
        self._check = check
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The bound port (useful after listening on port 0); RuntimeError before `start`."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the health server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, listen: str) -> None:
        """Bind `listen` (`host:port`, `[::1]:port`; port 0 picks one) and start serving."""
        if self._server is not None:
            raise RuntimeError("the health server is already started")
        host, port = parse_listen(listen)
        if not is_loopback(host):
            log.warning("health_server_not_loopback", host=host, port=port)
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=MAX_HEAD_BYTES, reuse_address=True
        )
        log.info("health_server_started", host=host, port=self.port)

    async def stop(self) -> None:
        """Stop accepting, drop connections still open, and wait for the listener to close."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()
        log.info("health_server_stopped")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one request on one connection, then close it."""
        self._writers.add(writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            method, path = _request_line(head)
            response = await self._respond(method, path)
            await _write(writer, response, head_only=method == "HEAD")
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away or never finished its request
        except (asyncio.LimitOverrunError, ValueError):
            bad = _Response(HTTPStatus.BAD_REQUEST, "text/plain; charset=utf-8", b"bad request\n")
            await _write(writer, bad, head_only=False)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _respond(self, method: str, path: str) -> _Response:
        """Route one request to its answer."""
        if path not in ("/healthz", "/readyz", "/metrics"):
            return _Response(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")
        if method not in ("GET", "HEAD"):
            return _Response(
                HTTPStatus.METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", b"use GET\n"
            )
        if path == "/metrics":
            return _Response(HTTPStatus.OK, CONTENT_TYPE_LATEST, self._metrics.render())
        probe = Probe.LIVE if path == "/healthz" else Probe.READY
        verdict = await self._verdict(probe)
        body = json.dumps({probe.value: verdict.ok, "reason": SECRETS.redact(verdict.reason)})
        status = HTTPStatus.OK if verdict.ok else HTTPStatus.SERVICE_UNAVAILABLE
        return _Response(status, "application/json", body.encode() + b"\n")

    async def _verdict(self, probe: Probe) -> Health:
        """Ask the injected check; a failing check means not healthy."""
        try:
            return await self._check(probe)
        except Exception as exc:  # the probe must answer even when the check is broken
            log.exception("health_check_failed", probe=probe.value)
            return Health(False, f"health check failed: {type(exc).__name__}")


def _request_line(head: bytes) -> tuple[str, str]:
    """Return the method and the path (query string dropped) of a request head."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("malformed request line")
    return parts[0].upper(), parts[1].split("?", 1)[0]


async def _write(writer: asyncio.StreamWriter, response: _Response, *, head_only: bool) -> None:
    """Send `response` with a closing connection header; the body is left out for HEAD."""
    status = response.status
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + (b"" if head_only else response.body))
    with contextlib.suppress(ConnectionError):
        await writer.drain()

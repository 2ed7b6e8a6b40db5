"""The HTTP server of `[http] listen`: one ASGI app on uvicorn, its signals left to the daemon.

`uvicorn.Server.serve()` installs its own SIGINT/SIGTERM handlers with `signal.signal` (and
raises the signal again when it stops), which would take the daemon's graceful stop and its
SIGHUP reload away from it. `_QuietServer` keeps uvicorn's serving and shutdown and replaces
only `capture_signals` (uvicorn >= 0.29) with a context that installs nothing; a test checks
that the process's handlers are the same before, during and after. The sockets are bound here
(with the options `check-config` tries), so a port in use is an `OSError` for the daemon to
report, never uvicorn's `sys.exit`. Connections are bounded by `watcher.edges.web.gate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator

import structlog
import uvicorn
from starlette.types import ASGIApp

from watcher.edges.web.gate import Gate, Limits, gated_protocol

log = structlog.get_logger(__name__)

START_TIMEOUT = 10.0  # seconds for uvicorn to start serving the bound sockets
STOP_GRACE = 3  # seconds answers under way may take to finish when stopping


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
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _QuietServer(uvicorn.Server):
    """uvicorn's server without its signal handlers: the daemon owns SIGTERM, SIGINT, SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address of `host` (SO_REUSEADDR; IPv6 ones v6-only)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(128)  # asyncio sets the real backlog when it starts serving
            sock.setblocking(False)
            if port == 0:
                break  # one socket: another address would get another random port
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class WebServer:
    """Serves one ASGI app on `listen` until stopped; connections bounded by a `Gate`."""

    def __init__(self, app: ASGIApp, limits: Limits | None = None) -> None:
        self.app = app
        self.gate = Gate(limits or Limits())
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._sockets: list[socket.socket] = []

    @property
    def listening(self) -> bool:
        """Whether the server is serving its sockets now."""
        return self._server is not None and self._server.started and bool(self._sockets)

    @property
    def port(self) -> int:
        """The bound port (useful after listening on port 0); RuntimeError before `start`."""
        if not self._sockets:
            raise RuntimeError("the web server is not started")
        return int(self._sockets[0].getsockname()[1])

    async def start(self, listen: str) -> None:
        """Bind `listen` (`host:port`, `[::1]:port`; port 0 picks one) and start serving.

        Raises `OSError` when the address cannot be bound, `ValueError` when malformed.
        """
        if self._server is not None:
            raise RuntimeError("the web server is already started")
        host, port = parse_listen(listen)
        self._sockets = bind(host, port)
        limits = self.gate.limits
        config = uvicorn.Config(
            self.app,
            http=gated_protocol(self.gate),
            lifespan="off",
            log_config=None,  # our logging is configured once, in `watcher.service.logs`
            log_level=logging.WARNING,
            access_log=False,
            server_header=False,
            timeout_keep_alive=max(1, round(limits.keep_alive)),
            timeout_graceful_shutdown=STOP_GRACE,
            # asyncio accepts up to `backlog` connections in one turn of the loop, and a
            # connection closed in that turn gives its descriptor back only in the next: a
            # flood could hold `backlog` descriptors at once, whatever the gate's limit.
            backlog=limits.max_connections * 2,
        )
        server = _QuietServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(self._sockets), name="watcher-http")
        await self._started(server, self._task)
        # the names of the health server before the page, kept for log queries
        log.info("health_server_started", host=host, port=self.port)

    async def _started(self, server: _QuietServer, task: asyncio.Task[None]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while not server.started:
            if task.done():
                await self._close()
                task.result()  # its exception, if any
                raise OSError("the web server stopped while starting")
            if loop.time() > deadline:
                await self.stop()
                raise OSError("the web server did not start in time")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting, let answers under way finish (briefly), close every connection."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        for conn in list(self.gate.open):
            if conn.cycle is None or conn.cycle.response_complete:
                conn.drop()  # idle: nothing to finish
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE + 2)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()
        log.info("health_server_stopped")

    async def _close(self) -> None:
        for conn in list(self.gate.open):
            conn.drop()
        for sock in self._sockets:
            sock.close()
        self._server = self._task = None
        self._sockets = []

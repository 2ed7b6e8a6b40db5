"""The ASGI layer in front of the routes: rate limits, auth, faults, headers and the request log.

Order for each request: apply the due timeline events; a `connection_reset` fault closes the
socket at once; the sliding-window limiter counts the request (429 when over a limit); the
bearer token is checked (401) and its scope for the method (403, `scoped_tokens`); `slow`,
`rate_limited`, `server_error`, `html_error`, `echo_headers` and `page_shift` faults act; the
routes answer; `unknown_enum`, `missing_fields`, `counters_backwards` and `truncated_json`
faults rewrite a 200 JSON body; a `dribble` fault sends the body a byte at a time. Every
answer carries the `ratelimit-*` headers, an `x-request-id` and a `Date` on the simulated
API's own clock (whole seconds, as HTTP dates are), and is appended to the simulator's request log.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import socket
import struct
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watcher.simulator.backend import Backend, ServedRequest
from watcher.simulator.faults import BODY_FAULTS, Fault, FaultKind, html_page, mutate_body

SIGNED_PATHS = "/_spaces/"  # object storage behind signed URLs: no bearer token
SIGNED_SCOPES = frozenset({"genai:read"})  # what a signed URL lets its holder do

_SERVER_ERROR_IDS = {
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def error_body(error_id: str, message: str, request_id: str) -> dict[str, str]:
    """DigitalOcean's error object."""
    body = {"id": error_id, "message": message}
    if request_id:
        body["request_id"] = request_id
    return body


@dataclass(slots=True)
class Reply:
    """A complete answer, held until it is sent."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)


def _json_reply(status: int, error_id: str, message: str, request_id: str) -> Reply:
    body = json.dumps(error_body(error_id, message, request_id), separators=(",", ":")).encode()
    return Reply(status, body)


# The scope each method needs (DigitalOcean's scoped tokens; see ../shared/api/NOTES.md).
_SCOPE_OF = {
    "GET": "genai:read",
    "HEAD": "genai:read",
    "POST": "genai:create",
    "PUT": "genai:update",
}
ALL_SCOPES = frozenset({"genai:read", "genai:create", "genai:update", "genai:delete"})


class Gate:
    """Wraps the route app with everything that is not about knowledge bases and jobs."""

    def __init__(self, app: ASGIApp, sim: Backend) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        request_id = str(uuid.uuid4())
        now = self.sim.sync()
        with self.sim.lock:
            reset = self.sim.board.take(FaultKind.CONNECTION_RESET, method, path, now)
            verdict = self.sim.limiter.admit(now)
        if reset is not None:
            self._log(method, path, query, None, [reset.kind.value])
            await _reset_connection(send)
            return
        if not verdict.allowed:
            reply = _json_reply(429, "too_many_requests", "API rate limit exceeded.", request_id)
        elif (
            scopes := self._scopes(scope) if not path.startswith(SIGNED_PATHS) else SIGNED_SCOPES
        ) is None:
            reply = _json_reply(401, "unauthorized", "Unable to authenticate you.", request_id)
        elif (needed := _SCOPE_OF.get(method, "genai:read")) not in scopes:
            text = f"You are not authorized to perform this operation (needs {needed})."
            reply = _json_reply(403, "forbidden", text, request_id)
        else:
            reply = await self._serve(scope, receive, request_id)
        headers = {**verdict.headers(), **reply.headers}
        headers["x-request-id"] = request_id
        headers["date"] = formatdate(self.sim.now().timestamp(), usegmt=True)
        dribble = self._take(FaultKind.DRIBBLE, scope)
        if dribble is not None and method != "HEAD":
            reply.faults.append(dribble.kind.value)
        # Logged before the answer goes out: a client that has its answer finds it logged
        # (sent first, a test reading `requests` on a loaded machine could miss it).
        self._log(method, path, query, reply.status, reply.faults)
        if dribble is None or method == "HEAD":
            await _send(send, reply, headers, head=method == "HEAD")
        else:
            await _dribble(send, receive, reply, headers, dribble)

    def _signed_or_scopes(self, scope: Scope, path: str) -> frozenset[str] | None:
        """Object storage behind a signed URL needs no token (the handler checks the
        signature); every other path the token's scopes."""
        return SIGNED_SCOPES if path.startswith(SIGNED_PATHS) else self._scopes(scope)

    def _scopes(self, scope: Scope) -> frozenset[str] | None:
        """The scopes of the request's bearer token (the main token has them all), or None
        when it carries none the simulator knows (401)."""
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
                if hmac.compare_digest(token.encode(), self.sim.token.encode()):
                    return ALL_SCOPES
                for known, scopes in self.sim.scoped_tokens.items():
                    if hmac.compare_digest(token.encode(), known.encode()):
                        return scopes
                return None
        return None

    def _take(self, kind: FaultKind, scope: Scope) -> Fault | None:
        with self.sim.lock:
            return self.sim.board.take(kind, scope["method"], scope["path"], self.sim.now())

    async def _serve(self, scope: Scope, receive: Receive, request_id: str) -> Reply:
        applied: list[str] = []
        if (slow := self._take(FaultKind.SLOW, scope)) is not None:
            applied.append(slow.kind.value)
            await asyncio.sleep(slow.delay)
        reply = self._injected_error(scope, request_id) or await self._route(
            scope, receive, request_id
        )
        if reply.status == 200 and reply.content_type.startswith("application/json"):
            for kind in BODY_FAULTS:
                if (fault := self._take(kind, scope)) is not None:
                    reply.body = mutate_body(reply.body, fault)
                    reply.faults.append(fault.kind.value)
        reply.faults[:0] = applied
        return reply

    def _injected_error(self, scope: Scope, request_id: str) -> Reply | None:
        if (fault := self._take(FaultKind.RATE_LIMITED, scope)) is not None:
            reply = _json_reply(429, "too_many_requests", "API rate limit exceeded.", request_id)
            if fault.retry_after is not None:
                reply.headers["retry-after"] = str(math.ceil(fault.retry_after))
        elif (fault := self._take(FaultKind.SERVER_ERROR, scope)) is not None:
            status = fault.error_status
            error_id = _SERVER_ERROR_IDS.get(status, "server_error")
            reply = _json_reply(status, error_id, "Unexpected server-side error", request_id)
        elif (fault := self._take(FaultKind.HTML_ERROR, scope)) is not None:
            reply = Reply(fault.error_status, html_page(fault.error_status), "text/html")
        elif (fault := self._take(FaultKind.ECHO_HEADERS, scope)) is not None:
            status = fault.error_status
            error_id = _SERVER_ERROR_IDS.get(status, "server_error")
            reply = _json_reply(status, error_id, _echo(scope), request_id)
        else:
            return None
        reply.faults.append(fault.kind.value)
        return reply

    async def _route(self, scope: Scope, receive: Receive, request_id: str) -> Reply:
        faults: list[str] = []
        page = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("page", ["1"])[0]
        if scope["method"] == "GET" and page.isdigit() and int(page) >= 2:
            shift = self._take(FaultKind.PAGE_SHIFT, scope)
            if shift is not None:
                with self.sim.lock:
                    self.sim.world.shift_lists(self.sim.now())
                faults.append(shift.kind.value)
        state = {**scope.get("state", {}), "request_id": request_id}
        captured = _Capture()
        await self.app({**scope, "state": state}, receive, captured)
        reply = captured.reply()
        reply.faults.extend(faults)
        return reply

    def _log(
        self, method: str, path: str, query: str, status: int | None, faults: list[str]
    ) -> None:
        record = ServedRequest(
            method, path, query, status, self.sim.now(), time.time(), tuple(faults)
        )
        self.sim.record(record)


class _Capture:
    """An ASGI `send` that keeps the inner app's answer instead of sending it."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            for name, value in message.get("headers", []):
                self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            self.chunks.append(bytes(message.get("body", b"")))

    def reply(self) -> Reply:
        content_type = self.headers.pop("content-type", "application/json")
        self.headers.pop("content-length", None)
        return Reply(self.status, b"".join(self.chunks), content_type, self.headers)


async def _send(send: Send, reply: Reply, headers: dict[str, str], *, head: bool) -> None:
    merged = dict(headers)
    merged["content-type"] = reply.content_type
    merged["content-length"] = str(len(reply.body))
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in merged.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": raw})
    body = b"" if head else reply.body
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _dribble(
    send: Send, receive: Receive, reply: Reply, headers: dict[str, str], fault: Fault
) -> None:
    """Send the head at once, then the body a chunk at a time until it is out or the client
    hung up (logged before the first byte: the answer may never finish)."""
    merged = {**headers, "content-type": reply.content_type}
    merged["content-length"] = str(len(reply.body))
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in merged.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": raw})
    gone = asyncio.ensure_future(_disconnected(receive))
    size = max(1, fault.chunk)
    try:
        for start in range(0, len(reply.body), size):
            if gone.done():
                return
            chunk = reply.body[start : start + size]
            more = start + size < len(reply.body)
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if more:
                await asyncio.wait({gone}, timeout=fault.dribble_every)
    finally:
        gone.cancel()


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (the request body, if any, is read and dropped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _echo(scope: Scope) -> str:
    """A gateway's error message that quotes every request header, credentials and all."""
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    return f"upstream refused {scope['method']} {scope['path']}; request headers: {headers}"


async def _reset_connection(send: Send) -> None:
    """Drop the TCP connection with a RST and no answer (in process: raise instead)."""
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionResetError("simulated connection reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    cycle.disconnected = True

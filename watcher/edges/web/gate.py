"""How many connections the page's server holds, and for how long: the connection gate.

uvicorn accepts every connection and keeps it until the client speaks: a connection that never
sends a request has no timeout, and its `limit_concurrency` answers 503 only to requests, so
1,000 idle connections hold 1,000 descriptors (the hand-written server before it ran the
process out of them, and the store and the API client with it). The gate bounds both:

- **At most `limit` connections.** A connection beyond it takes the place of the one that has
  waited longest for a request (idle since it opened, or since its last answer); when every
  connection is busy with a request, the newcomer gets `503` and is closed at once. So a flood
  of idle connections costs at most `limit` descriptors, and a probe that arrives during it
  (it sends its request at once) is still answered.
- **A request head within `head_timeout`** of the connection opening or of its last answer,
  however slowly it trickles in (a slow client cannot hold a connection by sending a byte
  now and then); uvicorn's own keep-alive timeout closes a quiet connection sooner.
- **An answer within `request_timeout`** of the head, read by the client or not: a client
  that stops reading cannot hold a connection either.

The gate wraps uvicorn's h11 protocol (pinned: `http=` is this class, whatever else is
installed), which keeps parsing HTTP; only the bookkeeping of idle and busy is ours.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

_REFUSED: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 21\r\n\r\ntoo many connections\n"
)


@dataclass(frozen=True, slots=True)
class Limits:
    """The gate's bounds: connections held at once, and seconds for a head and an answer."""

    max_connections: int = 64
    head_timeout: float = 10.0
    request_timeout: float = 30.0
    keep_alive: float = 5.0


class Gate:
    """The connections of one server: which wait for a request (oldest first) and how many."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open: set[GatedProtocol] = set()
        self._idle: dict[GatedProtocol, None] = {}  # insertion order: longest idle first
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    def admit(self, conn: GatedProtocol) -> bool:
        """Whether `conn` may stay: below the limit, or in the place of the longest idle."""
        if len(self.open) >= self.limits.max_connections:
            if not self._idle:
                self.refused += 1
                return False
            oldest = next(iter(self._idle))
            self.evicted += 1
            oldest.drop()
            self.leave(oldest)  # its descriptor is closed: its place is free now
        self.open.add(conn)
        return True

    def idle(self, conn: GatedProtocol) -> None:
        """`conn` waits for a request from now on."""
        self._idle.pop(conn, None)
        self._idle[conn] = None

    def busy(self, conn: GatedProtocol) -> None:
        """`conn` is answering a request."""
        self._idle.pop(conn, None)

    def leave(self, conn: GatedProtocol) -> None:
        """`conn` is closed."""
        self._idle.pop(conn, None)
        self.open.discard(conn)


class GatedProtocol(H11Protocol):
    """uvicorn's h11 protocol under a `Gate` (set on the subclass `gated_protocol` makes)."""

    gate: Gate

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._admitted = False
        self._timer: asyncio.TimerHandle | None = None
        self._request: object | None = None  # the request cycle last seen

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self.gate.admit(self):
            transport.write(_REFUSED)
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._wait(self.gate.limits.head_timeout, idle=True)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._stop_timer()
        self.gate.leave(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        super().data_received(data)
        cycle = self.cycle
        if cycle is not None and cycle is not self._request and not cycle.response_complete:
            self._request = cycle  # a whole request head arrived: the answer is under way
            self._wait(self.gate.limits.request_timeout, idle=False)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._admitted and not self.transport.is_closing():
            self._wait(self.gate.limits.head_timeout, idle=True)

    def drop(self) -> None:
        """Close this connection now (evicted, or out of time)."""
        if self._admitted and not self.transport.is_closing():
            self.transport.close()

    def _wait(self, seconds: float, *, idle: bool) -> None:
        self._stop_timer()
        self._timer = self.loop.call_later(seconds, self._out_of_time)
        if idle:
            self.gate.idle(self)
        else:
            self.gate.busy(self)

    def _out_of_time(self) -> None:
        self._timer = None
        self.gate.timed_out += 1
        self.drop()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def gated_protocol(gate: Gate) -> type[GatedProtocol]:
    """The protocol class for uvicorn's `http=` setting, bound to `gate`."""
    return type("GatedH11Protocol", (GatedProtocol,), {"gate": gate})

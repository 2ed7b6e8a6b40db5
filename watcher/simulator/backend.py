"""What the HTTP layers (`gate`, `app`) need of the simulator, and the record of each request.

`Simulator` implements `Backend`; the gate and the routes know it only through this Protocol,
so the simulator builds its app without an import circle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from watcher.simulator.faults import FaultBoard
from watcher.simulator.ratelimit import RateLimiter
from watcher.simulator.scenario import Scenario
from watcher.simulator.world import World

T = TypeVar("T")


SIGNED_REPORTS = "/_spaces/reports/"  # `watcher.simulator.extras.SPACES`
_DATA_SOURCES = re.compile(r"/knowledge_bases/[^/]+/data_sources$")
_ONE_KB = re.compile(r"/knowledge_bases/[^/]+$")


@dataclass(frozen=True, slots=True)
class ServedRequest:
    """One request the simulator received and how it answered (status None: connection reset).

    `at` is the API's clock (simulated time), `wall` the host's `time.time()`; `faults` the
    fault kinds applied to the answer, in order.
    """

    method: str
    path: str
    query: str
    status: int | None
    at: datetime
    wall: float
    faults: tuple[str, ...] = ()

    @property
    def read_kind(self) -> str:
        """`polling`, or which extra read this request was: `schedule`, `prices`, `report`
        (a signed report URL), `agents`, `sources` (a KB's data sources) or `database` (one
        KB read, for its `database_status`) — for tests and benchmarks that count them."""
        path = self.path
        if "/scheduled-indexing/" in path:
            return "schedule"
        if "/models" in path:
            return "prices"
        if "details_signed_url" in path or path.startswith(SIGNED_REPORTS):
            return "report"
        if "/agents" in path:
            return "agents"
        if _DATA_SOURCES.search(path):
            return "sources"
        if _ONE_KB.search(path):
            return "database"
        return "polling"


class Backend(Protocol):
    """The simulated API's state as the gate and the routes reach it; `world`, `board` and
    `limiter` are read and changed only under `lock`."""

    @property
    def lock(self) -> AbstractContextManager[Any]: ...

    @property
    def token(self) -> str:
        """The one bearer token the API accepts."""
        ...

    @property
    def scoped_tokens(self) -> Mapping[str, frozenset[str]]:
        """Further tokens the API accepts, each with only its scopes (`genai:read`, ...)."""
        ...

    @property
    def scenario(self) -> Scenario: ...

    @property
    def world(self) -> World: ...

    @property
    def board(self) -> FaultBoard: ...

    @property
    def limiter(self) -> RateLimiter: ...

    def now(self) -> datetime:
        """The API's clock (UTC)."""
        ...

    def sync(self) -> datetime:
        """Apply every timeline event that is due; return the API's clock."""
        ...

    def record(self, request: ServedRequest) -> None:
        """Append one answered request to the log."""
        ...

    def read(self, view: Callable[[World, datetime], T]) -> T:
        """Run `view` over the world at the current time, under the lock."""
        ...

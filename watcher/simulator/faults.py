"""Faults the simulated API can be told to commit, and the board that keeps the active ones.

A `Fault` targets requests whose path starts with `path_prefix` (and, if given, whose method
is `method`) and affects the next `count` such responses (`count=None`: until cleared or
until it expires). Kinds:

- `rate_limited`: 429 `too_many_requests`, with `retry-after: <retry_after>` unless it is None.
- `server_error`: a DO-shaped JSON error with `status` (500 by default; 502/503 work too).
- `html_error`: a proxy's HTML error page with `status` (502 by default), not JSON.
- `slow`: the answer is delayed by `delay` real seconds, then served normally.
- `truncated_json`: status 200 but the body is cut in half.
- `unknown_enum`: every job object in the answer carries `phase` / `job_status` instead.
- `missing_fields`: the keys in `drop` are removed from every job and data-source object.
- `page_shift`: when a list is asked for page 2 or later, a new knowledge base with a new
  job is first inserted at the head of both lists, so every item moves down one place.
- `connection_reset`: the TCP connection is reset without any answer.
- `counters_backwards`: every job's progress counters read lower than they are (one data
  source fewer completed, half the tokens and half of each data source's item counts), as
  a stale replica behind a load balancer would answer.
- `dribble`: the status line and headers go out at once, then the body `chunk` bytes at a
  time, one chunk every `delay` seconds (default: one byte a second), until the client hangs
  up: a read timeout between bytes never fires, only a deadline ends it.
- `echo_headers`: a DO-shaped JSON error with `status` (500 by default) whose message quotes
  the request's headers, `Authorization` and its token included, as a debugging gateway or a
  misconfigured proxy does. Nothing of it may reach an alert, the store or a terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Any


class FaultKind(StrEnum):
    """The kinds of misbehaviour the simulator can commit."""

    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    HTML_ERROR = "html_error"
    SLOW = "slow"
    TRUNCATED_JSON = "truncated_json"
    UNKNOWN_ENUM = "unknown_enum"
    MISSING_FIELDS = "missing_fields"
    PAGE_SHIFT = "page_shift"
    CONNECTION_RESET = "connection_reset"
    COUNTERS_BACKWARDS = "counters_backwards"
    DRIBBLE = "dribble"
    ECHO_HEADERS = "echo_headers"


# applied in this order: rewrite the JSON first, cut it last
BODY_FAULTS = (
    FaultKind.UNKNOWN_ENUM,
    FaultKind.MISSING_FIELDS,
    FaultKind.COUNTERS_BACKWARDS,
    FaultKind.TRUNCATED_JSON,
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One misbehaviour, aimed at a path prefix, for the next `count` answers (None: no limit)."""

    kind: FaultKind
    count: int | None = 1
    path_prefix: str = "/v2/"
    method: str | None = None
    status: int | None = None
    retry_after: float | None = 1.0
    delay: float = 0.0
    phase: str = "BATCH_JOB_PHASE_COMPLETED"
    job_status: str = "INDEX_JOB_STATUS_QUEUED"
    drop: tuple[str, ...] = ("status", "phase")
    chunk: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FaultKind):
            object.__setattr__(self, "kind", FaultKind(self.kind))

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return path.startswith(self.path_prefix)

    @property
    def dribble_every(self) -> float:
        """Seconds between two chunks of a dribbled body (one second unless `delay` says)."""
        return self.delay if self.delay > 0 else 1.0

    @property
    def error_status(self) -> int:
        if self.status is not None:
            return self.status
        return 502 if self.kind is FaultKind.HTML_ERROR else 500


_FIELDS = {
    "count": "count",
    "path": "path_prefix",
    "method": "method",
    "status": "status",
    "retry_after": "retry_after",
    "delay": "delay",
    "phase": "phase",
    "job_status": "job_status",
    "drop": "drop",
    "chunk": "chunk",
}


def fault_from_json(data: dict[str, Any]) -> Fault:
    """Build a `Fault` from its scenario form: {"kind": ..., "count", "path", "status", ...}."""
    unknown = set(data) - set(_FIELDS) - {"kind", "for"}
    if unknown:
        raise ValueError(f"unknown fault keys {sorted(unknown)}")
    try:
        kind = FaultKind(data["kind"])
    except (KeyError, ValueError) as exc:
        names = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"fault kind must be one of: {names}") from exc
    values = {_FIELDS[key]: value for key, value in data.items() if key in _FIELDS}
    if "drop" in values:
        values["drop"] = tuple(values["drop"])
    return Fault(kind, **values)


@dataclass(slots=True)
class ActiveFault:
    """A fault on the board with what is left of it."""

    fault: Fault
    remaining: int | None
    expires_at: datetime | None = None
    hits: int = field(default=0)


class FaultBoard:
    """The active faults, consumed one answer at a time in the order they were injected."""

    def __init__(self) -> None:
        self._active: list[ActiveFault] = []

    def add(self, fault: Fault, expires_at: datetime | None = None) -> None:
        if fault.count is not None and fault.count <= 0:
            raise ValueError("a fault's count must be positive (or None for no limit)")
        self._active.append(ActiveFault(fault, fault.count, expires_at))

    def clear(self) -> None:
        self._active.clear()

    @property
    def active(self) -> list[Fault]:
        return [entry.fault for entry in self._active]

    def take(self, kind: FaultKind, method: str, path: str, now: datetime) -> Fault | None:
        """The first live fault of `kind` aimed at this request, using up one of its answers."""
        self._active = [e for e in self._active if e.expires_at is None or now < e.expires_at]
        for entry in self._active:
            if entry.fault.kind is kind and entry.fault.matches(method, path):
                entry.hits += 1
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        self._active.remove(entry)
                return entry.fault
        return None


def mutate_body(body: bytes, fault: Fault) -> bytes:
    """Apply a body fault to a JSON answer."""
    if fault.kind is FaultKind.TRUNCATED_JSON:
        return body[: max(1, len(body) // 2)]
    payload = json.loads(body)
    _walk(payload, fault)
    return json.dumps(payload, separators=(",", ":")).encode()


def _walk(node: Any, fault: Fault) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, fault)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _walk(value, fault)
    is_job = "phase" in node
    is_source = "data_source_uuid" in node
    if fault.kind is FaultKind.UNKNOWN_ENUM and is_job:
        node["phase"] = fault.phase
        node["status"] = fault.job_status
    elif fault.kind is FaultKind.MISSING_FIELDS and (is_job or is_source):
        for key in fault.drop:
            node.pop(key, None)
    elif fault.kind is FaultKind.COUNTERS_BACKWARDS:
        _roll_back(node, is_job=is_job, is_source=is_source)


_SOURCE_COUNTERS = ("indexed_item_count", "indexed_file_count", "total_bytes_indexed")


def _roll_back(node: dict[str, Any], *, is_job: bool, is_source: bool) -> None:
    """Lower a job's (or data source's) progress counters, keeping their wire types."""
    if is_job and isinstance(node.get("completed_datasources"), int):
        node["completed_datasources"] = max(0, node["completed_datasources"] - 1)
    if is_job and isinstance(node.get("total_tokens"), str) and node["total_tokens"].isdigit():
        node["total_tokens"] = str(int(node["total_tokens"]) // 2)
    if is_source:
        for key in _SOURCE_COUNTERS:
            if isinstance(node.get(key), str) and node[key].isdigit():
                node[key] = str(int(node[key]) // 2)


def html_page(status: int) -> bytes:
    """The kind of HTML error page a proxy in front of an API serves."""
    title = f"{status} {HTTPStatus(status).phrase}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()

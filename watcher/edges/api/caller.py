"""One request path for the API client: budget, send, record, retry, translate errors.

`HttpCaller.call` waits for the request budget, sends, reports a `RequestRecord`, then parses
a 2xx or decides: connection errors, timeouts, 408, 429, 5xx and unreadable 2xx bodies are
retried with full-jitter exponential backoff (a server-given `retry-after`, or on a 429 a
future `ratelimit-reset`, replaces the backoff); any other status raises a typed
`ApiStatusError` at once. A request that may have been acted on (a POST that timed out or got
a 5xx) is never sent twice. Every httpx exception is translated here.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import structlog

from watcher.core.errors import (
    ApiStatusError,
    Forbidden,
    MalformedResponse,
    NotFound,
    RetryableSourceError,
    SourceError,
    Unauthorized,
)
from watcher.core.model import ApiError, RateLimit
from watcher.edges.api import wire
from watcher.edges.api.clock import ApiClock
from watcher.edges.api.ratebudget import RequestBudget, backoff_delay, server_wait

T = TypeVar("T")
log = structlog.get_logger(__name__)

_SCOPES = {"GET": "genai:read", "POST": "genai:create", "PUT": "genai:update"}


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP attempt: `endpoint` is the path template, `status` None when nothing answered."""

    method: str
    endpoint: str
    status: int | None
    duration_s: float
    attempt: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One API operation: method, path template, the uuid that fills it, query and body."""

    method: str
    endpoint: str
    uuid: str = ""
    params: Mapping[str, int] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None

    @property
    def path(self) -> str:
        return self.endpoint.format(uuid=quote(self.uuid, safe=""))

    @property
    def idempotent(self) -> bool:
        return self.method != "POST"


@dataclass(frozen=True, slots=True)
class RequestRetryPolicy:
    """How often and how long to retry one API request (seconds; `max_wait` caps any wait the
    server asks for with `retry-after`). Not the outbox's `watcher.core.decide.RetryPolicy`."""

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_wait: float = 60.0


class _Retry(Exception):
    """One failed attempt that another attempt may fix."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        wait: float | None = None,
        may_have_acted: bool = True,
        malformed: bool = False,
    ) -> None:
        super().__init__(detail)
        self.detail, self.status, self.wait = detail, status, wait
        self.may_have_acted, self.malformed = may_have_acted, malformed


@dataclass(slots=True)
class HttpCaller:
    """Sends `Call`s through one httpx client under one budget and one retry policy."""

    http: httpx.AsyncClient
    budget: RequestBudget
    policy: RequestRetryPolicy
    token_source: str
    sleep: Callable[[float], Awaitable[None]]
    monotonic: Callable[[], float]
    wall_clock: Callable[[], float]  # Unix seconds on the API's clock (`ratelimit-reset`)
    rng: random.Random
    on_response: Callable[[RequestRecord], None] | None = None
    dates: ApiClock | None = None  # learns the API's clock from every answer's `Date`
    rate_limit: RateLimit | None = None
    sent: Counter[str] = field(default_factory=Counter)

    async def call(self, call: Call, parse: Callable[[object], T]) -> T:
        """Send with retries and return the parsed body; raise a `SourceError` subclass."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(call, attempt, parse)
            except _Retry as retry:
                safe = call.idempotent or not retry.may_have_acted
                if attempt >= self.policy.max_attempts or not safe:
                    raise _give_up(call, attempt, retry) from retry.__cause__
                wait = retry.wait
                if wait is None:
                    p = self.policy
                    wait = backoff_delay(
                        attempt, base=p.backoff_base, cap=p.backoff_max, rng=self.rng
                    )
                log.warning(
                    "api_request_retried",
                    method=call.method,
                    path=call.path,
                    attempt=attempt,
                    reason=retry.detail,
                    wait_s=round(wait, 3),
                )
                await self.sleep(wait)

    async def _attempt(self, call: Call, attempt: int, parse: Callable[[object], T]) -> T:
        await self.budget.acquire()
        self.sent[f"{call.method} {call.endpoint}"] += 1
        started = self.monotonic()
        try:
            response = await self.http.request(
                call.method, call.path, params=dict(call.params), json=call.body
            )
        except httpx.HTTPError as exc:
            self._record(call, None, started, attempt, type(exc).__name__)
            raise _translate(exc) from exc
        if self.dates is not None:
            date = response.headers.get("date")
            self.dates.observe(date, sent=started, received=self.monotonic())
        rate = wire.parse_rate_limit(response.headers, now=self.wall_clock())
        self.rate_limit = rate
        self.budget.observe(rate)
        self._record(call, response.status_code, started, attempt, None)
        if response.is_success:
            return _parse_body(response, parse)
        raise self._failure(call, response, rate)

    def _failure(self, call: Call, response: httpx.Response, rate: RateLimit) -> Exception:
        status = response.status_code
        error = _api_error(response)
        if status in (408, 429) or status >= 500:
            cap, now = self.policy.max_wait, self.wall_clock()
            wait = server_wait(rate, now=now, cap=cap, use_reset=status == 429)
            detail = f"HTTP {status}{_describe(error)}"
            return _Retry(detail, status=status, wait=wait, may_have_acted=status != 429)
        kind, hint = ApiStatusError, ""
        if status == 401:
            kind = Unauthorized
            hint = (
                f"HTTP 401: the API refused the token from {self.token_source}; "
                "check that it is complete, not expired and not revoked."
            )
        elif status == 403:
            scope = _SCOPES.get(call.method, "genai:read")
            kind, hint = Forbidden, f"The token from {self.token_source} lacks the {scope} scope."
        elif status == 404:
            kind = NotFound
        elif 300 <= status < 400:
            hint = "Redirects are not followed: check api.base_url."
        return kind(
            status,
            method=call.method,
            path=call.path,
            api_id=error.id,
            api_message=error.message,
            request_id=error.request_id,
            hint=hint,
        )

    def _record(
        self, call: Call, status: int | None, started: float, attempt: int, error: str | None
    ) -> None:
        duration = max(0.0, self.monotonic() - started)
        record = RequestRecord(call.method, call.endpoint, status, duration, attempt, error)
        log.debug(
            "api_request",
            method=call.method,
            path=call.path,
            status=status,
            duration_s=round(duration, 4),
            attempt=attempt,
            error=error,
            ratelimit_remaining=self.rate_limit.remaining if self.rate_limit else None,
            budget_left=self.budget.left_in_window(),
        )
        if self.on_response is not None:
            self.on_response(record)


def _give_up(call: Call, attempts: int, retry: _Retry) -> SourceError:
    text = f"{call.method} {call.path} failed after {attempts} attempt(s): {retry.detail}"
    if retry.malformed:
        return MalformedResponse(text)
    return RetryableSourceError(text, status=retry.status)


def _translate(exc: httpx.HTTPError) -> Exception:
    """An httpx failure as a retry; only a failed connect is known not to have reached the API."""
    name = type(exc).__name__
    if isinstance(exc, httpx.DecodingError):
        return _Retry(f"undecodable body ({name})", malformed=True)
    if isinstance(exc, httpx.TransportError):
        acted = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        return _Retry(f"no answer ({name}: {exc})", may_have_acted=acted)
    return SourceError(f"HTTP client error ({name}: {exc})")


def _parse_body(response: httpx.Response, parse: Callable[[object], T]) -> T:
    status = response.status_code
    try:
        return parse(json.loads(response.content))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        detail = f"HTTP {status} with a body that is not JSON ({exc})"
        raise _Retry(detail, status=status, malformed=True) from exc
    except MalformedResponse as exc:
        detail = f"HTTP {status} with an unexpected body: {exc}"
        raise _Retry(detail, status=status, malformed=True) from exc


def _api_error(response: httpx.Response) -> ApiError:
    try:
        error = wire.parse_api_error(json.loads(response.content))
    except ValueError:
        error = ApiError()
    if error.request_id is None and (header := response.headers.get("x-request-id")):
        return ApiError(error.id, error.message, header)
    return error


def _describe(error: ApiError) -> str:
    parts = [
        f"id={error.id}" if error.id else "",
        f"message={error.message!r}" if error.message else "",
        f"request_id={error.request_id}" if error.request_id else "",
    ]
    text = " ".join(p for p in parts if p)
    return f" ({text})" if text else ""

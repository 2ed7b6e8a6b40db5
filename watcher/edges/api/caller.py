"""One request path for the API client: budget, send, record, retry, translate errors.

`HttpCaller.call` waits for the request budget, sends, reports a `RequestRecord`, then parses
a 2xx or decides: connection errors, timeouts, 408, 429, 5xx and unreadable 2xx bodies are
retried with full-jitter exponential backoff (a server-given `retry-after`, or on a 429 a
future `ratelimit-reset`, replaces the backoff); any other status raises a typed
`ApiStatusError` at once. A request that may have been acted on (a POST that timed out or got
a 5xx) is never sent twice. Every httpx exception is translated here.

Each attempt has one deadline for the whole exchange (`timeout`: connecting, the status line
and headers, and every byte of the body), so an answer that trickles a byte at a time ends
there like any timeout. The body is read within `max_bytes` (see `body.read_body`): a 2xx
answer over the cap is a failed read at once, logged with its size, never parsed nor retried.
Whatever goes wrong while an answer is read or parsed, whatever the exception, `call` raises
a `SourceError`: a failed API read, never anything else.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote, urlencode

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
from watcher.edges.api.body import (
    TooLarge,
    Unreadable,
    decode_json,
    may_hold_bad_text,
    read_body,
)
from watcher.edges.api.clock import ApiClock
from watcher.edges.api.ratebudget import RequestBudget, backoff_delay, server_wait
from watcher.edges.api.settings import RequestRetry

T = TypeVar("T")
Reuse: TypeAlias = Callable[[bytes, Callable[[], T]], T]
"""Given a 2xx body and the way to parse it, the parsed value (parsed now, or kept)."""
log = structlog.get_logger(__name__)

_SCOPES = {"GET": "genai:read", "POST": "genai:create", "PUT": "genai:update"}
_SCOPE_USE = {
    "POST": " (needed to start an indexing job)",
    "PUT": " (needed to cancel an indexing job)",
}


URLS_KEPT = 1024
"""Parsed URLs an `HttpCaller` keeps (one per target: a KB's job list, a page of a list)."""


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
    params: Mapping[str, int | str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None

    @property
    def path(self) -> str:
        return self.endpoint.format(uuid=quote(self.uuid, safe=""))

    @property
    def target(self) -> str:
        """The path with its query (`page=2&per_page=200`), percent-encoded."""
        if not self.params:
            return self.path
        return f"{self.path}?{urlencode(self.params, quote_via=quote)}"

    @property
    def idempotent(self) -> bool:
        return self.method != "POST"


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


class OnceLog:
    """Remembers what was logged already, so each cause is logged once (at most `size`
    causes are remembered: a hostile API cannot grow it without bound; past that, a cause
    may be logged again)."""

    def __init__(self, size: int = 4096) -> None:
        self._seen: set[object] = set()
        self._size = size

    def first(self, key: object) -> bool:
        """Whether `key` is new (and remember it)."""
        if key in self._seen:
            return False
        if len(self._seen) >= self._size:
            self._seen.clear()
        self._seen.add(key)
        return True


@dataclass(frozen=True, slots=True)
class _Answer:
    """What came back for one attempt: status, headers and the body, read whole."""

    status: int
    headers: httpx.Headers
    content: bytes
    rate: RateLimit

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


@dataclass(slots=True)
class HttpCaller:
    """Sends `Call`s through one httpx client under one budget and one retry policy; each
    attempt ends within `timeout` seconds, and reads at most `max_bytes` of body."""

    http: httpx.AsyncClient
    budget: RequestBudget
    policy: RequestRetry
    token_source: str
    sleep: Callable[[float], Awaitable[None]]
    monotonic: Callable[[], float]
    wall_clock: Callable[[], float]  # Unix seconds on the API's clock (`ratelimit-reset`)
    rng: random.Random
    timeout: float = 30.0
    max_bytes: int = 16 * 1024 * 1024
    on_response: Callable[[RequestRecord], None] | None = None
    dates: ApiClock | None = None  # learns the API's clock from every answer's `Date`
    rate_limit: RateLimit | None = None
    sent: Counter[str] = field(default_factory=Counter)
    once: OnceLog = field(default_factory=OnceLog)
    base_url: str = field(init=False)  # the client's, without its trailing slash
    # each target's parsed URL: the KB list's pages are asked for again every cycle
    urls: dict[str, httpx.URL] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.base_url = str(self.http.base_url).rstrip("/")

    def url(self, target: str) -> httpx.URL:
        """The absolute URL of `target`, parsed once (at most `URLS_KEPT` kept at a time)."""
        url = self.urls.get(target)
        if url is None:
            if len(self.urls) >= URLS_KEPT:
                self.urls.clear()
            url = self.urls[target] = httpx.URL(self.base_url + target)
        return url

    async def call(
        self, call: Call, parse: Callable[[object], T], reuse: Reuse[T] | None = None
    ) -> T:
        """Send with retries and return the parsed body; raise a `SourceError` subclass, and
        only that, whatever went wrong while reading or parsing the answer. With `reuse`, a
        2xx body is handed to it with the way to parse it (`memo.PageMemo.reuse`)."""
        try:
            return await self._call(call, parse, reuse)
        except SourceError:
            raise
        except Exception as exc:  # the rule: no failure to read an answer escapes as another type
            text = f"{call.method} {call.path}: the answer could not be read ({_short(exc)})"
            raise MalformedResponse(text) from exc

    async def _call(self, call: Call, parse: Callable[[object], T], reuse: Reuse[T] | None) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(call, attempt, parse, reuse)
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

    async def _attempt(
        self, call: Call, attempt: int, parse: Callable[[object], T], reuse: Reuse[T] | None
    ) -> T:
        await self.budget.acquire()
        self.sent[f"{call.method} {call.endpoint}"] += 1
        answer = await self._exchange(call, attempt)
        if answer.is_success:
            note = partial(self._note_bad_text, call)
            if reuse is None:
                return _parse_body(call, answer, parse, note)
            return reuse(answer.content, partial(_parse_body, call, answer, parse, note))
        raise self._failure(call, answer)

    async def _exchange(self, call: Call, attempt: int) -> _Answer:
        """One request and its whole answer, within the deadline and the size cap."""
        started = self.monotonic()
        status: int | None = None
        try:
            # One absolute URL, parsed once: httpx merging a path with the base URL and then
            # the query parses the URL three times (85 µs of a request's CPU against 27 µs);
            # and once per target, not per request (14 µs: httpx checks it char by char).
            url = self.url(call.target)
            async with (
                asyncio.timeout(self.timeout),
                self.http.stream(call.method, url, json=call.body) as response,
            ):
                status = response.status_code
                rate = self._observe(response, started)
                content = await self._read(call, response)
        except TimeoutError as exc:
            self._record(call, status, started, attempt, "TimeoutError")
            detail = f"no complete answer within {self.timeout:g}s"
            raise _Retry(detail, status=status) from exc
        except httpx.HTTPError as exc:
            self._record(call, status, started, attempt, type(exc).__name__)
            raise _translate(exc) from exc
        except (MalformedResponse, _Retry):
            self._record(call, status, started, attempt, "unreadable body")
            raise
        self._record(call, status, started, attempt, None)
        return _Answer(status, response.headers, content, rate)

    def _observe(self, response: httpx.Response, started: float) -> RateLimit:
        """Learn the API's clock and its rate limit from an answer's headers."""
        if self.dates is not None:
            date = response.headers.get("date")
            self.dates.observe(date, sent=started, received=self.monotonic())
        rate = wire.parse_rate_limit(response.headers, now=self.wall_clock())
        self.rate_limit = rate
        self.budget.observe(rate)
        return rate

    async def _read(self, call: Call, response: httpx.Response) -> bytes:
        """The body within the cap. Over the cap, a 2xx is a failed read (logged with its
        size, not retried: it would be as large again); an error answer's unreadable body only
        costs its message."""
        status = response.status_code
        try:
            return await read_body(response, self.max_bytes)
        except (TooLarge, Unreadable) as exc:
            if not response.is_success:
                return b""
            if isinstance(exc, Unreadable):
                detail = f"HTTP {status} with a body that cannot be read ({exc})"
                raise _Retry(detail, status=status, malformed=True) from exc
            log.warning(
                "api_response_too_large",
                method=call.method,
                path=call.path,
                status=status,
                size_bytes=exc.size,
                limit_bytes=exc.limit,
                declared=exc.declared,
            )
            text = f"{call.method} {call.path} answered HTTP {status}, but {exc}: not read"
            raise MalformedResponse(text) from exc

    def _failure(self, call: Call, answer: _Answer) -> Exception:
        status, rate = answer.status, answer.rate
        error = _api_error(answer)
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
            kind, hint = (
                Forbidden,
                (
                    f"The token from {self.token_source} lacks the {scope} scope"
                    f"{_SCOPE_USE.get(call.method, '')}."
                ),
            )
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

    def _note_bad_text(self, call: Call, value: object) -> None:
        """Log, once per field and item, the text of an answer that cannot be read (an
        unreadable uuid drops its item, which `api_item_skipped` tells)."""
        for where, uuid in wire.unreadable_text(value):
            if where.rpartition(".")[2] == "uuid":
                continue
            if self.once.first(("text", call.endpoint, where, uuid)):
                log.warning(
                    "api_text_unreadable",
                    endpoint=call.endpoint,
                    field=where,
                    item=uuid,
                    treated_as="missing",
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


def _parse_body(
    call: Call, answer: _Answer, parse: Callable[[object], T], note: Callable[[object], None]
) -> T:
    """The parsed body of a 2xx; any failure to decode or parse it, whatever its exception,
    is an unreadable answer (retried, then a failed read). Text that cannot be read is shown
    to `note` first (it only costs the fields that hold it)."""
    status = answer.status
    try:
        value = decode_json(answer.content)
        if may_hold_bad_text(answer.content):
            note(value)
        return parse(value)
    except wire.OverLimit as exc:
        log.warning(
            "api_list_too_long",
            method=call.method,
            path=call.path,
            items=exc.count,
            limit=exc.limit,
        )
        raise MalformedResponse(f"{call.method} {call.path}: {exc}") from exc
    except Unreadable as exc:
        raise _Retry(
            f"HTTP {status} with a body that is {exc}", status=status, malformed=True
        ) from exc
    except MalformedResponse as exc:
        detail = f"HTTP {status} with an unexpected body: {exc}"
        raise _Retry(detail, status=status, malformed=True) from exc
    except Exception as exc:  # RecursionError, TypeError...: still only an unreadable body
        detail = f"HTTP {status} with a body that cannot be parsed ({_short(exc)})"
        raise _Retry(detail, status=status, malformed=True) from exc


def _api_error(answer: _Answer) -> ApiError:
    try:
        error = wire.parse_api_error(decode_json(answer.content))
    except Exception:  # an error answer whose body is not the API's error object
        error = ApiError()
    if error.request_id is None and (header := answer.headers.get("x-request-id")):
        return ApiError(error.id, error.message, header)
    return error


def _short(exc: BaseException) -> str:
    """An exception as `Type: message`, its message cut to 120 characters."""
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def _describe(error: ApiError) -> str:
    parts = [
        f"id={error.id}" if error.id else "",
        f"message={error.message!r}" if error.message else "",
        f"request_id={error.request_id}" if error.request_id else "",
    ]
    text = " ".join(p for p in parts if p)
    return f" ({text})" if text else ""

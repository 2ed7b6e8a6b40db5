"""The DigitalOcean GenAI API client: httpx inside, the watcher's error tree and values outside.

`ApiClient` implements `watcher.core.ports.Source` plus the account-wide job list and the two
writes the CLI needs (start, cancel). Requests go through `watcher.edges.api.caller` (budget,
retries, typed errors); bodies are parsed by `watcher.edges.api.wire`; paged lists are read over
every page, with a second pass when the list moved under us (`watcher.edges.api.paging`).
Redirects are never followed, and the token lives only in the httpx client's headers.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol, TypeVar

import httpx
import structlog

from watcher.core.errors import ConfigError, ConfigProblem
from watcher.core.model import DataSourceJob, Job, KnowledgeBase, RateLimit
from watcher.edges.api import wire
from watcher.edges.api.caller import Call, HttpCaller, RequestRecord, RequestRetryPolicy
from watcher.edges.api.clock import ApiClock
from watcher.edges.api.memo import ParseMemo
from watcher.edges.api.paging import Sweep, merge
from watcher.edges.api.ratebudget import RequestBudget

__all__ = ["ApiClient", "RequestRecord"]

T = TypeVar("T", bound="_HasUuid")
U = TypeVar("U")
log = structlog.get_logger(__name__)

JOBS = "/v2/gen-ai/indexing_jobs"
JOB = "/v2/gen-ai/indexing_jobs/{uuid}"
JOB_CANCEL = "/v2/gen-ai/indexing_jobs/{uuid}/cancel"
JOB_DATA_SOURCES = "/v2/gen-ai/indexing_jobs/{uuid}/data_sources"
KBS = "/v2/gen-ai/knowledge_bases"
KB = "/v2/gen-ai/knowledge_bases/{uuid}"
KB_JOBS = "/v2/gen-ai/knowledge_bases/{uuid}/indexing_jobs"

MAX_PER_PAGE = 200
MAX_SWEEPS = 3


class _HasUuid(Protocol):
    @property
    def uuid(self) -> str: ...


def _user_agent() -> str:
    try:
        return f"gradient-watcher/{version('gradient-watcher')}"
    except PackageNotFoundError:
        return "gradient-watcher/unknown"


def _check_token(token: str, token_source: str) -> str:
    """The token without surrounding whitespace; `ConfigError` (never echoing it) if unusable."""
    token = token.strip()
    if not token or not all(33 <= ord(c) <= 126 for c in token):
        problem = "is empty or holds characters an HTTP header cannot carry"
        raise ConfigError([ConfigProblem("api.token", problem, token_source)])
    return token


class ApiClient:
    """Reads (and, for the CLI, starts and cancels) indexing jobs; implements `ports.Source`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        token_source: str,
        timeout: float = 30.0,
        max_requests_per_minute: int = 120,
        per_page: int = MAX_PER_PAGE,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_wait: float = 60.0,
        low_remaining: int = 250,
        max_pages: int = 1000,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_response: Callable[[RequestRecord], None] | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        headers = {
            "Authorization": f"Bearer {_check_token(token, token_source)}",
            "User-Agent": _user_agent(),
            "Accept": "application/json",
        }
        self._per_page = max(1, min(per_page, MAX_PER_PAGE))
        self._kb_memo = ParseMemo(wire.parse_knowledge_base)
        self._max_pages = max(1, max_pages)
        # `ratelimit-reset` and an HTTP-date `retry-after` are on the API's clock: the budget
        # and the retries compare them with that clock, never with the local one.
        self.api_clock = ApiClock(monotonic=monotonic, wall_clock=wall_clock)
        budget = RequestBudget(
            max_requests_per_minute,
            low_remaining=low_remaining,
            max_pace_s=max_wait,
            monotonic=monotonic,
            wall_clock=self.api_clock.timestamp,
            sleep=sleep,
        )
        http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
            verify=verify,
        )
        policy = RequestRetryPolicy(max(1, max_attempts), backoff_base, backoff_max, max_wait)
        self._caller = HttpCaller(
            http=http,
            budget=budget,
            policy=policy,
            token_source=token_source,
            sleep=sleep,
            monotonic=monotonic,
            wall_clock=self.api_clock.timestamp,
            rng=rng or random.Random(),
            on_response=on_response,
            dates=self.api_clock,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._caller.http.aclose()

    def api_now(self) -> datetime:
        """The API's clock now, from the `Date` headers of its answers (see `ApiClock`)."""
        return self.api_clock.now()

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate-limit headers of the last answer, if any answer came."""
        return self._caller.rate_limit

    @property
    def requests_sent(self) -> int:
        """How many HTTP requests this client put on the wire, retries included."""
        return sum(self._caller.sent.values())

    @property
    def requests_by_endpoint(self) -> Mapping[str, int]:
        """Requests sent per `"METHOD endpoint-template"`, retries included."""
        return dict(self._caller.sent)

    async def list_knowledge_bases(self) -> list[KnowledgeBase]:
        """Every knowledge base of the account, each with its `last_indexing_job`.

        Read every cycle, so an item equal to the one of the last read is not parsed again.
        """
        try:
            kbs = await self._read_all(KBS, "knowledge_bases", self._kb_memo)
        except BaseException:
            self._kb_memo.abandon()
            raise
        self._kb_memo.complete()
        return kbs

    async def list_jobs(self) -> list[Job]:
        """Every indexing job of the account (the API has no knowledge-base filter)."""
        return await self._read_all(JOBS, "jobs", wire.parse_job)

    async def list_kb_jobs(self, kb_uuid: str) -> list[Job]:
        """The latest 15 jobs of one knowledge base (the API keeps no more; not paged)."""
        return await self._read_list(Call("GET", KB_JOBS, kb_uuid), "jobs", wire.parse_job)

    async def get_job(self, job_uuid: str) -> Job:
        """One indexing job."""
        return await self._read_one(Call("GET", JOB, job_uuid), "job", wire.parse_job)

    async def list_job_data_sources(self, job_uuid: str) -> list[DataSourceJob]:
        """The per-data-source results of one job, with error messages and counts."""
        call = Call("GET", JOB_DATA_SOURCES, job_uuid)
        return await self._read_list(call, "indexed_data_sources", wire.parse_data_source)

    async def get_knowledge_base(self, kb_uuid: str) -> KnowledgeBase:
        """One knowledge base."""
        call = Call("GET", KB, kb_uuid)
        return await self._read_one(call, "knowledge_base", wire.parse_knowledge_base)

    async def cancel_job(self, job_uuid: str) -> Job:
        """Ask the API to cancel a job; returns the job as the API then reports it."""
        call = Call("PUT", JOB_CANCEL, job_uuid, body={"uuid": job_uuid})
        return await self._read_one(call, "job", wire.parse_job)

    async def create_job(self, kb_uuid: str, data_source_uuids: Iterable[str] = ()) -> Job:
        """Start a job (all data sources when none are named); never sent twice on a retry."""
        body = {"knowledge_base_uuid": kb_uuid, "data_source_uuids": list(data_source_uuids)}
        return await self._read_one(Call("POST", JOBS, body=body), "job", wire.parse_job)

    async def _read_one(self, call: Call, key: str, parse: Callable[[object], U]) -> U:
        return await self._caller.call(call, lambda body: wire.parse_single(body, key, parse))

    async def _read_list(self, call: Call, key: str, parse: Callable[[object], U]) -> list[U]:
        items, skipped, _ = await self._caller.call(
            call, lambda body: wire.parse_items(body, key, parse, required=False)
        )
        for reason in skipped:
            log.warning("api_item_skipped", endpoint=call.endpoint, reason=reason)
        return list(items)

    async def _read_all(self, endpoint: str, key: str, parse: Callable[[object], T]) -> list[T]:
        """Every page; a pass that saw the list move is followed by another (see `paging`)."""
        sweeps: list[Sweep[T]] = []
        for number in range(1, MAX_SWEEPS + 1):
            sweep = await self._sweep(endpoint, key, parse)
            sweeps.append(sweep)
            if sweep.shift is None or sweep.capped:
                break
            log.info("api_list_shifted", endpoint=endpoint, sweep=number, reason=sweep.shift)
        return merge(sweeps)

    async def _sweep(self, endpoint: str, key: str, parse: Callable[[object], T]) -> Sweep[T]:
        """One pass from page 1 until the API says there is no more, within `max_pages`."""
        sweep: Sweep[T] = Sweep(lambda item: item.uuid)
        for number in range(1, self._max_pages + 1):
            call = Call("GET", endpoint, params={"page": number, "per_page": self._per_page})
            page = await self._caller.call(call, lambda body: wire.parse_page(body, key, parse))
            sweep.add(page)
            for reason in page.skipped:
                log.warning("api_item_skipped", endpoint=endpoint, page=number, reason=reason)
            if not page.has_next:
                return sweep
        log.warning("api_pagination_capped", endpoint=endpoint, pages=self._max_pages)
        sweep.capped = True
        return sweep

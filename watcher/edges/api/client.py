"""The DigitalOcean GenAI API client: httpx inside, the watcher's error tree and values outside.

`ApiClient` implements `watcher.core.ports.Source` plus the account-wide job list and the two
writes the CLI needs (start, cancel). Requests go through `watcher.edges.api.caller` (budget,
retries, one deadline per request, a size cap per answer, typed errors); bodies are parsed by
`watcher.edges.api.wire`; paged lists are read over every page within the bounds the answers
set, with a second pass when the list moved under us (`watcher.edges.api.paging`); copies of
one job that disagree within one answer are left out of it (`watcher.edges.api.copies`).
Redirects are never followed, and the token lives only in the httpx client's headers.

Whatever an answer holds, a read returns values or raises a `SourceError`: a failed API read,
which the cycle counts towards `api_unreachable`. An item that cannot be read is dropped from
its list and logged once; the rest of the list is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from operator import attrgetter
from typing import Protocol, TypeVar

import httpx
import structlog

from watcher.core.cost import CatalogModel, ListedModel
from watcher.core.errors import (
    ConfigError,
    ConfigProblem,
    MalformedResponse,
    NotFound,
    SourceError,
)
from watcher.core.facts import Agent, DatabaseStatus, DataSource
from watcher.core.model import DataSourceJob, Job, KnowledgeBase, RateLimit
from watcher.core.schedules import Schedule
from watcher.edges.api import copies, extra, extra_wire, pricing, wire
from watcher.edges.api.body import ACCEPT_ENCODING
from watcher.edges.api.caller import Call, HttpCaller, OnceLog, RequestRecord
from watcher.edges.api.clock import ApiClock
from watcher.edges.api.memo import PageMemo, ParseMemo
from watcher.edges.api.paging import Sweep, merge
from watcher.edges.api.ratebudget import RequestBudget
from watcher.edges.api.settings import ApiSettings, RequestRetry

__all__ = ["ApiClient", "ApiSettings", "RequestRecord", "RequestRetry"]

T = TypeVar("T", bound="_HasUuid")
U = TypeVar("U")
log = structlog.get_logger(__name__)

_UUID = attrgetter("uuid")  # an item's identity in a list, read in C: once per item per read

JOBS = "/v2/gen-ai/indexing_jobs"
JOB = "/v2/gen-ai/indexing_jobs/{uuid}"
JOB_CANCEL = "/v2/gen-ai/indexing_jobs/{uuid}/cancel"
JOB_DATA_SOURCES = "/v2/gen-ai/indexing_jobs/{uuid}/data_sources"
KBS = "/v2/gen-ai/knowledge_bases"
KB = "/v2/gen-ai/knowledge_bases/{uuid}"
KB_JOBS = "/v2/gen-ai/knowledge_bases/{uuid}/indexing_jobs"
KB_DATA_SOURCES = "/v2/gen-ai/knowledge_bases/{uuid}/data_sources"
AGENTS = "/v2/gen-ai/agents"
AGENT = "/v2/gen-ai/agents/{uuid}"
KB_SCHEDULE = "/v2/gen-ai/scheduled-indexing/knowledge-base/{uuid}"
JOB_REPORT_URL = "/v2/gen-ai/indexing_jobs/{uuid}/details_signed_url"

MAX_SWEEPS = 3
MAX_PRICE_PAGES = 20  # the models list and catalog: a few dozen entries today
Settle = Callable[[Sequence[U]], tuple[list[U], copies.Conflicts]]


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
    """Reads (and, for the CLI, starts and cancels) indexing jobs; implements `ports.Source`.

    `settings` come from the configuration (`[api]`); the keyword arguments are what tests
    replace: the transport, `sleep` between retries, the monotonic and wall clocks, the jitter
    source, and `on_response`, told of every attempt.
    """

    def __init__(
        self,
        settings: ApiSettings,
        token: str,
        *,
        token_source: str,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_response: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        headers = {
            "Authorization": f"Bearer {_check_token(token, token_source)}",
            "User-Agent": _user_agent(),
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        self.settings = settings
        self._kb_memo = ParseMemo(wire.parse_knowledge_base)
        # The KB list is read every cycle: a page of the same bytes is neither decoded nor
        # parsed again, and the items on it stay in the item memo for the next read.
        self._kb_pages: PageMemo[wire.Page[KnowledgeBase]] = PageMemo(
            lambda page: self._kb_memo.keep(map(_UUID, page.items))
        )
        self._once = OnceLog()
        # `ratelimit-reset` and an HTTP-date `retry-after` are on the API's clock: the budget
        # and the retries compare them with that clock, never with the local one.
        self.api_clock = ApiClock(monotonic=monotonic, wall_clock=wall_clock)
        budget = RequestBudget(
            settings.max_requests_per_minute,
            low_remaining=settings.low_remaining,
            max_pace_s=settings.retry.max_wait,
            monotonic=monotonic,
            wall_clock=self.api_clock.timestamp,
            sleep=sleep,
        )
        http = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=headers,
            # The caller holds each exchange to one deadline (`asyncio.timeout`): httpx's own
            # read and write timeouts would only arm and cancel a timer on every socket
            # operation (about a dozen a large page) under it. A connect keeps its own.
            timeout=httpx.Timeout(None, connect=settings.timeout),
            follow_redirects=False,
            transport=transport,
            verify=settings.verify,
        )
        self._caller = HttpCaller(
            http=http,
            budget=budget,
            policy=settings.retry,
            token_source=token_source,
            sleep=sleep,
            monotonic=monotonic,
            wall_clock=self.api_clock.timestamp,
            rng=rng or random.Random(),
            timeout=settings.timeout,
            max_bytes=settings.max_response_bytes,
            on_response=on_response,
            dates=self.api_clock,
            once=self._once,
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
            kbs = await self._read_all(
                KBS, "knowledge_bases", self._kb_memo, copies.settle_kbs, pages=self._kb_pages
            )
        except BaseException:
            self._kb_memo.abandon()
            self._kb_pages.abandon()
            raise
        self._kb_memo.complete()
        self._kb_pages.complete()
        return kbs

    async def list_jobs(self) -> list[Job]:
        """Every indexing job of the account (the API has no knowledge-base filter)."""
        return await self._read_all(JOBS, "jobs", wire.parse_job, copies.settle_jobs)

    async def list_kb_jobs(self, kb_uuid: str) -> list[Job]:
        """The latest 15 jobs of one knowledge base (the API keeps no more; not paged)."""
        call = Call("GET", KB_JOBS, kb_uuid)
        return await self._read_list(call, "jobs", wire.parse_job, copies.settle_jobs)

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

    # --- the extra reads (`watcher.service.extras`): inside their share of the budget -------

    async def list_kb_data_sources(self, kb_uuid: str) -> list[DataSource]:
        """A KB's data sources by what a person recognises (all pages)."""
        return await self._read_all(
            KB_DATA_SOURCES,
            "knowledge_base_data_sources",
            extra_wire.parse_kb_data_source,
            _unique,
            uuid=kb_uuid,
        )

    async def get_database_status(self, kb_uuid: str) -> tuple[DatabaseStatus, str | None]:
        """A KB's `database_status` (`GET /knowledge_bases/{uuid}`), raw text when unknown."""
        async with _one_read(KB):
            call = Call("GET", KB, kb_uuid)
            return await self._caller.call(call, extra_wire.parse_database_status)

    async def list_agents(self) -> list[Agent]:
        """Every agent of the account, uuid and name only (the list names no KBs)."""
        return await self._read_all(AGENTS, "agents", extra_wire.parse_agent_ref, _unique)

    async def get_agent(self, agent_uuid: str) -> Agent:
        """One agent with the uuids of the knowledge bases it uses."""
        return await self._read_one(Call("GET", AGENT, agent_uuid), "agent", extra_wire.parse_agent)

    def minute_left(self) -> int:
        """How many requests the client's own ceiling still allows in its sliding minute."""
        return self._caller.budget.left_in_window()

    async def get_schedule(self, kb_uuid: str) -> Schedule | None:
        """The KB's indexing schedule; None when it has none (404, or an empty answer)."""
        call = Call("GET", KB_SCHEDULE, kb_uuid)
        try:
            return await self._read_one(call, "indexing_info", extra.parse_schedule)
        except NotFound:
            return None

    async def get_report(self, job_uuid: str) -> bytes:
        """A finished job's per-file report: its signed URL read from the API (one request),
        then the bytes behind it (another host, without the token). The URL is never kept."""
        call = Call("GET", JOB_REPORT_URL, job_uuid)
        url = await self._read_one(call, "signed_url", extra.parse_signed_url)
        settings = self.settings
        return await extra.download(url, seconds=settings.timeout, verify=settings.verify)

    async def cancel_job(self, job_uuid: str) -> Job:
        """Ask the API to cancel a job; returns the job as the API then reports it."""
        call = Call("PUT", JOB_CANCEL, job_uuid, body={"uuid": job_uuid})
        return await self._read_one(call, "job", wire.parse_job)

    async def create_job(self, kb_uuid: str, data_source_uuids: Iterable[str] = ()) -> Job:
        """Start a job (all data sources when none are named); never sent twice on a retry."""
        body = {"knowledge_base_uuid": kb_uuid, "data_source_uuids": list(data_source_uuids)}
        return await self._read_one(Call("POST", JOBS, body=body), "job", wire.parse_job)

    async def list_embedding_models(self) -> list[ListedModel]:
        """The embedding models with their prices (`GET /v2/gen-ai/models?usecases=
        MODEL_USECASE_KNOWLEDGEBASE`, every page, at most `MAX_PRICE_PAGES`)."""

        def params(number: int) -> dict[str, int | str]:
            return {"usecases": pricing.EMBEDDING_USECASE, "page": number, "per_page": 200}

        return await self._read_pages(pricing.MODELS, "models", pricing.parse_listed_model, params)

    async def list_model_catalog(self) -> list[CatalogModel]:
        """The model catalog (`GET /v2/gen-ai/models/catalog`, paged with `limit`, no links)."""

        def params(number: int) -> dict[str, int | str]:
            return {"page": number, "limit": 100}

        return await self._read_pages(pricing.CATALOG, "data", pricing.parse_catalog_model, params)

    async def _read_pages(
        self,
        endpoint: str,
        key: str,
        parse: Callable[[object], U],
        params: Callable[[int], Mapping[str, int | str]],
    ) -> list[U]:
        """Pages 1.. of a small list until the answer says there is no more."""
        items: list[U] = []
        async with _one_read(endpoint):
            for number in range(1, MAX_PRICE_PAGES + 1):
                call = Call("GET", endpoint, params=params(number))
                page = await self._caller.call(call, partial(wire.parse_page, key=key, parse=parse))
                items.extend(page.items)
                self._log_skipped(endpoint, page.skipped)
                if not page.has_next:
                    break
        return items

    async def _read_one(self, call: Call, key: str, parse: Callable[[object], U]) -> U:
        async with _one_read(call.endpoint):
            return await self._caller.call(call, lambda body: wire.parse_single(body, key, parse))

    async def _read_list(
        self,
        call: Call,
        key: str,
        parse: Callable[[object], U],
        settle: Settle[U] | None = None,
    ) -> list[U]:
        """One unpaged list: at most `max_list_items` items, unreadable ones dropped."""
        limit = self.settings.max_list_items
        async with _one_read(call.endpoint):
            items, skipped, _ = await self._caller.call(
                call, lambda body: wire.parse_items(body, key, parse, required=False, limit=limit)
            )
            self._log_skipped(call.endpoint, skipped)
            if settle is None:
                return list(items)
            kept, conflicts = settle(items)
            self._log_conflicts(call.endpoint, conflicts)
            return kept

    async def _read_all(
        self,
        endpoint: str,
        key: str,
        parse: Callable[[object], T],
        settle: Settle[T],
        uuid: str = "",
        pages: PageMemo[wire.Page[T]] | None = None,
    ) -> list[T]:
        """Every page; a pass that saw the list move is followed by another (see `paging`).
        With `pages`, a page of the same bytes as at the last complete read is kept as read."""
        async with _one_read(endpoint):
            sweeps: list[Sweep[T]] = []
            for number in range(1, MAX_SWEEPS + 1):
                sweep = await self._sweep(endpoint, key, parse, settle, uuid, pages)
                sweeps.append(sweep)
                if sweep.shift is None:
                    break
                log.info("api_list_shifted", endpoint=endpoint, sweep=number, reason=sweep.shift)
            return merge(sweeps)

    async def _sweep(
        self,
        endpoint: str,
        key: str,
        parse: Callable[[object], T],
        settle: Settle[T],
        uuid: str = "",
        pages: PageMemo[wire.Page[T]] | None = None,
    ) -> Sweep[T]:
        """One pass from page 1 until the API says there is no more, within the bounds its
        own figures set (`paging`): a loop or a list without end is a failed read."""
        per_page = self.settings.per_page
        sweep: Sweep[T] = Sweep(_UUID, per_page, self.settings.max_list_items)
        number = 1
        while True:
            call = Call("GET", endpoint, uuid, params={"page": number, "per_page": per_page})
            limit = sweep.items_left
            read = partial(self._settled_page, endpoint, key, parse, settle, limit)
            # the same bytes parse (and settle) alike only under the same item limit
            reuse = pages.reuse((number, per_page, limit)) if pages is not None else None
            page = await self._caller.call(call, read, reuse)
            try:
                sweep.add(number, page)
                more = sweep.more(number, page)
            except MalformedResponse as exc:
                raise MalformedResponse(f"GET {endpoint}: {exc}") from exc
            self._log_skipped(endpoint, page.skipped)
            if not more:
                return sweep
            number += 1

    def _settled_page(
        self,
        endpoint: str,
        key: str,
        parse: Callable[[object], T],
        settle: Settle[T],
        limit: int,
        body: object,
    ) -> wire.Page[T]:
        """A page of a paged list, without the jobs whose copies disagree (logged once)."""
        page = wire.parse_page(body, key=key, parse=parse, limit=limit)
        kept, conflicts = settle(page.items)
        if not conflicts:
            return page
        self._log_conflicts(endpoint, conflicts)
        return replace(page, items=tuple(kept))

    def _log_skipped(self, endpoint: str, skipped: Iterable[str]) -> None:
        """Each kind of unreadable item once (not once per cycle)."""
        for reason in skipped:
            what = reason.split(": ", 1)[-1]
            if self._once.first(("skipped", endpoint, what)):
                log.warning("api_item_skipped", endpoint=endpoint, reason=reason)

    def _log_conflicts(self, endpoint: str, conflicts: copies.Conflicts) -> None:
        for uuid, versions in conflicts.items():
            if self._once.first(("copies", uuid, versions)):
                log.warning(
                    "api_job_copies_disagree",
                    endpoint=endpoint,
                    job=uuid,
                    copies=copies.states(versions),
                    kept="the last trusted state",
                )


def _unique(items: Sequence[U]) -> tuple[list[U], copies.Conflicts]:
    """One of each uuid (a list that moved under us shows an item twice); no conflicts."""
    kept: dict[str, U] = {}
    for item in items:
        kept.setdefault(getattr(item, "uuid", ""), item)
    return list(kept.values()), {}


@contextlib.asynccontextmanager
async def _one_read(endpoint: str) -> AsyncIterator[None]:
    """One read of the API: whatever fails inside, a `SourceError` comes out (the rule that no
    failure to read an answer escapes as another exception type)."""
    try:
        yield
    except SourceError:
        raise
    except Exception as exc:
        text = f"reading {endpoint} failed ({type(exc).__name__}: {str(exc)[:120]})"
        raise MalformedResponse(text) from exc

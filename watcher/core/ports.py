"""The small interfaces the cycle drives: the API source, the state store, the outbox, the notifier.

Declared here, beside `watcher.service.cycle` which is their only orchestrator; the adapters in
`watcher.edges` implement them and the tests use hand-written fakes of them.

Conventions for every method below: datetimes are timezone-aware UTC; `timedelta`s are
durations; uuids are the API's lower-case strings; errors are the project's own
(`watcher.core.errors`), the library's translated at the adapter with `raise ... from exc`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from watcher.core.digest import KbLatest
from watcher.core.facts import Agent, DatabaseStatus, DataSource, StoredFact
from watcher.core.incident import Incident
from watcher.core.model import DataSourceJob, EventKind, Job, KnowledgeBase, RateLimit
from watcher.core.outbox import Budget, Message, OutboxItem, SendResult, Settlement
from watcher.core.schedules import Schedule
from watcher.core.silences import HeldRow, Silence
from watcher.core.state import Change, Transition, WatchState

# What a silence's end becomes, made inside the store's transaction from what the silence held
# and the open incidents by KB uuid (`watcher.service.silencing`; pure: it must not block).
SilenceAnnouncer = Callable[[list[HeldRow], Mapping[str, Incident]], Change]


class Source(Protocol):
    """Reads the DigitalOcean GenAI API (`watcher.edges.api.client.ApiClient`).

    Every read sends one or more HTTP requests under the client's request budget and its own
    retries (connection errors, timeouts, 429 honouring `retry-after`, 5xx). What is still
    failing after them is raised as a `SourceError`: `RetryableSourceError` (the next cycle may
    pass), `MalformedResponse` (a 2xx whose body the OpenAPI shapes do not describe),
    `Unauthorized` (401), `Forbidden` (403, a missing `genai:read` scope) or `NotFound` (404).
    Enum values the API adds later are kept as `UNKNOWN` with the raw text; a list item that
    cannot be used at all (not an object, no `uuid`) is left out and logged, never raised.
    """

    def api_now(self) -> datetime:
        """The API's clock now (UTC), as the `Date` headers of its answers tell it; the local
        wall clock until one did. API timestamps are compared with this clock only. Never
        raises and sends nothing."""
        ...

    async def list_knowledge_bases(self) -> list[KnowledgeBase]:
        """Every knowledge base of the account (`GET /v2/gen-ai/knowledge_bases`, all pages),
        each with its `last_indexing_job`; one request per page of `api.per_page` (at most
        200). A list that moved while it was read is read again, so none is missed or counted
        twice."""
        ...

    async def list_kb_jobs(self, kb_uuid: str) -> list[Job]:
        """The latest jobs of one knowledge base, at most 15: the API keeps no more and does
        not page them (`GET /v2/gen-ai/knowledge_bases/{uuid}/indexing_jobs`). One request;
        `NotFound` when the knowledge base is gone."""
        ...

    async def list_jobs(self) -> list[Job]:
        """Every indexing job of the account, all pages (`GET /v2/gen-ai/indexing_jobs`; the
        API has no knowledge-base filter): cheaper than many per-KB lists in a burst."""
        ...

    async def get_job(self, job_uuid: str) -> Job:
        """One indexing job (`GET /v2/gen-ai/indexing_jobs/{uuid}`); one request, `NotFound`
        when it does not exist."""
        ...

    async def list_job_data_sources(self, job_uuid: str) -> list[DataSourceJob]:
        """The per-data-source results of one job, with their item counts and error texts
        (`GET /v2/gen-ai/indexing_jobs/{uuid}/data_sources`); one request."""
        ...


class ExtraSource(Protocol):
    """The extra reads of the API (`watcher.edges.api.client.ApiClient`), and what the edge
    counts of the budget for them (`watcher.service.extras`): a KB's data sources, database,
    agents, its schedule and a finished job's per-file report. Errors as for `Source`.

    Each read is one request, but for lists (`list_kb_data_sources`, `list_agents`): one per
    page of `api.per_page`; a report is one request plus the download from another host.
    """

    @property
    def requests_sent(self) -> int:
        """Requests put on the wire so far, retries included (the edge counts with it)."""
        ...

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate-limit headers of the last answer, if any came."""
        ...

    def minute_left(self) -> int:
        """Requests the client's own ceiling still allows in its sliding minute."""
        ...

    async def list_kb_data_sources(self, kb_uuid: str) -> list[DataSource]:
        """`GET /v2/gen-ai/knowledge_bases/{uuid}/data_sources`, every page."""
        ...

    async def get_database_status(self, kb_uuid: str) -> tuple[DatabaseStatus, str | None]:
        """`database_status` of `GET /v2/gen-ai/knowledge_bases/{uuid}` (raw when unknown)."""
        ...

    async def list_agents(self) -> list[Agent]:
        """`GET /v2/gen-ai/agents`, every page: uuids and names."""
        ...

    async def get_agent(self, agent_uuid: str) -> Agent:
        """`GET /v2/gen-ai/agents/{uuid}`: the agent's name and its KBs' uuids."""
        ...

    async def get_schedule(self, kb_uuid: str) -> Schedule | None:
        """The KB's indexing schedule (`GET /v2/gen-ai/scheduled-indexing/knowledge-base/
        {uuid}`), None when it has none; one request."""
        ...

    async def get_report(self, job_uuid: str) -> bytes:
        """A finished job's per-file report: one request for its signed URL
        (`GET /v2/gen-ai/indexing_jobs/{uuid}/details_signed_url`), then the bytes behind it
        (another host, without the token). The URL never leaves the adapter."""
        ...


class FactStore(Protocol):
    """Keeps the extra reads' last results (`kb_facts`); errors as for `StateStore`."""

    async def load_facts(self) -> list[StoredFact]:
        """Every stored fact."""
        ...

    async def save_facts(self, facts: Sequence[StoredFact], at: datetime) -> None:
        """Insert or replace each fact by (subject, kind) in one transaction; `at` wall."""
        ...


class StateStore(Protocol):
    """Keeps what the watcher saw (`watcher.edges.store.sqlite.SqliteStore`).

    Each method is one whole transaction. Errors: `StoreError` for a store that fails (disk
    full, read-only, locked too long), `StoreCorrupt` for a file that is not a usable store,
    `StoreReplaced` when the file at the state path is no longer the one opened, `StoreHeld`
    when another process holds the store's lease (its message names the holder).
    """

    async def load(self, job_uuids: Collection[str]) -> WatchState:
        """Every known knowledge base, every job that is not done yet, and the done ones among
        `job_uuids` (a uuid the store does not know is simply absent), read in one transaction.
        `baseline` is left None: the cycle reads it from the meta values."""
        ...

    async def record(self, change: Change, *, meta: Mapping[str, str | None] | None = None) -> None:
        """Write a whole cycle in one transaction: its knowledge bases, jobs, events and outbox
        rows, and the named small values of `meta` with them (None deletes a key). Events and
        outbox rows that already exist are left alone, so recording a change twice is a no-op
        for them. Only the holder of the store's lease may record: `StoreHeld` otherwise, and
        nothing is written."""
        ...


class Outbox(Protocol):
    """The queue of deliveries: claimed with a conditional update, settled after sending.

    Errors as for `StateStore`. Claims and settlements are safe between processes; a process
    that takes part in the store's lease makes them only while it holds it (`StoreHeld`
    otherwise, nothing written).
    """

    async def claim_due(
        self, now: datetime, limit: int, longest_wait: timedelta | None = None
    ) -> list[OutboxItem]:
        """Claim up to `limit` rows due at `now` (wall clock), in the order they were written.

        A claimed row is `sending` and belongs to this store until it is settled or its claim
        expires (the store's claim lease, 5 minutes by default: a crashed sender's rows come
        back). The expiry is kept on the store's lease clock, never judged against `now`
        (the SQLite store: the host's boot-time clock, named by its boot id; a store shared
        by hosts: the database server's clock, as for its lease), so a step of the watcher's
        wall clock while a send is in flight never hands that send's rows out again. A row
        whose next attempt lies more than `longest_wait` (the longest backoff) after `now` is
        due too: only a step of the wall clock can have put it there. A row whose stored
        event cannot be decoded is dead-lettered with the reason, not returned.
        `limit` <= 0 claims nothing.
        """
        ...

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        """Write back what each attempt did (`sent`, `pending` with its next attempt time,
        `dead`), its attempt count, error and per-URL results, in one transaction. A row this
        store no longer holds the claim of (it expired, another process took it) is skipped."""
        ...

    async def release_held(self, ends: Mapping[str, datetime], now: datetime) -> int:
        """Make due the rows held by quiet hours (`watcher.core.quiet`) whose hold ends later
        than the configuration now says: at their route's current quiet's end (`ends`, UTC,
        for the routes in their quiet now) or at `now` for every other route (a window
        removed, shortened, no longer in `mute_during`, a wall clock stepped back). A row
        released earlier and waiting for a retry is left alone. Returns how many."""
        ...


class MetaStore(Protocol):
    """Small named values the watcher keeps between cycles (the API's health, the poll pace,
    the setup findings): short strings, JSON where they have a structure. Errors as for
    `StateStore`."""

    async def get_meta(self, key: str) -> str | None:
        """The value stored under `key`, or None when there is none."""
        ...

    async def set_meta(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing any value there, in its own transaction."""
        ...


class Notifier(Protocol):
    """Sends rendered messages to the URLs of one route and reports each target
    (`watcher.edges.notify.apprise.AppriseNotifier`).

    A receiver's failure is never raised: it is reported in the `SendResult`, each target with
    the cause read from the service's answer (`FailureCause`: HTTP status, SMTP reply, timeout).
    """

    def budgets(self, route: str) -> tuple[Budget, ...]:
        """Per URL of `route`, by index: how much text its service takes, in characters
        (from apprise's plugin limits; `Budget()` for a URL apprise cannot load); empty for
        a route the notifier does not know. Sends nothing."""
        ...

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        """Send once to every URL of `route` but those in `skip` (by index): `fitted[i]` to
        URL i when given, else `message`. URLs are sent to in parallel, each on its own lane
        within the notifier's deadline (`delivery.timeout`, seconds), whatever a receiver does.

        Returns `ok` only when every URL sent to took it; `targets` holds one `TargetResult`
        per URL tried (its index, cause, HTTP or SMTP status, characters sent). A route that
        is not configured or has no URL is a failed result with `permanent` set.
        """
        ...


class QuietSigns(Protocol):
    """What tells a cycle whether it may skip its bookkeeping (`watcher.core.nextdue`).

    Errors as for `StateStore`.
    """

    async def state_version(self) -> Hashable | None:
        """A value that changes with every commit to the store that this process did not
        make in a cycle's own record (another connection's, another process's, a reopen);
        None when the store cannot tell (every cycle then runs in full)."""
        ...

    async def next_delivery(self) -> datetime | None:
        """The earliest wall-clock time an outbox row waits for (a retry, a quiet-hours
        release, a new row: due now), `datetime.min` (UTC) while a row is claimed, None
        when no row waits."""
        ...


class SilenceBook(Protocol):
    """The silences in the store, as the cycle reads and ends them
    (`watcher.edges.store.sqlite.SqliteStore`; the rules are `watcher.core.silences`).

    Read each round, so a silence added by another process takes effect at the next
    delivery. Errors as for `StateStore`.
    """

    async def current_silences(self, now: datetime) -> list[Silence]:
        """The silences active at `now` (wall clock, UTC) and those ended but not announced."""
        ...

    async def silenced_openers(
        self, route: str, kind: EventKind, before: int
    ) -> list[tuple[Transition, str | None]]:
        """The route's events of `kind` whose outbox rows precede row `before`, newest first,
        each with the silence that held its row (None: not held); `core.silences.held_opener`."""
        ...

    async def announce_silence_end(
        self, silence_id: str, now: datetime, build: SilenceAnnouncer
    ) -> Change | None:
        """In one transaction, once: mark the silence announced at `now`, read what it held
        (per row: route, KBs hidden) and the open incidents (by KB uuid), and record the
        `Change` that `build` makes of them (its `silence_ended` events and outbox rows);
        returns it, or None, and nothing written, when it was announced already. A kill
        between the read and the write loses nothing and doubles nothing. Only the holder of
        the store's lease may (`StoreHeld`)."""
        ...


class DigestReads(Protocol):
    """The store's reads for a digest (`watcher.edges.store.digests`). Raises `StoreError`."""

    async def digest_facts(
        self, since: datetime | None, until: datetime
    ) -> tuple[tuple[Transition, ...], tuple[KbLatest, ...]]:
        """The terminal events recorded in `[since, until)` (wall clock, UTC; None: since the
        start), oldest first, and where each known KB's latest job stands."""
        ...

    async def open_incidents(self) -> tuple[Incident, ...]:
        """The incidents open now, with their acknowledgements (`watcher.core.incident`)."""
        ...

"""What the page asks of the watcher that serves it: the store's read side, health, and facts.

Declared here, beside the app that uses them (`watcher.edges.web.app`); the daemon provides
them (`watcher.service.page`), the tests give hand-written fakes. Nothing here reads a clock:
`now` (the wall clock) and `api_now` (DigitalOcean's clock, from its `Date` headers) come
from the host with each request, and each age is computed on the clock of the times it
compares.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from watcher.core.health import Health, Probe
from watcher.core.outbox import DeliveryState
from watcher.core.records import (
    DeliveryRecord,
    EventRecord,
    JobPoint,
    JobRecord,
    KbRecord,
    OutboxCounts,
    Page,
)
from watcher.core.state import JobState


class PageStore(Protocol):
    """The store's read side for the page, and the one write it offers (retrying dead letters).

    Every method raises `watcher.core.errors.StoreError` when the store cannot be read, and
    `ValueError` for a cursor that is not one of the list's own.
    """

    async def knowledge_bases(
        self, uuids: Collection[str] | None = None, *, recent: int = ...
    ) -> list[KbRecord]:
        """Every knowledge base (or those of `uuids`): latest job, last `recent` jobs."""
        ...

    async def job_points(self, kb_uuid: str) -> list[JobPoint]:
        """Every kept job of a knowledge base, oldest first (the whole retention)."""
        ...

    async def get_meta(self, key: str) -> str | None:
        """A small named value the watcher keeps (the KBs' prices: `cost.PRICES_KEY`)."""
        ...

    async def jobs(self, kb_uuid: str, *, limit: int, after: str | None) -> Page[JobState]:
        """A knowledge base's jobs, newest first."""
        ...

    async def job(self, job_uuid: str) -> JobRecord | None:
        """One job with its events and their deliveries."""
        ...

    async def events(
        self, *, kb_uuid: str | None = None, limit: int, after: str | None
    ) -> Page[EventRecord]:
        """Events, newest first, each with its deliveries."""
        ...

    async def deliveries(
        self,
        states: Collection[DeliveryState],
        *,
        route: str | None = None,
        limit: int,
        after: str | None,
    ) -> Page[DeliveryRecord]:
        """Outbox rows in `states`, newest first."""
        ...

    async def outbox_counts(self) -> OutboxCounts:
        """Outbox rows by state and route; the oldest undelivered."""
        ...

    async def retry_dead(self, now: datetime, ids: Collection[int] | None = None) -> list[int]:
        """Queue dead letters again (a fresh `dead_after`, from their next failure); the ids
        queued."""
        ...


@dataclass(frozen=True, slots=True)
class Budget:
    """The API's request budget as the watcher last saw it (None: not told yet).

    `limit` and `remaining` are the hourly rate-limit headers of DigitalOcean's last answer;
    `per_minute` the watcher's own ceiling (`api.max_requests_per_minute`);
    `requests_sent` how many requests this process has sent since it started.
    """

    per_minute: int
    limit: int | None = None
    remaining: int | None = None
    requests_sent: int | None = None


@dataclass(frozen=True, slots=True)
class WatcherFacts:
    """The watcher itself, for its page: health, pace, last cycle, API, budget, setup, config.

    `now` is the wall clock, `api_now` DigitalOcean's clock (as its `Date` headers tell it).
    `poll_interval` and `poll_reason` are the pace in force and why (`PaceReason` words).
    `last_cycle_at` is the wall-clock end of the last successful cycle; `last_cycle_ok` and
    `last_cycle_error` describe the last finished one. `api_failing_since` (wall clock) and
    `api_error` are set while the API fails. `setup` holds one line per problem of the setup
    (a watched knowledge base the account does not list, a route entry matching nothing);
    `standby` names the holder of the store when this process stands by. `config` is the
    configuration's summary with its secrets masked (`watcher check-config`'s text).
    """

    version: str
    now: datetime
    api_now: datetime
    live: Health
    ready: Health
    poll_interval: timedelta
    poll_reason: str
    budget: Budget
    config: str
    listen: str
    last_cycle_at: datetime | None = None
    last_cycle_ok: bool | None = None
    last_cycle_error: str | None = None
    api_failing_since: datetime | None = None
    api_error: str | None = None
    standby: str | None = None
    retention: timedelta | None = None
    setup: Sequence[str] = field(default_factory=tuple)
    # with several [[accounts]]: each recorded KB's account, by KB uuid (empty with one)
    kb_accounts: Mapping[str, str] = field(default_factory=dict)


class WatcherHost(Protocol):
    """The running watcher, as the page sees it."""

    @property
    def store(self) -> PageStore:
        """The store in use now (a reload may replace it)."""
        ...

    def clocks(self) -> tuple[datetime, datetime]:
        """The wall clock and DigitalOcean's clock now (UTC)."""
        ...

    async def health(self, probe: Probe) -> Health:
        """The health rule's verdict now."""
        ...

    async def facts(self) -> WatcherFacts:
        """The watcher's own facts now."""
        ...

    async def kb_accounts(self) -> Mapping[str, str]:
        """Each recorded KB's `[[accounts]]` name by uuid (empty with a single account): what
        the KB reads add to each item, without the cost of every other fact."""
        ...

    def metrics(self) -> bytes:
        """The Prometheus exposition of the watcher's metrics."""
        ...

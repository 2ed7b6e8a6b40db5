"""The small interfaces the cycle drives: the API source, the state store, the outbox, the notifier.

Declared here, beside `watcher.service.cycle` which is their only orchestrator; the adapters in
`watcher.edges` implement them and the tests use hand-written fakes of them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from watcher.core.model import DataSourceJob, Job, KnowledgeBase
from watcher.core.outbox import Budget, Message, OutboxItem, SendResult, Settlement
from watcher.core.state import Change, WatchState


class Source(Protocol):
    """Reads the DigitalOcean GenAI API; raises `watcher.core.errors.SourceError` subclasses."""

    def api_now(self) -> datetime:
        """The API's clock now (UTC), as the `Date` headers of its answers tell it; the local
        wall clock until one did. API timestamps are compared with this clock only."""
        ...

    async def list_knowledge_bases(self) -> list[KnowledgeBase]: ...

    async def list_kb_jobs(self, kb_uuid: str) -> list[Job]: ...

    async def list_jobs(self) -> list[Job]:
        """Every job of the account (all pages); cheaper than many per-KB lists in a burst."""
        ...

    async def get_job(self, job_uuid: str) -> Job: ...

    async def list_job_data_sources(self, job_uuid: str) -> list[DataSourceJob]: ...


class StateStore(Protocol):
    """Keeps what the watcher saw; `record` writes a whole cycle in one transaction."""

    async def load(self, job_uuids: Collection[str]) -> WatchState:
        """Every known KB, the jobs named, and every job that is not done yet."""
        ...

    async def record(self, change: Change, *, meta: Mapping[str, str | None] | None = None) -> None:
        """Write the change, and the named small values with it, in one transaction."""
        ...


class Outbox(Protocol):
    """The queue of deliveries: claimed with a conditional update, settled after sending."""

    async def claim_due(
        self, now: datetime, limit: int, longest_wait: timedelta | None = None
    ) -> list[OutboxItem]:
        """Claim up to `limit` rows due at `now` (wall clock), in the order they were written.

        A row whose next attempt lies more than `longest_wait` (the longest backoff) after
        `now` is due too: only a step of the wall clock can have put it there.
        """
        ...

    async def settle(self, settlements: Sequence[Settlement]) -> None: ...


class MetaStore(Protocol):
    """Small named values the watcher keeps between cycles (e.g. the API's health)."""

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


class Notifier(Protocol):
    """Sends rendered messages to the URLs of one route and reports each target."""

    def budgets(self, route: str) -> tuple[Budget, ...]:
        """Per URL of `route`, by index: how much text its service takes, in characters
        (from apprise's plugin limits); empty when the notifier cannot tell."""
        ...

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        """Send once to every URL of `route` but those in `skip` (by index): `fitted[i]` to
        URL i when given, else `message`. Returns within the notifier's deadline per send,
        whatever a receiver does."""
        ...

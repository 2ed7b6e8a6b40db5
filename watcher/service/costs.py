"""The models list and catalog, read about hourly for the price of each KB's embedding model.

`PriceBook.read_prices` is the one function that reads them (two GETs at most: the catalog
only when a listed embedding model carries no price), at its own cadence (`[cost]
prices_every`, one hour by default; ten minutes after a failed read) from `refresh_if_due`,
which the cycle calls within its deadline. They are a small floor of the cycle's reads budget
(`budget`, `watcher.service.budget`): outside the extra reads' share (so also at share 0), but
a read due waits while the API's `ratelimit-remaining` is under the reserve or the minute has
no room beyond the next poll (it is due again the next cycle).
A failed or slow read never fails the cycle: the last prices are kept (and nothing is priced
before the first read succeeds). What was read is kept in the store's meta (`READ_KEY`, with
the elapsed-clock reading of the read), so `watcher once` from cron reads them about hourly
too, not once per run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import timedelta
from typing import Protocol

import structlog

from watcher.core.clocks import Elapsed
from watcher.core.cost import CatalogModel, ListedModel, ModelPrice, resolve_price
from watcher.core.errors import SourceError
from watcher.core.model import KnowledgeBase
from watcher.core.nextdue import Deadline, DueKind
from watcher.core.ports import MetaStore
from watcher.edges.hostclock import elapsed_now
from watcher.service.budget import PRICES, ReadsBudget

log = structlog.get_logger(__name__)

RETRY_AFTER_FAILURE = timedelta(minutes=10)
READ_KEY = "model_prices_read"  # meta: {"at": Elapsed, "models": [...], "catalog": [...]}


class PriceSource(Protocol):
    """The two reads of prices (`watcher.edges.api.client.ApiClient`); `SourceError` on failure."""

    async def list_embedding_models(self) -> list[ListedModel]:
        """`GET /v2/gen-ai/models?usecases=MODEL_USECASE_KNOWLEDGEBASE`, every page."""
        ...

    async def list_model_catalog(self) -> list[CatalogModel]:
        """`GET /v2/gen-ai/models/catalog`, every page."""
        ...


class PriceBook:
    """The latest prices read, and when to read them again (on the elapsed clock: a read
    from another boot, or none yet, makes one due)."""

    def __init__(
        self,
        source: PriceSource,
        every: timedelta = timedelta(hours=1),
        elapsed: Callable[[], Elapsed] = elapsed_now,
        meta: MetaStore | None = None,
    ) -> None:
        self.source, self.every, self.elapsed, self.meta = source, every, elapsed, meta
        self.models: tuple[ListedModel, ...] = ()
        self.catalog: tuple[CatalogModel, ...] = ()
        # the prices resolved by model, for the very `models` and `catalog` they came from
        self._resolved: tuple[
            tuple[ListedModel, ...], tuple[CatalogModel, ...], dict[str | None, ModelPrice | None]
        ] = ((), (), {})
        self._last: tuple[Elapsed, timedelta] | None = None  # the last try, and the wait after it
        self.budget: ReadsBudget | None = None  # the cycle's, set by it (None: unbounded)

    def deadline(self) -> Deadline:
        """When the prices are next read (none yet: now), on the elapsed clock."""
        if self._last is None:
            return Deadline(DueKind.PRICES)
        at, wait = self._last
        return Deadline(DueKind.PRICES, elapsed=at.minus(-wait))

    async def refresh_if_due(self) -> None:
        """Read the prices when due (first call, then every `every`); never raises a
        `SourceError` (logged, retried after `RETRY_AFTER_FAILURE`)."""
        now = self.elapsed()
        if self._last is None:
            await self._load()
        if self._last is not None:
            waited = now.since(self._last[0])
            if waited is not None and waited < self._last[1]:
                return
        if self.budget is not None and not self.budget.allowed(PRICES, now, cost=2):
            log.info("model_prices_waiting", reason=self.budget.last_wait[PRICES].value)
            return
        try:
            if self.budget is None:
                await self.read_prices()
            else:
                with self.budget.measure(PRICES, now):
                    await self.read_prices()
        except SourceError as exc:
            self._last = (now, RETRY_AFTER_FAILURE)
            log.warning("model_prices_unread", error=str(exc))
            return
        self._last = (now, self.every)
        await self._save(now)

    async def _load(self) -> None:
        """Adopt the models a previous process read (this boot), if any."""
        if self.meta is None:
            return
        try:
            data = json.loads(await self.meta.get_meta(READ_KEY) or "null")
            at = Elapsed.decode(data["at"])
            models = tuple(ListedModel(**m) for m in data["models"])
            catalog = tuple(CatalogModel(**c) for c in data["catalog"])
        except (ValueError, TypeError, KeyError):
            return
        if at is not None:
            self.models, self.catalog, self._last = models, catalog, (at, self.every)

    async def _save(self, at: Elapsed) -> None:
        if self.meta is not None:
            models = [asdict(m) for m in self.models]
            catalog = [asdict(c) for c in self.catalog]
            value = {"at": at.encode(), "models": models, "catalog": catalog}
            await self.meta.set_meta(READ_KEY, json.dumps(value))

    async def read_prices(self) -> None:
        """Read the embedding models (and the catalog when one of them has no price): THE
        one place the extra reads of cost happen (`refresh_if_due` measures them)."""
        models = tuple(await self.source.list_embedding_models())
        catalog: tuple[CatalogModel, ...] = ()
        if any(m.input_price_per_million is None for m in models):
            catalog = tuple(await self.source.list_model_catalog())
        self.models, self.catalog = models, catalog
        log.info("model_prices_read", models=len(models), catalog=len(catalog))

    def prices(self, kbs: Iterable[KnowledgeBase]) -> dict[str, ModelPrice]:
        """Each KB's embedding-model price, for the KBs whose model has one."""
        # a few models for all the KBs: each resolved once per reading of the prices
        read = (self.models, self.catalog)
        if self._resolved[0] is not read[0] or self._resolved[1] is not read[1]:
            self._resolved = (read[0], read[1], {})
        resolved = self._resolved[2]
        found: dict[str, ModelPrice] = {}
        for kb in kbs:
            model = kb.embedding_model_uuid
            if model not in resolved:
                resolved[model] = resolve_price(model, self.models, self.catalog)
            if (price := resolved[model]) is not None:
                found[kb.uuid] = price
        return found

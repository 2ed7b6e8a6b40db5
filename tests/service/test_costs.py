"""The price reads: about hourly on the elapsed clock, ten minutes after a failure, the
catalog only when the list lacks a price, and a failed read never raised."""

from __future__ import annotations

from datetime import timedelta

from watcher.core.clocks import Elapsed
from watcher.core.cost import CatalogModel, ListedModel, ModelPrice
from watcher.core.errors import RetryableSourceError
from watcher.core.model import KnowledgeBase
from watcher.service.costs import PriceBook

MODEL = "22653204-79ed-11ef-bf8f-4e013e2ddde4"


class Source:
    """A fake of the two reads: counts them, fails while `failing`."""

    def __init__(self, price: float | None) -> None:
        self.price, self.failing = price, False
        self.reads: list[str] = []

    async def list_embedding_models(self) -> list[ListedModel]:
        self.reads.append("models")
        if self.failing:
            raise RetryableSourceError("HTTP 503")
        return [ListedModel(MODEL, "gte", "GTE", self.price)]

    async def list_model_catalog(self) -> list[CatalogModel]:
        self.reads.append("catalog")
        return [CatalogModel("gte", "GTE", 0.1)]


class Clock:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> Elapsed:
        return Elapsed(self.seconds, "boot-1")


async def test_prices_are_read_hourly_and_ten_minutes_after_a_failure() -> None:
    source, clock = Source(0.09), Clock()
    book = PriceBook(source, timedelta(hours=1), clock)
    await book.refresh_if_due()
    clock.seconds += 3599
    await book.refresh_if_due()
    assert source.reads == ["models"]  # the list had the price: no catalog read
    clock.seconds += 1
    source.failing = True
    await book.refresh_if_due()  # fails, logged, never raised
    assert book.prices([KnowledgeBase("kb", embedding_model_uuid=MODEL)]) == {
        "kb": ModelPrice(MODEL, "GTE", 0.09)
    }  # the last prices are kept
    source.failing = False
    clock.seconds += 599
    await book.refresh_if_due()
    clock.seconds += 1
    await book.refresh_if_due()
    assert source.reads == ["models"] * 3


async def test_the_catalog_is_read_only_when_the_list_lacks_a_price() -> None:
    source = Source(None)
    book = PriceBook(source, timedelta(hours=1), Clock())
    await book.refresh_if_due()
    assert source.reads == ["models", "catalog"]
    assert book.prices([KnowledgeBase("kb", embedding_model_uuid=MODEL)])["kb"].source == "catalog"


class Meta:
    """A fake of the meta store: a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self.values.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.values[key] = value


async def test_a_new_process_within_the_hour_uses_the_prices_the_last_one_read() -> None:
    """`watcher once` from cron: one read an hour, not one per run."""
    source, clock, meta = Source(None), Clock(), Meta()
    await PriceBook(source, timedelta(hours=1), clock, meta).refresh_if_due()
    clock.seconds += 600
    later = PriceBook(source, timedelta(hours=1), clock, meta)
    await later.refresh_if_due()
    assert source.reads == ["models", "catalog"]
    assert later.prices([KnowledgeBase("kb", embedding_model_uuid=MODEL)])["kb"].per_million == 0.1
    clock.seconds += 3000
    await PriceBook(source, timedelta(hours=1), clock, meta).refresh_if_due()
    assert source.reads == ["models", "catalog"] * 2

"""What an indexing job cost, how long a running one has left, and when a cost is a spike. Pure.

Rules, in short:
- The price of a knowledge base's embedding model is `pricing.input_price_per_million` of the
  model whose `uuid` is the KB's `embedding_model_uuid` in the models list (`GET
  /v2/gen-ai/models`). When that entry carries no price, the catalog entry (`GET
  /v2/gen-ai/models/catalog`) whose `model_id` is the model's API name gives it (the spec never
  says the two name the same model; it is the only link the shapes offer). No match: no price.
- A finished job's cost is `total_tokens / 1,000,000 x price`, in the units of the price: the
  API's `pricing` names **no currency**, so neither does the watcher. A job without
  `total_tokens` (the deprecated `tokens` stands in) has no cost; 0 tokens cost 0.
- A running job's ETA comes from its progress rate on DigitalOcean's clock alone: the share of
  work done (files, else data sources) over the time since `started_at`, read at `api_now`.
  Too little to go on (no start, no share done yet, under a minute of running, nothing left to
  measure) is "ETA unknown", never a guess.
- A cost spike: a job costing more than `factor` times the median of its KB's recent costs
  (at least `min_history` of them, the job itself not among them); a median of 0 never spikes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from statistics import median

from watcher.core.durations import format_elapsed
from watcher.core.model import Job

PRICES_KEY = "kb_prices"  # meta: KB uuid -> its model's price (status, the page's history)
TOKENS_PER_PRICE_UNIT = 1_000_000
MIN_ETA_RUNTIME = timedelta(minutes=1)
NO_CURRENCY = "the API names no currency"


@dataclass(frozen=True, slots=True)
class ListedModel:
    """One entry of the models list (`apiModelPublic`): `id` is the API name; the price is
    `pricing.input_price_per_million` (None when absent)."""

    uuid: str
    id: str | None = None
    name: str | None = None
    input_price_per_million: float | None = None


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """One entry of the model catalog (`apiModelCatalogEntry`): `model_id` is the API name."""

    model_id: str
    name: str | None = None
    input_price_per_million: float | None = None
    scaled_pricing: bool = False


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """The price per million input tokens of one embedding model, and where it was read
    (`"models"` or `"catalog"`); `varies` when the catalog says its pricing varies over time."""

    model_uuid: str
    model: str
    per_million: float
    source: str = "models"
    varies: bool = False


@dataclass(frozen=True, slots=True)
class JobCost:
    """A finished job's cost: `tokens` x `per_million` / 1e6 = `amount`, in the price's unit."""

    tokens: int
    per_million: float
    amount: float
    model: str
    varies: bool = False

    def text(self) -> str:
        """One line for people, e.g. `0.0105 (116,500 tokens at 0.09 per million, model x;
        the API names no currency)`."""
        varies = "; the price varies over time" if self.varies else ""
        return (
            f"{format_amount(self.amount)} ({self.tokens:,} tokens at {self.per_million:g} per "
            f"million, model {self.model}; {NO_CURRENCY}{varies})"
        )


def format_amount(amount: float) -> str:
    """An amount with four significant decimals for small sums, two for large ones."""
    return f"{amount:,.2f}" if amount >= 100 else f"{amount:.4f}"


def resolve_price(
    model_uuid: str | None, models: Sequence[ListedModel], catalog: Sequence[CatalogModel]
) -> ModelPrice | None:
    """The price of the embedding model `model_uuid` (see the module's rules), or None."""
    if not model_uuid:
        return None
    listed = next((m for m in models if m.uuid == model_uuid), None)
    if listed is None:
        return None
    label = listed.name or listed.id or model_uuid
    if listed.input_price_per_million is not None:
        return ModelPrice(model_uuid, label, listed.input_price_per_million)
    entry = next((c for c in catalog if listed.id and c.model_id == listed.id), None)
    if entry is None or entry.input_price_per_million is None:
        return None
    return ModelPrice(
        model_uuid, label, entry.input_price_per_million, "catalog", entry.scaled_pricing
    )


def job_cost(job: Job, price: ModelPrice | None) -> JobCost | None:
    """The cost of a finished job at `price`; None while it runs, or without tokens or price."""
    tokens = job.total_tokens if job.total_tokens is not None else job.tokens
    if price is None or tokens is None or tokens < 0 or not job.is_terminal:
        return None
    try:
        amount = tokens * price.per_million / TOKENS_PER_PRICE_UNIT
    except OverflowError:  # a hostile count beyond any float: no cost, never a guess
        return None
    if not math.isfinite(amount):
        return None
    return JobCost(tokens, price.per_million, amount, price.model, price.varies)


class EtaBasis(StrEnum):
    """What an ETA was measured on, or why there is none."""

    FILES = "files"
    DATA_SOURCES = "data_sources"
    NOT_RUNNING = "not_running"
    NO_START = "no_start"
    TOO_EARLY = "too_early"
    NO_PROGRESS = "no_progress"


@dataclass(frozen=True, slots=True)
class Eta:
    """How long a running job has left (`remaining`, None when unknown) and why."""

    remaining: timedelta | None
    basis: EtaBasis
    done_share: float | None = None

    def text(self) -> str:
        """`ETA about 12m (40% of files in 8m)` or `ETA unknown (...)`, for alerts and status."""
        if self.remaining is None:
            return f"ETA unknown ({_WHY_UNKNOWN[self.basis]})"
        share = f"{(self.done_share or 0) * 100:.0f}% of {self.basis.value.replace('_', ' ')}"
        return f"ETA about {format_elapsed(self.remaining)} ({share} done)"


_WHY_UNKNOWN = {
    EtaBasis.NOT_RUNNING: "not running",
    EtaBasis.NO_START: "no start time yet",
    EtaBasis.TOO_EARLY: "running under a minute",
    EtaBasis.NO_PROGRESS: "no progress counted yet",
    EtaBasis.FILES: "",
    EtaBasis.DATA_SOURCES: "",
}


def _done_share(job: Job) -> tuple[float, EtaBasis] | None:
    """The share of work done: indexed files of all files, else done data sources."""
    total = sum(ds.total_file_count or 0 for ds in job.data_source_jobs)
    done = sum(ds.indexed_file_count or 0 for ds in job.data_source_jobs)
    if total > 0 and done > 0:
        return min(done / total, 1.0), EtaBasis.FILES
    if job.total_datasources and job.completed_datasources:
        return min(job.completed_datasources / job.total_datasources, 1.0), EtaBasis.DATA_SOURCES
    return None


def eta(job: Job, api_now: datetime) -> Eta:
    """The ETA of `job` at `api_now` (the API's clock; `started_at` is on the same clock)."""
    if not job.is_running:
        return Eta(None, EtaBasis.NOT_RUNNING)
    if job.started_at is None:
        return Eta(None, EtaBasis.NO_START)
    ran = api_now - job.started_at
    if ran < MIN_ETA_RUNTIME:
        return Eta(None, EtaBasis.TOO_EARLY)
    measured = _done_share(job)
    if measured is None or measured[0] >= 1.0:
        return Eta(None, EtaBasis.NO_PROGRESS)
    share, basis = measured
    left = ran * ((1 - share) / share)
    return Eta(timedelta(seconds=round(left.total_seconds())), basis, share)


@dataclass(frozen=True, slots=True)
class SpikeRule:
    """`cost_spike`: over `factor` x the median of at least `min_history` recent costs of the
    KB (the last `window`). `factor` None: off."""

    factor: float | None = None
    min_history: int = 3
    window: int = 10


@dataclass(frozen=True, slots=True)
class Spike:
    """A job that cost `ratio` times its KB's recent median."""

    amount: float
    median: float
    ratio: float
    factor: float

    def text(self) -> str:
        return (
            f"This job cost {format_amount(self.amount)}, {self.ratio:.1f} times the median "
            f"{format_amount(self.median)} of the knowledge base's recent jobs (alert above "
            f"{self.factor:g} times; {NO_CURRENCY})."
        )


def spike(amount: float, recent: Sequence[float], rule: SpikeRule) -> Spike | None:
    """A spike when `amount` is over `rule.factor` x the median of `recent` (oldest first; the
    last `rule.window` count), else None."""
    if rule.factor is None:
        return None
    window = list(recent)[-rule.window :]
    if len(window) < rule.min_history:
        return None
    middle = float(median(window))
    if middle <= 0 or amount <= rule.factor * middle:
        return None
    return Spike(amount, middle, amount / middle, rule.factor)


def encode_prices(prices: Mapping[str, ModelPrice]) -> str:
    """The meta value under `PRICES_KEY`: each KB's price as last read."""
    return json.dumps({kb: asdict(price) for kb, price in prices.items()}, sort_keys=True)


def decode_prices(value: str | None) -> dict[str, ModelPrice]:
    """The prices from the meta value (an unreadable value reads as none)."""
    try:
        data = json.loads(value) if value else {}
        return {str(kb): ModelPrice(**fields) for kb, fields in data.items()}
    except (ValueError, TypeError, AttributeError):
        return {}

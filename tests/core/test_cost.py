"""Cost, ETA and cost spikes, table-driven: one table per rule, one comment per case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.cost import (
    CatalogModel,
    EtaBasis,
    JobCost,
    ListedModel,
    ModelPrice,
    SpikeRule,
    eta,
    job_cost,
    resolve_price,
    spike,
)
from watcher.core.costing import annotate, keep_spikes, lowest_factor
from watcher.core.model import DataSourceJob, EventKind, Job, Phase, Status
from watcher.core.state import Delivery, Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # the API's clock
MODEL = "22653204-79ed-11ef-bf8f-4e013e2ddde4"
PRICE = ModelPrice(MODEL, "GTE Large", 0.09)


def job(**fields: object) -> Job:
    """A job that finished, with 1,000,000 tokens."""
    base = Job(
        uuid="job-1",
        knowledge_base_uuid="kb-1",
        phase=Phase.SUCCEEDED,
        status=Status.COMPLETED,
        started_at=NOW - timedelta(minutes=10),
        total_tokens=1_000_000,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def running(done: int, total: int, ran: timedelta, **fields: object) -> Job:
    """A running job with `done` of `total` files indexed, started `ran` before NOW."""
    sources = (DataSourceJob(indexed_file_count=done, total_file_count=total),)
    base = job(
        phase=Phase.RUNNING,
        status=Status.IN_PROGRESS,
        started_at=NOW - ran,
        data_source_jobs=sources,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


LISTED = ListedModel(MODEL, "gte-large-en-v1.5", "GTE Large", 0.09)
UNPRICED = ListedModel(MODEL, "gte-large-en-v1.5", "GTE Large", None)
CATALOG = CatalogModel("gte-large-en-v1.5", "GTE Large", 0.1, scaled_pricing=True)


@pytest.mark.parametrize(
    ("model_uuid", "models", "catalog", "expected"),
    [
        # the models list carries the price: it is used, the catalog is not consulted
        (MODEL, [LISTED], [CATALOG], ModelPrice(MODEL, "GTE Large", 0.09)),
        # no price in the list: the catalog entry of the same API name gives it (and varies)
        (MODEL, [UNPRICED], [CATALOG], ModelPrice(MODEL, "GTE Large", 0.1, "catalog", True)),
        # no price anywhere: no price (never a guess)
        (MODEL, [UNPRICED], [], None),
        # the KB's model is not listed: the catalog alone cannot be matched to a uuid
        (MODEL, [], [CATALOG], None),
        # a KB without an embedding model uuid has no price
        (None, [LISTED], [CATALOG], None),
        # a price of 0 is a price (free), not "unknown"
        (
            MODEL,
            [replace(LISTED, input_price_per_million=0.0)],
            [],
            ModelPrice(MODEL, "GTE Large", 0.0),
        ),
    ],
)
def test_a_kbs_price_comes_from_its_model_in_the_list_else_the_catalog(
    model_uuid: str | None,
    models: list[ListedModel],
    catalog: list[CatalogModel],
    expected: ModelPrice | None,
) -> None:
    assert resolve_price(model_uuid, models, catalog) == expected


@pytest.mark.parametrize(
    ("the_job", "price", "expected"),
    [
        # 1,000,000 tokens at 0.09 per million cost 0.09
        (job(), PRICE, JobCost(1_000_000, 0.09, 0.09, "GTE Large")),
        # the deprecated `tokens` stands in when `total_tokens` is missing
        (job(total_tokens=None, tokens=500_000), PRICE, JobCost(500_000, 0.09, 0.045, "GTE Large")),
        # no tokens reported: no cost
        (job(total_tokens=None), PRICE, None),
        # zero tokens cost zero
        (job(total_tokens=0), PRICE, JobCost(0, 0.09, 0.0, "GTE Large")),
        # no price: no cost
        (job(), None, None),
        # a running job has no cost yet
        (job(phase=Phase.RUNNING, status=Status.IN_PROGRESS), PRICE, None),
        # a hostile count no float can hold: no cost (the cycle must not die on it)
        (job(total_tokens=10**400), PRICE, None),
        # a count and a price whose product is infinite: no cost
        (job(total_tokens=10**300), replace(PRICE, per_million=1e300), None),
        # a negative count: no cost
        (job(total_tokens=-5), PRICE, None),
    ],
)
def test_a_finished_jobs_cost_is_its_tokens_times_the_price_per_million(
    the_job: Job, price: ModelPrice | None, expected: JobCost | None
) -> None:
    assert job_cost(the_job, price) == expected


def test_a_cost_says_its_figures_and_that_the_api_names_no_currency() -> None:
    text = JobCost(116_500, 0.09, 0.010485, "GTE Large", varies=True).text()
    assert text == (
        "0.0105 (116,500 tokens at 0.09 per million, model GTE Large; the API names no "
        "currency; the price varies over time)"
    )


@pytest.mark.parametrize(
    ("the_job", "remaining", "basis"),
    [
        # a quarter of the files in 10 minutes: 30 minutes left
        (running(25, 100, timedelta(minutes=10)), timedelta(minutes=30), EtaBasis.FILES),
        # no file counts: done data sources tell (1 of 4 in 10 minutes: 30 minutes left)
        (
            job(
                phase=Phase.RUNNING,
                status=Status.IN_PROGRESS,
                completed_datasources=1,
                total_datasources=4,
            ),
            timedelta(minutes=30),
            EtaBasis.DATA_SOURCES,
        ),
        # nothing done yet: unknown, never a guess
        (running(0, 100, timedelta(minutes=10)), None, EtaBasis.NO_PROGRESS),
        # every file counted but not over: nothing left to measure, unknown
        (running(100, 100, timedelta(minutes=10)), None, EtaBasis.NO_PROGRESS),
        # running under a minute: too early to tell
        (running(50, 100, timedelta(seconds=30)), None, EtaBasis.TOO_EARLY),
        # no start time: unknown
        (running(50, 100, timedelta(minutes=10), started_at=None), None, EtaBasis.NO_START),
        # a finished job has no ETA
        (job(), None, EtaBasis.NOT_RUNNING),
        # a pending job has no ETA
        (job(phase=Phase.PENDING, status=Status.PENDING), None, EtaBasis.NOT_RUNNING),
    ],
)
def test_a_running_jobs_eta_comes_from_its_progress_rate_on_the_apis_clock(
    the_job: Job, remaining: timedelta | None, basis: EtaBasis
) -> None:
    found = eta(the_job, NOW)
    assert (found.remaining, found.basis) == (remaining, basis)


def test_an_eta_reads_for_people_and_says_unknown_rather_than_guess() -> None:
    assert eta(running(25, 100, timedelta(minutes=10)), NOW).text() == (
        "ETA about 30m 00s (25% of files done)"
    )
    assert eta(running(0, 100, timedelta(minutes=10)), NOW).text() == (
        "ETA unknown (no progress counted yet)"
    )


ON = SpikeRule(factor=3.0, min_history=3, window=10)


@pytest.mark.parametrize(
    ("amount", "recent", "rule", "ratio"),
    [
        # 10 against a median of 2: 5 times, over 3: a spike
        (10.0, [1.0, 2.0, 3.0], ON, 5.0),
        # 6 against a median of 2: 3 times is not *more* than 3
        (6.0, [1.0, 2.0, 3.0], ON, None),
        # only two earlier costs: too little history
        (10.0, [1.0, 2.0], ON, None),
        # the rule is off without a factor
        (10.0, [1.0, 2.0, 3.0], SpikeRule(), None),
        # a median of 0 (free jobs) never spikes
        (10.0, [0.0, 0.0, 0.0], ON, None),
        # only the last `window` costs count: the old expensive ones are forgotten
        (10.0, [100.0, 100.0, 100.0, 1.0, 2.0, 2.0], replace(ON, window=3), 5.0),
    ],
)
def test_a_cost_spike_is_more_than_n_times_the_kbs_recent_median(
    amount: float, recent: list[float], rule: SpikeRule, ratio: float | None
) -> None:
    found = spike(amount, recent, rule)
    assert (found.ratio if found else None) == ratio


def _outcome(uuid: str, tokens: int) -> Transition:
    return Transition(
        f"{uuid}/completed",
        EventKind.COMPLETED,
        NOW,
        "kb-1",
        "docs",
        job(uuid=uuid, total_tokens=tokens),
    )


def test_outcomes_get_costs_and_a_spike_follows_the_outcome_it_is_about() -> None:
    recent = {"kb-1": (("a", 0.01), ("b", 0.01), ("c", 0.02))}
    out, costs = annotate([_outcome("d", 1_000_000)], {"kb-1": PRICE}, recent, ON)
    assert [t.kind for t in out] == [EventKind.COMPLETED, EventKind.COST_SPIKE]
    assert out[0].cost == out[1].cost == JobCost(1_000_000, 0.09, 0.09, "GTE Large")
    assert out[1].event_id == "d/cost_spike"
    assert costs["kb-1"][-1] == ("d", 0.09)


def test_a_job_already_counted_is_not_counted_or_spiked_twice() -> None:
    recent = {"kb-1": (("a", 0.01), ("b", 0.01), ("c", 0.01), ("d", 0.09))}
    out, costs = annotate([_outcome("d", 1_000_000)], {"kb-1": PRICE}, recent, ON)
    assert [t.kind for t in out] == [EventKind.COMPLETED]
    assert costs == recent


def test_an_outcome_of_a_kb_without_a_price_is_left_as_it_is() -> None:
    outcome = _outcome("d", 1_000_000)
    out, costs = annotate([outcome], {}, {}, ON)
    assert out == (outcome,)
    assert costs == {}


SPIKE = Transition("d/cost_spike", EventKind.COST_SPIKE, NOW, "kb-1", spike_ratio=10.0)
OUTCOME = Transition("d/completed", EventKind.COMPLETED, NOW, "kb-1")


@pytest.mark.parametrize(
    ("route", "factors", "kept"),
    [
        # a route without its own factor hears every spike detected
        ("ops", {}, True),
        # a route whose own factor (20) the ratio (10) does not exceed does not
        ("ops", {"ops": 20.0}, False),
        # one whose factor (5) it exceeds does
        ("ops", {"ops": 5.0}, True),
        # another route's factor changes nothing for this one
        ("ops", {"finance": 20.0}, True),
    ],
)
def test_a_routes_own_cost_spike_factor_filters_its_spikes(
    route: str, factors: dict[str, float], kept: bool
) -> None:
    deliveries = (Delivery("d/cost_spike", route), Delivery("d/completed", route))
    left = keep_spikes(deliveries, [OUTCOME, SPIKE], factors)
    assert left == (deliveries if kept else deliveries[1:])


@pytest.mark.parametrize(
    ("default", "by_route", "expected"),
    [
        # off everywhere: no spike is detected
        (None, {}, None),
        # [cost] alone
        (3.0, {}, 3.0),
        # a route's own factor alone turns detection on
        (None, {"ops": 5.0}, 5.0),
        # the lowest wins: every route can then filter on its own
        (3.0, {"ops": 2.0, "finance": 10.0}, 2.0),
    ],
)
def test_spikes_are_detected_at_the_lowest_factor_configured(
    default: float | None, by_route: dict[str, float], expected: float | None
) -> None:
    assert lowest_factor(default, by_route) == expected

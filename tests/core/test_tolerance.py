"""The error budget per knowledge base: which partial jobs are told as completed, and how."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from tests.core.test_render_golden import KB, NOW
from watcher.core.model import DataSourceJob, EventKind, Job, Phase, Status
from watcher.core.state import Transition
from watcher.core.tolerance import (
    ItemTolerance,
    Tolerances,
    item_counts,
    parse_tolerance,
    tolerate,
)

OTHER_KB = "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"


def job(*sources: tuple[int | None, int | None, int | None], uuid: str = "j1") -> Job:
    """A partial job whose data sources have (indexed, failed, skipped) items."""
    return Job(
        uuid=uuid,
        knowledge_base_uuid=KB,
        phase=Phase.SUCCEEDED,
        status=Status.PARTIAL,
        data_source_jobs=tuple(
            DataSourceJob(
                data_source_uuid=f"ds{n}",
                indexed_item_count=indexed,
                failed_item_count=failed,
                skipped_item_count=skipped,
            )
            for n, (indexed, failed, skipped) in enumerate(sources)
        ),
    )


def partial(of: Job, kb: str = KB, event_id: str | None = None) -> Transition:
    return Transition(
        event_id=event_id or f"{of.uuid}/partial",
        kind=EventKind.PARTIAL,
        at=NOW,
        kb_uuid=kb,
        kb_name="docs",
        job=of,
    )


TEN = ItemTolerance(count=10)
ONE_PERCENT = ItemTolerance(percent=Decimal(1))


@pytest.mark.parametrize(
    ("the_job", "budget", "told_as"),
    [
        # 10 failed of 1,010: a count of 10 lets it through, exactly at the limit
        (job((1000, 10, 0)), TEN, EventKind.COMPLETED),
        # 11 failed: one over the count
        (job((1000, 11, 0)), TEN, EventKind.PARTIAL),
        # failed items add up across data sources: 6 + 5 = 11
        (job((500, 6, 0), (500, 5, 0)), TEN, EventKind.PARTIAL),
        # 1 % of 1,000 items is 10: 10 failed is within it (990 + 10 = 1,000)
        (job((990, 10, 0)), ONE_PERCENT, EventKind.COMPLETED),
        # 11 of 1,000 is 1.1 %
        (job((989, 11, 0)), ONE_PERCENT, EventKind.PARTIAL),
        # skipped items count among the job's items (10 of 1,000 with 500 skipped)
        (job((490, 10, 500)), ONE_PERCENT, EventKind.COMPLETED),
        # partial with nothing failed (only skipped items) is within any budget
        (job((10, 0, 5)), ItemTolerance(count=0), EventKind.COMPLETED),
        # counts the API did not give: never judged, stays partial
        (job((None, None, None)), TEN, EventKind.PARTIAL),
        (job(), ONE_PERCENT, EventKind.PARTIAL),
    ],
)
def test_a_partial_job_is_completed_only_within_its_budget(
    the_job: Job, budget: ItemTolerance, told_as: EventKind
) -> None:
    (told,) = tolerate([partial(the_job)], Tolerances(default=budget))
    assert told.kind is told_as


def test_without_a_budget_nothing_changes() -> None:
    event = partial(job((1000, 1, 0)))
    assert tolerate([event], Tolerances()) == (event,)


def test_a_knowledge_bases_own_budget_wins_over_the_default() -> None:
    budgets = Tolerances(default=ItemTolerance(count=100), by_kb={KB: ItemTolerance(count=0)})
    mine, other = tolerate(
        [partial(job((100, 5, 0))), partial(job((100, 5, 0), uuid="j2"), kb=OTHER_KB)], budgets
    )
    assert (mine.kind, other.kind) == (EventKind.PARTIAL, EventKind.COMPLETED)


def test_the_completed_event_says_why_and_keeps_its_verdict_number() -> None:
    event = partial(job((1197, 3, 0)), event_id="j1/partial/2")
    (told,) = tolerate([event], Tolerances(default=TEN))
    assert told.event_id == "j1/completed/2"
    assert told.detail == (
        "DigitalOcean reports this job as partial: 3 failed items of 1,200 (0.25%), within "
        "this knowledge base's error budget (tolerate_failed_items = 10)."
    )
    assert told.job == event.job  # the API's own state is kept: outcome partial in the body


@pytest.mark.parametrize("kind", [k for k in EventKind if k is not EventKind.PARTIAL])
def test_no_other_event_is_touched(kind: EventKind) -> None:
    event = replace(partial(job((0, 500, 0))), kind=kind)
    assert tolerate([event], Tolerances(default=ItemTolerance(count=10_000))) == (event,)


def test_the_historical_job_totals_count_when_no_data_source_has_counts() -> None:
    old = replace(job(), total_items_indexed=95, total_items_failed=5, total_items_skipped=0)
    counts = item_counts(old)
    assert counts is not None and (counts.failed, counts.total) == (5, 100)


@pytest.mark.parametrize(
    ("written", "parsed"),
    [
        (10, ItemTolerance(count=10)),
        (0, ItemTolerance(count=0)),
        ("10", ItemTolerance(count=10)),
        ("1%", ItemTolerance(percent=Decimal(1))),
        (" 0.5 % ", ItemTolerance(percent=Decimal("0.5"))),
        ("100%", ItemTolerance(percent=Decimal(100))),
    ],
)
def test_the_setting_is_a_count_or_a_share(written: object, parsed: ItemTolerance) -> None:
    assert parse_tolerance(written) == parsed


@pytest.mark.parametrize("written", [-1, True, 1.5, "ten", "1.5", "%", "101%", "-1%", None])
def test_anything_else_is_refused_with_both_forms(written: object) -> None:
    with pytest.raises(ValueError, match=r"\(10\)|over 100%|negative"):
        parse_tolerance(written)

"""An error budget per knowledge base: a partial job with few enough failed items is completed.

Pure. `tolerate_failed_items` is a count (`10`: at most ten failed items) or a share (`"1%"`:
failed items at most 1 % of the job's items, indexed + failed + skipped). `tolerate` rewrites
the `partial` events of jobs within their KB's budget as `completed`, with a note that says
what DigitalOcean reported and why it was let through; above the budget, or when the job's
item counts are unknown (no per-data-source counts, no job totals), the event stays
`partial`: a budget never hides what it cannot measure.

The rewritten event keeps its place in the cycle and its verdict number
(`job/completed[/n]`), so recording it twice is still a no-op.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from watcher.core.model import EventKind, Job
from watcher.core.state import Transition

_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True, slots=True)
class ItemTolerance:
    """How many failed items a job may have and still count as completed: `count` items, or
    `percent` of its items (exactly one is set)."""

    count: int | None = None
    percent: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.percent is None):
            raise ValueError("an ItemTolerance is a count or a percent, not both nor neither")

    @property
    def setting(self) -> str:
        """As written in the config: `10` or `"1%"`."""
        return str(self.count) if self.count is not None else f'"{self.percent}%"'

    def allows(self, failed: int, total: int) -> bool:
        """Whether `failed` items out of `total` are within this budget."""
        if self.count is not None:
            return failed <= self.count
        assert self.percent is not None
        return failed == 0 or (total > 0 and Decimal(failed) * 100 <= self.percent * total)


def parse_tolerance(value: object) -> ItemTolerance:
    """`10` or `"1%"` (also `"0.5%"`, `"10"`) as an ItemTolerance; ValueError saying the forms."""
    if isinstance(value, bool):
        raise ValueError(_FORMS)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative; " + _FORMS)
        return ItemTolerance(count=value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return ItemTolerance(count=int(text))
        if match := _SHARE.match(text):
            try:
                percent = Decimal(match.group(1))
            except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
                raise ValueError(_FORMS) from None
            if percent > 100:
                raise ValueError("a share of items cannot be over 100%")
            return ItemTolerance(percent=percent)
    raise ValueError(_FORMS)


_FORMS = 'must be a number of failed items (10) or a share of the job\'s items ("1%")'


@dataclass(frozen=True, slots=True)
class Tolerances:
    """The error budgets in force: per knowledge base uuid, else `default` (None: no budget)."""

    default: ItemTolerance | None = None
    by_kb: Mapping[str, ItemTolerance] = field(default_factory=dict)

    def for_kb(self, kb_uuid: str | None) -> ItemTolerance | None:
        if kb_uuid is not None and kb_uuid in self.by_kb:
            return self.by_kb[kb_uuid]
        return self.default


@dataclass(frozen=True, slots=True)
class ItemCounts:
    """A job's items, when the API said them: failed, and all (indexed + failed + skipped)."""

    failed: int
    total: int


def item_counts(job: Job) -> ItemCounts | None:
    """The job's failed and total items from its data sources (or the historical job
    totals); None when the API gave no failed count at all."""
    sources = job.data_source_jobs
    if any(ds.failed_item_count is not None for ds in sources):
        failed = sum(ds.failed_item_count or 0 for ds in sources)
        total = failed + sum(
            (ds.indexed_item_count or 0) + (ds.skipped_item_count or 0) for ds in sources
        )
        return ItemCounts(failed, total)
    if job.total_items_failed is not None:
        failed = job.total_items_failed
        total = failed + (job.total_items_indexed or 0) + (job.total_items_skipped or 0)
        return ItemCounts(failed, total)
    return None


def within(job: Job, tolerance: ItemTolerance) -> ItemCounts | None:
    """The job's counts when it is within `tolerance`; None when above it or unknown."""
    counts = item_counts(job)
    if counts is None or not tolerance.allows(counts.failed, counts.total):
        return None
    return counts


def tolerate(transitions: Iterable[Transition], tolerances: Tolerances) -> tuple[Transition, ...]:
    """Each `partial` event of a job within its KB's budget as `completed` with a note; every
    other event as it was."""
    return tuple(_judged(t, tolerances) for t in transitions)


def _judged(t: Transition, tolerances: Tolerances) -> Transition:
    if t.kind is not EventKind.PARTIAL or t.job is None:
        return t
    tolerance = tolerances.for_kb(t.kb_uuid)
    if tolerance is None:
        return t
    counts = within(t.job, tolerance)
    if counts is None:
        return t
    prefix = f"{t.job.uuid}/{EventKind.PARTIAL.value}"
    suffix = t.event_id.removeprefix(prefix) if t.event_id.startswith(prefix) else ""
    return replace(
        t,
        event_id=f"{t.job.uuid}/{EventKind.COMPLETED.value}{suffix}",
        kind=EventKind.COMPLETED,
        detail=_note(counts, tolerance, t.detail),
    )


def _note(counts: ItemCounts, tolerance: ItemTolerance, detail: str | None) -> str:
    share = f" ({counts.failed / counts.total:.2%})" if counts.total else ""
    items = "item" if counts.failed == 1 else "items"
    note = (
        f"DigitalOcean reports this job as partial: {counts.failed:,} failed {items} of "
        f"{counts.total:,}{share}, within this knowledge base's error budget "
        f"(tolerate_failed_items = {tolerance.setting})."
    )
    return f"{note} {detail}" if detail else note

"""Choosing what the page and the JSON API list: a state per knowledge base, filters, order,
and cursors for paging. Pure.

A knowledge base's `Standing` is its latest job's state in one closed set: stalled before
anything else, then the outcome of a finished job, then pending, running or unknown, and
`no_jobs` for a knowledge base without one. Its age is how long ago its latest job last moved
(finished, else updated, started, created), on the API's clock, as `watcher status` says it.

A cursor is the sort key of the last item shown (opaque to clients: base64 of JSON), so paging
stays stable while the list changes: nothing is repeated or skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar, assert_never

from watcher.core.model import EventKind, Job
from watcher.core.records import JobPoint, KbRecord, Page
from watcher.core.state import JobCondition, StallReason, job_condition

T = TypeVar("T")
MAX_LIMIT = 1000
"""The most items one page may ask for."""


class Standing(StrEnum):
    """Where a knowledge base stands: its latest job's state, one word."""

    PENDING = "pending"
    RUNNING = "running"
    STALLED = "stalled"
    UNKNOWN = "unknown"
    COMPLETED = "completed"
    NO_CHANGES = "no_changes"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NO_JOBS = "no_jobs"

    @property
    def is_problem(self) -> bool:
        """Whether somebody should look: failed, partial, stalled, cancelled or unknown."""
        return self in _PROBLEMS

    @property
    def is_active(self) -> bool:
        """Whether a job is under way (pending, running, stalled or unknown)."""
        return self in _ACTIVE


_PROBLEMS = frozenset(
    {Standing.FAILED, Standing.PARTIAL, Standing.STALLED, Standing.CANCELLED, Standing.UNKNOWN}
)
_ACTIVE = frozenset({Standing.PENDING, Standing.RUNNING, Standing.STALLED, Standing.UNKNOWN})
_OUTCOMES = {
    EventKind.COMPLETED: Standing.COMPLETED,
    EventKind.NO_CHANGES: Standing.NO_CHANGES,
    EventKind.PARTIAL: Standing.PARTIAL,
    EventKind.FAILED: Standing.FAILED,
    EventKind.CANCELLED: Standing.CANCELLED,
}

_CONDITIONS = {
    JobCondition.PENDING: Standing.PENDING,
    JobCondition.RUNNING: Standing.RUNNING,
    JobCondition.STALLED: Standing.STALLED,
}


def standing(kb: KbRecord) -> Standing:
    """The knowledge base's standing, from its latest job."""
    latest = kb.latest
    if latest is None:
        return Standing.NO_JOBS
    if latest.stalled is not None and not latest.done:
        return Standing.STALLED
    outcome = latest.job.outcome
    if outcome is not None:
        return _OUTCOMES.get(outcome, Standing.UNKNOWN)
    condition = job_condition(latest)
    match condition:
        case JobCondition.PENDING:
            return Standing.PENDING
        case JobCondition.RUNNING:
            return Standing.RUNNING
        case JobCondition.STALLED:
            return Standing.STALLED
        case JobCondition.UNKNOWN | JobCondition.DONE:
            return Standing.UNKNOWN
        case _:
            assert_never(condition)


def point_state(point: JobPoint) -> str:
    """A job's colour word in charts and sparklines: its outcome, else stalled, pending,
    running or unknown (a finished job without a known outcome)."""
    if point.outcome is not None:
        return _OUTCOMES.get(point.outcome, Standing.UNKNOWN).value
    if point.stalled is not None:
        return Standing.STALLED.value
    return _CONDITIONS.get(point.condition, Standing.UNKNOWN).value


def job_state_word(job: Job, stalled: StallReason | None, done: bool) -> str:
    """A job's state word (as `point_state`) from the job and its stall bookkeeping."""
    condition = JobCondition.DONE if done or job.is_terminal else None
    if condition is None:
        condition = (
            JobCondition.PENDING
            if job.is_pending
            else JobCondition.RUNNING
            if job.is_running
            else JobCondition.UNKNOWN
        )
    point = JobPoint(job.uuid, None, None, None, job.outcome, condition, stalled=stalled)
    return point_state(point)


def last_moved(kb: KbRecord) -> datetime | None:
    """When the latest job last moved (the API's clock), or None without a job or a time."""
    if kb.latest is None:
        return None
    job = kb.latest.job
    return job.finished_at or job.updated_at or job.started_at or job.created_at


class Filter(StrEnum):
    """The overview's filters: every standing, and two groups of them."""

    ALL = "all"
    PROBLEMS = "problems"
    ACTIVE = "active"
    PENDING = "pending"
    RUNNING = "running"
    STALLED = "stalled"
    UNKNOWN = "unknown"
    COMPLETED = "completed"
    NO_CHANGES = "no_changes"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NO_JOBS = "no_jobs"

    def admits(self, value: Standing) -> bool:
        """Whether a knowledge base of this standing passes the filter."""
        if self is Filter.ALL:
            return True
        if self is Filter.PROBLEMS:
            return value.is_problem
        if self is Filter.ACTIVE:
            return value.is_active
        return self.value == value.value


class Order(StrEnum):
    """The overview's orders: by name, or by age (most recently moved first, or last)."""

    NAME = "name"
    NAME_DESC = "-name"
    AGE = "age"
    AGE_DESC = "-age"


def _key(order: Order) -> Callable[[KbRecord], list[Any]]:
    """A sort key (JSON-able, so it can be a cursor) ending with the uuid, for ties."""

    def by_name(kb: KbRecord) -> list[Any]:
        return [kb.label.casefold(), kb.uuid]

    def by_age(kb: KbRecord) -> list[Any]:
        moved = last_moved(kb)
        # youngest first: newest moment first; none at all goes last
        return [0 if moved is None else 1, moved.isoformat() if moved else "", kb.uuid]

    match order:
        case Order.NAME | Order.NAME_DESC:
            return by_name
        case Order.AGE | Order.AGE_DESC:
            return by_age
        case _:
            assert_never(order)


def _descending(order: Order) -> bool:
    # by age, "youngest first" is the newest moment first: descending keys
    return order in (Order.NAME_DESC, Order.AGE)


def select_kbs(
    kbs: Iterable[KbRecord],
    *,
    where: Filter = Filter.ALL,
    order: Order = Order.NAME,
    limit: int = MAX_LIMIT,
    after: str | None = None,
) -> Page[KbRecord]:
    """The knowledge bases that pass `where`, in `order`, `limit` of them after cursor `after`.

    Raises `ValueError` for a cursor that is not one of ours (or of another order).
    """
    key = _key(order)
    descending = _descending(order)
    chosen = sorted((kb for kb in kbs if where.admits(standing(kb))), key=key, reverse=descending)
    if after is not None:
        mark = decode_cursor(after, order.value)
        chosen = [kb for kb in chosen if (key(kb) < mark if descending else key(kb) > mark)]
    return paged(chosen, limit, lambda kb: encode_cursor(order.value, key(kb)))


def paged(items: Sequence[T], limit: int, cursor: Callable[[T], str]) -> Page[T]:
    """The first `limit` items (1 to `MAX_LIMIT`) and the cursor after the last, if more."""
    limit = clamp_limit(limit)
    shown = tuple(items[:limit])
    more = len(items) > limit
    return Page(shown, cursor(shown[-1]) if more and shown else None)


def clamp_limit(limit: int) -> int:
    """A page size within 1 and `MAX_LIMIT`."""
    return max(1, min(limit, MAX_LIMIT))


def encode_cursor(kind: str, key: Sequence[Any]) -> str:
    """An opaque cursor for `key` in a list of `kind` (base64url of JSON, unpadded)."""
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> list[Any]:
    """The key an `encode_cursor` cursor holds; `ValueError` unless it is one for `kind`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error):
        raise ValueError("not a cursor of this list") from None
    if not isinstance(value, list) or not value or value[0] != kind:
        raise ValueError("not a cursor of this list")
    return value[1:]

"""Digests through the outbox: each cycle, every route whose digest slot passed gets one
`digest` event, recorded with the slot in one transaction (so a restart never sends it twice,
and a slot missed while the watcher was down is sent once on start).

When a digest is due, and what it covers, is pure (`watcher.core.digest.due`, on the wall
clock in the schedule's timezone); this module reads the facts, records the event and its
outbox row, and the cycle's delivery sends it like any alert (retried, dead-lettered,
visible in `status`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime

import structlog

from watcher.core.digest import (
    DigestSchedule,
    digest_text,
    digest_transition,
    due,
    next_slot,
    summarize,
)
from watcher.core.nextdue import Deadline, DueKind
from watcher.core.ports import DigestReads, MetaStore, StateStore
from watcher.core.state import Change, Delivery

log = structlog.get_logger(__name__)

MARK_KEY = "digest"  # meta key prefix: `digest/<route>` holds the slot of its last digest


class Digests:
    """Records the digests that are due; `schedules` is each route's `digest =`, `scopes` its
    `knowledge_bases` (a route hears of its own knowledge bases only)."""

    def __init__(
        self,
        reads: DigestReads,
        store: StateStore,
        meta: MetaStore,
        schedules: Mapping[str, DigestSchedule],
        clock: Callable[[], datetime],
        scopes: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.reads, self.store, self.meta = reads, store, meta
        self.schedules, self.clock = schedules, clock
        self.scopes = scopes or {}  # each route's `knowledge_bases` (absent: all)

    async def record_due(self) -> int:
        """Record every digest due now (its event and outbox row with its slot); the count."""
        recorded = 0
        for route_name, schedule in self.schedules.items():
            recorded += await self._one(route_name, schedule)
        return recorded

    def deadlines(self, now: datetime) -> tuple[Deadline, ...]:
        """When each route's next digest slot comes (wall clock), after `now`."""
        return tuple(
            Deadline(DueKind.DIGEST, wall=next_slot(s, now)) for s in self.schedules.values()
        )

    async def _one(self, route_name: str, schedule: DigestSchedule) -> int:
        key = f"{MARK_KEY}/{route_name}"
        now = self.clock()
        found = due(schedule, now, _mark(await self.meta.get_meta(key)))
        if found is None:
            return 0
        slot = {key: found.until.isoformat()}
        if not found.send:  # the first run: nothing before it is news
            await self.store.record(Change(cycle_id=_cycle_id(), at=now), meta=slot)
            return 0
        outcomes, latest = await self.reads.digest_facts(found.since, found.until)
        incidents = await self.reads.open_incidents()
        scope = self.scopes.get(route_name, frozenset({"*"}))
        digest = summarize(
            outcomes, latest, found.since, found.until, incidents, knowledge_bases=scope
        )
        text = digest_text(digest, schedule)
        event = digest_transition(route_name, found, text, now)
        change = Change(
            cycle_id=_cycle_id(),
            at=now,
            transitions=(event,),
            deliveries=(Delivery(event.event_id, route_name),),
        )
        await self.store.record(change, meta=slot)
        log.info("digest_recorded", route=route_name, event_id=event.event_id)
        return 1


def _mark(raw: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None  # unreadable: start afresh at the next slot


def _cycle_id() -> str:
    return uuid.uuid4().hex[:12]

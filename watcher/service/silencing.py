"""The silences stage of a cycle: the ends of silences are announced, once.

The rules are pure (`watcher.core.silences`); this module reads the silences that ended and
were not announced yet, and for each one the store, in one transaction, marks it announced (a
conditional update: several processes sharing the store announce it once), reads what it held
and the open incidents, and records the `silence_ended` events this module makes of them with
their outbox rows (a kill -9 anywhere in it neither loses nor doubles the announcement). The
holding itself happens at delivery (`watcher.service.dispatch`), where every row passes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from functools import partial

import structlog

from watcher.core.incident import Incident
from watcher.core.ports import SilenceBook
from watcher.core.silences import HeldRow, Silence, announcement, due_announcements
from watcher.core.state import Change

log = structlog.get_logger(__name__)


class Silencer:
    """Announces the ends of silences through the outbox, to the routes still configured."""

    def __init__(
        self, book: SilenceBook, routes: Collection[str], clock: Callable[[], datetime]
    ) -> None:
        self.book, self.routes, self.clock = book, frozenset(routes), clock
        self.next_end: datetime | None = None  # the soonest end not announced, as last read

    async def end_silences(self) -> int:
        """Record the announcement of every silence that ended; returns how many ended."""
        now = self.clock()
        silences = await self.book.current_silences(now)
        ended = due_announcements(silences, now)
        ends = [s.ends_at for s in silences if s.announced_at is None and s.active(now)]
        self.next_end = min(ends, default=None)
        for silence in ended:
            said = await self.book.announce_silence_end(
                silence.id, now, partial(self._announcement, silence, now)
            )
            if said is not None:
                log.info(
                    "silence_ended",
                    silence=silence.id,
                    routes=sorted(d.route for d in said.deliveries),
                    open=sum(len(t.open_problems) for t in said.transitions),
                )
        return len(ended)

    def _announcement(
        self,
        silence: Silence,
        now: datetime,
        held: list[HeldRow],
        incidents: Mapping[str, Incident],
    ) -> Change:
        """The change recording `silence`'s end, for the routes still configured (called by
        the store inside the transaction that marks it announced)."""
        transitions, deliveries = announcement(silence, held, incidents, now)
        deliveries = tuple(d for d in deliveries if d.route in self.routes)
        wanted = {d.event_id for d in deliveries}
        return Change(
            cycle_id=uuid.uuid4().hex[:12],
            at=now,
            transitions=tuple(t for t in transitions if t.event_id in wanted),
            deliveries=deliveries,
        )

"""The silences stage of a cycle: the ends of silences are announced, once.

The rules are pure (`watcher.core.silences`); this module reads the silences that ended and
were not announced yet, what each held and the latest job of each KB it hid, and records the
`silence_ended` events with their outbox rows in one transaction that also marks the silence
announced (a conditional update: several processes sharing the store announce it once). The
holding itself happens at delivery (`watcher.service.dispatch`), where every row passes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from datetime import datetime

import structlog

from watcher.core.ports import SilenceBook
from watcher.core.silences import announcement, due_announcements
from watcher.core.state import Change

log = structlog.get_logger(__name__)


class Silencer:
    """Announces the ends of silences through the outbox, to the routes still configured."""

    def __init__(
        self, book: SilenceBook, routes: Collection[str], clock: Callable[[], datetime]
    ) -> None:
        self.book, self.routes, self.clock = book, frozenset(routes), clock

    async def end_silences(self) -> int:
        """Record the announcement of every silence that ended; returns how many ended."""
        now = self.clock()
        ended = due_announcements(await self.book.current_silences(now), now)
        for silence in ended:
            held, latest = await self.book.silence_end(silence.id)
            transitions, deliveries = announcement(
                silence, held, {job.kb_uuid: job for job in latest}, now
            )
            deliveries = tuple(d for d in deliveries if d.route in self.routes)
            wanted = {d.event_id for d in deliveries}
            change = Change(
                cycle_id=uuid.uuid4().hex[:12],
                at=now,
                transitions=tuple(t for t in transitions if t.event_id in wanted),
                deliveries=deliveries,
            )
            if await self.book.announce_silence_end(silence.id, change):
                log.info(
                    "silence_ended",
                    silence=silence.id,
                    held=len(held),
                    routes=sorted(d.route for d in deliveries),
                    open=sum(len(t.open_problems) for t in change.transitions),
                )
        return len(ended)

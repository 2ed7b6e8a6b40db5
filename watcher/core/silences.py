"""Silences: people saying "not now" about some alerts for a while. Pure.

A `Silence` matches an outbox delivery by two matchers, as Alertmanager's do: the knowledge
base (a uuid, resolved from a name when the silence was added, or every KB) and the event kind
(one word, or every event). Events that are not about a knowledge base (`api_unreachable`,
`delivery_failing`, ...) carry no KB, so only a silence of every KB (`--kb '*'`) holds them.

The rules:
- `hold` splits the rows claimed for sending into those that go and those a silence holds.
  A held row is recorded as `silenced`, with the silence that held it: never sent, never lost
  (`status` and the page show it). When several silences match, the one that ends last holds
  it, so its end is when the problem can come back.
- A silence holds from when it is stored until `ends_at`, on the wall clock: a silence is for
  people ("for 2h" from now, shown in their local time), like quiet hours. A step of the wall
  clock moves its end by as much (forward: it ends sooner; back: later); hosts that share a
  store compare the same stored end with their own clocks, so they need NTP, as for logs.
  `starts_at` records when it was added; it is never compared with (a silence added on a
  host whose clock is ahead still holds at once everywhere).
- When a silence ends (its time ran out, or `watcher silence expire`), the problems it hid
  that are still open are announced once (`announcement`): per route that had rows held,
  one `silence_ended` event listing those knowledge bases that have an open incident
  (`watcher.core.incident`: its failures in a row, since when, its latest problem, who
  acknowledged it), as the digest lists them. A KB whose incident closed meanwhile is not
  announced; one whose retry is running while its incident is still open is. Nothing goes
  out when none is left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from watcher.core.incident import Incident
from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryState, OutboxItem, Settlement
from watcher.core.state import Delivery, OpenProblem, Transition

ANY = "*"

# A closing event and the event it closes, about the same subject. Whoever did not hear the
# opener (a silence held it) must not hear its closer alone ("reachable again" without
# "unreachable"): as Alertmanager sends no resolved notice for an alert it never sent.
OPENED_BY: Mapping[EventKind, EventKind] = {
    EventKind.API_RECOVERED: EventKind.API_UNREACHABLE,
    EventKind.KNOWLEDGE_BASE_FOUND: EventKind.KNOWLEDGE_BASE_MISSING,
    EventKind.RECOVERED: EventKind.STALLED,
    EventKind.DELIVERY_RECOVERED: EventKind.DELIVERY_FAILING,
}


@dataclass(frozen=True, slots=True)
class Silence:
    """One stored silence. `kb_uuid` / `event` None mean every one (`*`).

    `kb_label` is what people read for the KB (the name it was given by, or the uuid); times
    are aware UTC datetimes on the wall clock of the host that wrote them; `held` counts the
    outbox rows it held (filled by the store's reads).
    """

    id: str
    kb_uuid: str | None
    event: EventKind | None
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    kb_label: str | None = None
    expired_by_hand: bool = False
    announced_at: datetime | None = None
    held: int = 0

    def active(self, now: datetime) -> bool:
        """Whether it still holds at `now` (wall clock)."""
        return now < self.ends_at

    def matches(self, transition: Transition) -> bool:
        """Whether its matchers both match the event (time aside)."""
        kind = transition.kind
        if self.event is not None and self.event not in (kind, OPENED_BY.get(kind)):
            return False  # a silence of an event also holds the event that closes it
        return self.kb_uuid is None or transition.kb_uuid == self.kb_uuid

    @property
    def kb_text(self) -> str:
        """The KB matcher for people: `*`, or the name or uuid it was given by."""
        return ANY if self.kb_uuid is None else (self.kb_label or self.kb_uuid)

    @property
    def event_text(self) -> str:
        return ANY if self.event is None else self.event.value


@dataclass(frozen=True, slots=True)
class Held:
    """A claimed row a silence holds: settle it with `settlement`."""

    item: OutboxItem
    silence_id: str

    def settlement(self, now: datetime) -> Settlement:
        """The row as recorded: silenced by `silence_id`, no attempt spent."""
        return Settlement(
            outbox_id=self.item.id,
            state=DeliveryState.SILENCED,
            at=now,
            attempts=self.item.attempts,
            error=f"held by silence {self.silence_id}",
            silence_id=self.silence_id,
        )


def holding(transition: Transition, silences: Iterable[Silence], now: datetime) -> Silence | None:
    """The silence that holds this event at `now`: of those active that match, the one that
    ends last (the smallest id on a tie); None when none does."""
    matching = [s for s in silences if s.active(now) and s.matches(transition)]
    if not matching:
        return None
    return min(matching, key=lambda s: (-s.ends_at.timestamp(), s.id))


def hold(
    items: Sequence[OutboxItem], silences: Sequence[Silence], now: datetime
) -> tuple[list[OutboxItem], list[Held]]:
    """Split claimed rows into those to send and those a silence holds, in their order."""
    send: list[OutboxItem] = []
    held: list[Held] = []
    for item in items:
        silence = holding(item.transition, silences, now) if silences else None
        if silence is None:
            send.append(item)
        else:
            held.append(Held(item, silence.id))
    return send, held


def same_subject(a: Transition, b: Transition) -> bool:
    """Whether two events are about the same thing: KB, job and route (the API: all None)."""
    job_a = a.job.uuid if a.job is not None else None
    job_b = b.job.uuid if b.job is not None else None
    return a.kb_uuid == b.kb_uuid and job_a == job_b and a.route == b.route


def held_opener(closer: Transition, earlier: Iterable[tuple[Transition, str | None]]) -> str | None:
    """The silence that held the event `closer` closes, on the same route: `earlier` are the
    route's events of that opening kind before it, newest first, each with the silence that
    held its row (None: it was not held). None when the latest such opener was not held (or
    there is none, or `closer` closes nothing): the closer goes out as usual."""
    opener = OPENED_BY.get(closer.kind)
    if opener is None:
        return None
    for transition, silence_id in earlier:
        if transition.kind is opener and same_subject(transition, closer):
            return silence_id
    return None


# Openers a silence's announcement does not tell (they are not about a KB's latest job).
_RELEASED_AT_END = frozenset(
    (EventKind.API_UNREACHABLE, EventKind.KNOWLEDGE_BASE_MISSING, EventKind.DELIVERY_FAILING)
)


def unclosed_openers(held: Iterable[tuple[int, str, Transition]]) -> list[int]:
    """The outbox ids, among the rows (id, route, event) a silence held in id order, of the
    openers (`api_unreachable`, `knowledge_base_missing`, `delivery_failing`) that no later
    held row on their route closed: still open when the silence ends, they are sent then (as
    Alertmanager notifies a still-firing alert once its silence expires)."""
    open_rows: dict[tuple[str, EventKind, str | None, str | None], int] = {}
    for row_id, route, transition in held:
        kind = transition.kind
        opener = OPENED_BY.get(kind, kind)
        if opener not in _RELEASED_AT_END:
            continue
        key = (route, opener, transition.kb_uuid, transition.route)
        if kind is opener:
            open_rows[key] = row_id
        else:
            open_rows.pop(key, None)
    return sorted(open_rows.values())


def due_announcements(silences: Iterable[Silence], now: datetime) -> list[Silence]:
    """The silences that have ended at `now` and were not announced yet, oldest end first."""
    ended = [s for s in silences if not s.active(now) and s.announced_at is None]
    return sorted(ended, key=lambda s: (s.ends_at, s.id))


@dataclass(frozen=True, slots=True)
class HeldRow:
    """A row a silence held, as its end is judged: its route and the event's KB."""

    route: str
    kb_uuid: str | None
    kb_name: str | None = None


def held_rows(route: str, transition: Transition) -> list[HeldRow]:
    """The KBs a held row hid: its event's, or each one a held `silence_ended` listed (an
    announcement another silence held hides those problems in turn)."""
    if transition.kind is EventKind.SILENCE_ENDED:
        return [HeldRow(route, p.kb_uuid, p.kb_name) for p in transition.open_problems]
    return [HeldRow(route, transition.kb_uuid, transition.kb_name)]


def announcement(
    silence: Silence,
    held: Iterable[HeldRow],
    incidents: Mapping[str, Incident],
    now: datetime,
) -> tuple[tuple[Transition, ...], tuple[Delivery, ...]]:
    """The `silence_ended` events of a silence that ended at `now`, one per route that had
    rows held, each listing the held KBs with an open incident (by name, then uuid); a route
    whose KBs all recovered gets nothing. `incidents` are the open incidents by KB uuid, read
    with the marking of the silence announced (a closed one, or none, means recovered)."""
    by_route: dict[str, dict[str, None]] = {}
    for row in held:
        if row.kb_uuid is not None:
            by_route.setdefault(row.route, {})[row.kb_uuid] = None
    transitions: list[Transition] = []
    deliveries: list[Delivery] = []
    for route_name in sorted(by_route):
        found = (incidents.get(kb) for kb in by_route[route_name])
        problems = [OpenProblem.of(i) for i in found if i is not None and i.is_open]
        if not problems:
            continue
        problems.sort(key=lambda p: (p.kb_name or p.kb_uuid, p.kb_uuid))
        event_id = f"silence/{silence.id}/ended/{route_name}"
        transitions.append(
            Transition(
                event_id=event_id,
                kind=EventKind.SILENCE_ENDED,
                at=now,
                detail=silence.comment or None,
                silence_id=silence.id,
                open_problems=tuple(problems),
            )
        )
        deliveries.append(Delivery(event_id=event_id, route=route_name))
    return tuple(transitions), tuple(deliveries)

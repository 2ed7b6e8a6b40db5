"""Quiet hours at delivery: hold what is due in a route's windows, release it as one message.

- `hold`: of the claimed rows, those whose route is in one of its `mute_during` windows now
  (`watcher.core.windows`) go back to the queue, pending until the quiet ends, marked with
  the window's name (`held_by`), no attempt spent, the reason in their last error (which
  `status` shows). They are never lost: they are outbox rows like any other. A held row's
  `dead_after` count starts again at its first failure after the hold (a weekend's hold
  never gives an alert up at its next failure).
- `settle_held`: when the quiet ends the held rows of a route come due together and go out
  as one message (several, each naming its part, when one cannot name them all within the
  service's limits: `watcher.core.plan`), minus what resolved meanwhile: a stalled job that
  then ended is told by its outcome alone (which says it had stalled), a `started` or
  `recovered` by the outcome it led to, and pairs that cancel out (the API unreachable then
  reachable again, a KB missing then found, a route failing then recovering) are one line
  under "Resolved while held".

Pure: `now` is the wall clock, the windows carry their timezones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from watcher.core.decide import settlement
from watcher.core.markup import Span, plain
from watcher.core.model import EventKind
from watcher.core.outbox import Budget, DeliveryState, Message, OutboxItem, Part, Settlement
from watcher.core.render import (
    DASHBOARD,
    group_line,
    headline,
    render_list,
    worst,
    worst_first,
)
from watcher.core.state import Transition
from watcher.core.windows import TimeWindow, muting, window_end

# (opened, closed): an event and the one that undoes it, about the same subject.
_PAIRS = {
    EventKind.API_UNREACHABLE: EventKind.API_RECOVERED,
    EventKind.KNOWLEDGE_BASE_MISSING: EventKind.KNOWLEDGE_BASE_FOUND,
    EventKind.DELIVERY_FAILING: EventKind.DELIVERY_RECOVERED,
    EventKind.STALLED: EventKind.RECOVERED,
}


def hold(
    items: Sequence[OutboxItem], mutes: Mapping[str, Sequence[TimeWindow]], now: datetime
) -> tuple[list[OutboxItem], list[Settlement]]:
    """Split claimed rows into those that may go now and the settlements that hold the rest
    until their route's quiet ends (`now` and the ends: wall clock, UTC)."""
    free: list[OutboxItem] = []
    held: list[Settlement] = []
    quiet: dict[str, tuple[datetime | None, TimeWindow | None]] = {}  # per route, once
    for item in items:
        if item.route not in quiet:
            windows = mutes.get(item.route, ())
            end = window_end(windows, now) if windows else None
            quiet[item.route] = (end, muting(windows, now) if end is not None else None)
        end, window = quiet[item.route]
        if end is None or window is None:
            free.append(item)
            continue
        why = f"held by quiet hours {window.name!r} until {end.isoformat(timespec='minutes')}"
        kept = settlement(
            item,
            DeliveryState.PENDING,
            now,
            attempts=item.attempts,
            due=end,
            error=why,
            reached=item.last_targets,
        )
        # a hold is no failure: `dead_after` counts again from the first failure after it
        held.append(replace(kept, held_by=window.name, failing_for=None))
    return free, held


def quiet_ends(mutes: Mapping[str, Sequence[TimeWindow]], now: datetime) -> dict[str, datetime]:
    """Each route in its quiet hours at `now` and when they end (UTC). A row held for any other
    route, or held past its route's end, is due then: the configuration that held it changed
    (a window removed or shortened, `mute_during` edited, the route gone) or the wall clock
    stepped back; an alert is never kept waiting for a window that no longer exists."""
    ends = {name: window_end(windows, now) for name, windows in mutes.items() if windows}
    return {name: end for name, end in ends.items() if end is not None}


@dataclass(frozen=True, slots=True)
class Released:
    """What a route's held rows tell when the quiet ends: the events still worth telling,
    oldest first, and (opened, closed) pairs that resolved while held."""

    told: tuple[Transition, ...]
    resolved: tuple[tuple[Transition, Transition], ...]


def settle_held(transitions: Sequence[Transition]) -> Released:
    """Drop what resolved meanwhile (see the module's rules); keep the order of the rest."""
    ordered = sorted(transitions, key=lambda t: t.at)
    ended = {t.job_uuid for t in ordered if t.kind.is_terminal and t.job_uuid}
    stalls = {t.job_uuid: t.stall_reason for t in ordered if t.kind is EventKind.STALLED}
    told: list[Transition] = []
    resolved: list[tuple[Transition, Transition]] = []
    open_: dict[tuple[EventKind, str | None, str | None], Transition] = {}
    for t in ordered:
        if t.job_uuid in ended and t.kind in _TOLD_BY_OUTCOME:
            continue  # the outcome's line tells it (and says the job had stalled)
        if t.kind.is_terminal and t.job_uuid in stalls and t.stall_reason is None:
            t = replace(t, stall_reason=stalls[t.job_uuid])
        if t.kind in _PAIRS:
            open_[(t.kind, *_about(t))] = t
            told.append(t)
            continue
        opener = next((k for k, closer in _PAIRS.items() if closer is t.kind), None)
        first = open_.pop((opener, *_about(t)), None) if opener else None
        if first is not None:
            told.remove(first)
            resolved.append((first, t))
            continue
        told.append(t)
    return Released(tuple(told), tuple(resolved))


_TOLD_BY_OUTCOME = frozenset({EventKind.STARTED, EventKind.STALLED, EventKind.RECOVERED})


def told_together(items: Sequence[OutboxItem]) -> list[list[OutboxItem]]:
    """Held rows in the groups `settle_held` reads together, worst told first, those that
    resolve entirely last: the rows of a job that ended (told by its outcome alone), the
    rows of a pair that cancels out (one "resolved" line) with any opener of the same kind
    and subject it replaced (missing, missing again, found: in one part, the first `missing`
    never meets a later `found` as a pair no one message told), every other row alone. A release
    split in parts (`watcher.core.plan`) keeps each group in one part, so a job is told once,
    by its outcome (never its `started` in one part and its outcome in another), and a pair
    stays one line; and no group is longer than a line or two, so every part can name all of
    its own (a KB missing and found again 60 times over a weekend is 60 groups, not one
    group too long for any message)."""
    ordered = sorted(range(len(items)), key=lambda n: items[n].transition.at)
    ended = {t.job_uuid for t in (item.transition for item in items) if t.kind.is_terminal}
    ended.discard(None)
    joined = list(range(len(items)))  # union-find over the rows' positions

    def root(n: int) -> int:
        while joined[n] != n:
            joined[n] = joined[joined[n]]
            n = joined[n]
        return n

    by_job: dict[str, int] = {}
    open_: dict[tuple[EventKind, str | None, str | None], int] = {}
    for n in ordered:
        t = items[n].transition
        if t.job_uuid in ended and t.job_uuid is not None:
            joined[root(n)] = root(by_job.setdefault(t.job_uuid, n))
            if t.kind in _TOLD_BY_OUTCOME:
                continue  # as `settle_held`: never opens nor closes a pair
        if t.kind in _PAIRS:  # with the opener it replaces: never paired with a closer apart
            replaced = open_.get((t.kind, *_about(t)))
            if replaced is not None:
                joined[root(n)] = root(replaced)
            open_[(t.kind, *_about(t))] = n
            continue
        opener = next((k for k, closer in _PAIRS.items() if closer is t.kind), None)
        first = open_.pop((opener, *_about(t)), None) if opener else None
        if first is not None:
            joined[root(n)] = root(first)
    groups: dict[int, list[OutboxItem]] = {}
    for n, item in enumerate(items):
        groups.setdefault(root(n), []).append(item)
    return sorted(groups.values(), key=_worst_told)


def _worst_told(group: Sequence[OutboxItem]) -> int:
    """`worst_first` of what the group tells when released; 1 (after all) if it resolved."""
    told = settle_held([item.transition for item in group]).told
    return min((worst_first(t) for t in told), default=1)


def _about(t: Transition) -> tuple[str | None, str | None]:
    """The subject a pair shares: the job, else the KB, else the route (or the API)."""
    return (t.job_uuid or t.kb_uuid, t.route)


def render_released(
    transitions: Sequence[Transition],
    window: str,
    dashboard: str = DASHBOARD,
    budget: Budget | None = None,
    part: Part | None = None,
) -> Message:
    """The one message a route gets when its quiet ends: what is still worth telling (worst
    first) and what resolved while held; severity is the worst of what is told. `part`:
    which of the messages too much held for one is split into (`watcher.core.plan`)."""
    released = settle_held(transitions)
    told = sorted(released.told, key=worst_first)
    count = len(told)
    noun = "indexing event" if count == 1 else "indexing events"
    label = f" ({part.label()})" if part is not None else ""
    more = f" ({part.lead()})" if part is not None else ""
    lead = f"{count} {noun} held during quiet hours {window}, released now{more}."
    if not told:
        lead = f"Everything held during quiet hours {window} resolved meanwhile{more}."
    tail = [_resolved_line(first, then) for first, then in released.resolved]
    return render_list(
        f"Quiet hours {window} over: {count} {noun}{label}",
        lead,
        [group_line(t, dashboard) for t in told],
        worst([t.severity for t in told]),
        budget,
        tail=tail,
        tail_heading="Resolved while held",
    )


def _resolved_line(first: Transition, then: Transition) -> tuple[Span, ...]:
    """`wiki: indexing stalled at 02:10 UTC, then indexing moving again at 02:40 UTC`."""
    subject = (f"route {first.route}" if first.route else first.kb_name) or "gradient-watcher"
    opened, closed = f"{first.at:%H:%M} UTC", f"{then.at:%H:%M} UTC"
    text = f"{subject}: {headline(first)} at {opened}, then {headline(then)} at {closed}"
    return (plain(text),)

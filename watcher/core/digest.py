"""Digests: when a route's summary is due, and what it says. Pure: the wall clock is a parameter.

- `DigestSchedule` is a route's `digest = "daily 09:00 Europe/Berlin"` (or weekly, on a
  weekday): wall-clock times in a timezone (a time the DST change skips comes at the change,
  a repeated one the first time). `latest_slot` is the last scheduled instant at or before now.
- `due(schedule, now, mark)`: `mark` is the slot of the last digest recorded (kept in the
  store with it). None when no slot passed since; a `DigestDue` otherwise, covering
  `[mark, slot)`: a watcher down over several slots sends one digest on start, covering all
  of them, never one per missed slot. Without a mark (the first run) the slot is only
  recorded (`send` false): the first digest comes at the next slot, as nothing before the
  first run is news. A mark more than a period ahead of `now` was made while the wall clock
  was stepped far ahead: it is marked again at the last real slot (else no digest for a year).
- `summarize` turns the outcomes recorded in the period (terminal events) and each KB's
  latest job into `Digest`; `digest_text` writes it as the lines a `digest` event carries.
- The digest's "open incidents" are the store's open incidents (`watcher.core.incident`):
  each with its failures in a row, since when, its latest problem, and who acknowledged it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum

from watcher.core.durations import format_elapsed
from watcher.core.incident import Incident
from watcher.core.model import TERMINAL_EVENTS, EventKind
from watcher.core.state import Transition
from watcher.core.windows import first_instant

_ERROR_CHARS = 300


class Period(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """Every day (or every `weekday`, 0 = Monday) at `minute` of the day in `location`."""

    period: Period
    minute: int
    location: tzinfo = UTC
    weekday: int = 0

    def describe(self) -> str:
        day = f" {_WEEKDAYS[self.weekday]}" if self.period is Period.WEEKLY else ""
        clock = f"{self.minute // 60:02d}:{self.minute % 60:02d}"
        return f"{self.period.value}{day} {clock} {self.location}"


_PERIOD = {Period.DAILY: timedelta(days=1, hours=1), Period.WEEKLY: timedelta(days=7, hours=1)}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _slots(schedule: DigestSchedule, now: datetime, days: range) -> Iterator[datetime]:
    """The schedule's instants on the days `days` away from `now`'s (in its zone), in order."""
    today = now.astimezone(schedule.location).date()
    for offset in days:
        day: date = today + timedelta(days=offset)
        if schedule.period is Period.WEEKLY and day.weekday() != schedule.weekday:
            continue
        yield first_instant(day, schedule.minute, schedule.location)


def latest_slot(schedule: DigestSchedule, now: datetime) -> datetime:
    """The last scheduled instant at or before `now` (UTC)."""
    for slot in _slots(schedule, now, range(0, -9, -1)):
        if slot <= now:
            return slot
    raise AssertionError("a schedule has a slot every week")  # pragma: no cover


def next_slot(schedule: DigestSchedule, now: datetime) -> datetime:
    """The first scheduled instant after `now` (UTC): when `due` next has news."""
    for slot in _slots(schedule, now, range(-1, 9)):
        if slot > now:
            return slot
    raise AssertionError("a schedule has a slot every week")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class DigestDue:
    """A digest for `[since, until)` (`until` the slot); `send` false: only record the slot."""

    until: datetime
    since: datetime | None = None
    send: bool = True


def due(schedule: DigestSchedule, now: datetime, mark: datetime | None) -> DigestDue | None:
    """What to do about a route's digest now, given the slot of its last one (see the module)."""
    slot = latest_slot(schedule, now)
    if mark is None or mark > now + _PERIOD[schedule.period]:
        # No mark (the first run), or one further ahead than any slot can be: the wall clock
        # was stepped far ahead when it was made. Mark the last real slot, send nothing.
        return DigestDue(until=slot, send=False)
    if slot <= mark:
        return None
    return DigestDue(until=slot, since=mark)


@dataclass(frozen=True, slots=True)
class KbLatest:
    """A knowledge base and where its latest job stands: its outcome, STALLED, or None
    (running, or nothing known)."""

    kb_uuid: str
    kb_name: str | None
    job_uuid: str | None
    standing: EventKind | None


@dataclass(frozen=True, slots=True)
class KbSummary:
    """One KB's period: its jobs by outcome, failures with their errors, tokens, the slowest."""

    name: str
    outcomes: tuple[tuple[EventKind, int], ...]
    failures: tuple[tuple[str, EventKind, str | None], ...]  # (job, outcome, error)
    tokens: int
    slowest: tuple[str, timedelta] | None


@dataclass(frozen=True, slots=True)
class Digest:
    """What a digest tells, for `[since, until)` on the wall clock."""

    since: datetime | None
    until: datetime
    kbs: tuple[KbSummary, ...]
    incidents: tuple[Incident, ...]  # open when the digest was written, oldest first


def summarize(
    outcomes: Sequence[Transition],
    latest: Sequence[KbLatest],
    since: datetime | None,
    until: datetime,
    incidents: Sequence[Incident] = (),
    knowledge_bases: frozenset[str] = frozenset({"*"}),
) -> Digest:
    """The digest of the terminal events recorded in the period (oldest first), each KB's
    latest job and the incidents open now (closed ones left out), for the route's
    `knowledge_bases` (uuids or names; "*": all). A job counts once, by the last outcome
    recorded for it (an outcome corrected later is not a 2nd job)."""
    last: dict[str, Transition] = {}
    for t in outcomes:
        if t.kind not in TERMINAL_EVENTS or t.kb_uuid is None:
            continue
        if _in_scope(knowledge_bases, t.kb_uuid, t.kb_name):
            last.pop(t.job_uuid or t.event_id, None)
            last[t.job_uuid or t.event_id] = t
    by_kb: dict[str, list[Transition]] = {}
    for t in last.values():
        by_kb.setdefault(t.kb_uuid or "", []).append(t)
    latest = [kb for kb in latest if _in_scope(knowledge_bases, kb.kb_uuid, kb.kb_name)]
    names = {kb.kb_uuid: kb.kb_name for kb in latest}
    kbs = [_kb_summary(names.get(uuid) or ts[-1].kb_name or uuid, ts) for uuid, ts in by_kb.items()]
    named = tuple(
        replace(i, kb_name=i.kb_name or names.get(i.kb_uuid))
        for i in sorted(incidents, key=lambda i: (i.since, i.kb_uuid))
        if i.is_open and _in_scope(knowledge_bases, i.kb_uuid, i.kb_name or names.get(i.kb_uuid))
    )
    return Digest(since, until, tuple(sorted(kbs, key=lambda s: s.name)), named)


def _in_scope(knowledge_bases: frozenset[str], kb_uuid: str, name: str | None) -> bool:
    """Whether a route with these `knowledge_bases` hears of this KB (as `RouteRule.wants`)."""
    return "*" in knowledge_bases or bool({kb_uuid, name} & knowledge_bases)


def _kb_summary(name: str, events: Sequence[Transition]) -> KbSummary:
    counts: dict[EventKind, int] = {}
    failures: list[tuple[str, EventKind, str | None]] = []
    tokens = 0
    slowest: tuple[str, timedelta] | None = None
    for t in events:
        counts[t.kind] = counts.get(t.kind, 0) + 1
        job = t.job
        if job is None:
            continue
        if t.kind in (EventKind.FAILED, EventKind.PARTIAL):
            failures.append((job.uuid, t.kind, t.detail or _job_error(t)))
        tokens += (job.total_tokens if job.total_tokens is not None else job.tokens) or 0
        if job.started_at is not None and job.finished_at is not None:
            took = job.finished_at - job.started_at
            if slowest is None or took > slowest[1]:
                slowest = (job.uuid, took)
    ordered = tuple(sorted(counts.items(), key=lambda kv: -kv[1]))
    return KbSummary(name, ordered, tuple(failures), tokens, slowest)


def _job_error(t: Transition) -> str | None:
    job = t.job
    if job is None:
        return None
    errors = dict.fromkeys(ds.error_msg for ds in job.data_source_jobs if ds.error_msg)
    return "; ".join(errors) or None


def digest_text(digest: Digest, schedule: DigestSchedule) -> str:
    """The digest as lines: a lead line, then one line per fact (see `render` for DIGEST)."""
    zone = schedule.location
    since = f"{digest.since.astimezone(zone):%a %d %b %H:%M}" if digest.since else "the start"
    until = f"{digest.until.astimezone(zone):%a %d %b %H:%M}"
    lines = [f"Indexing digest ({schedule.describe()}): {since} to {until}"]
    if not digest.kbs:
        lines.append("No indexing job finished in this period.")
    for kb in digest.kbs:
        jobs = sum(n for _, n in kb.outcomes)
        tally = ", ".join(f"{n} {kind.value}" for kind, n in kb.outcomes)
        line = f"{kb.name}: {jobs} job{'s' if jobs != 1 else ''} ({tally}); {kb.tokens:,} tokens"
        if kb.slowest is not None:
            line += f"; slowest {format_elapsed(kb.slowest[1])} (job {kb.slowest[0]})"
        lines.append(line)
        for job, kind, error in kb.failures:
            text = (error or "no error given")[:_ERROR_CHARS]
            lines.append(f"{kb.name}: job {job} {kind.value}: {text}")
    lines.extend(_incident_line(i, zone) for i in digest.incidents)
    if not digest.incidents:
        lines.append("Open incidents: none.")
    return "\n".join(lines)


def _incident_line(incident: Incident, zone: tzinfo) -> str:
    """`Open incident: wiki, 3 failures in a row since Tue 01 Dec 06:10 (latest failed);
    acknowledged by ana at Tue 01 Dec 07:00: on it` (or `; not acknowledged`)."""
    who = incident.kb_name or incident.kb_uuid
    n = incident.failures
    since = f"{incident.since.astimezone(zone):%a %d %b %H:%M}"
    line = f"Open incident: {who}, {n} failure{'s' if n != 1 else ''} in a row since {since}"
    line += f" (latest {incident.last_kind.value})"
    ack = incident.ack
    if ack is None:
        return line + "; not acknowledged"
    line += f"; acknowledged by {ack.by} at {ack.at.astimezone(zone):%a %d %b %H:%M}"
    comment = " ".join((ack.comment or "").split())[:_ERROR_CHARS]
    return line + (f": {comment}" if comment else "")


def digest_transition(route: str, due_at: DigestDue, text: str, now: datetime) -> Transition:
    """The `digest` event of `route` for the slot `due_at.until` (its id names both, so
    recording it twice is a no-op)."""
    slot = due_at.until.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    return Transition(
        event_id=f"digest/{route}/{slot}",
        kind=EventKind.DIGEST,
        at=now,
        detail=text,
    )

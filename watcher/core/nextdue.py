"""When a cycle may skip its bookkeeping: what the last full cycle left due, on each clock. Pure.

A *quiet cycle* reads the KB list and stops there (the heartbeat, the log line and the metrics
still follow it). It may, only when a full cycle would find nothing to do: `verdict` says why a
cycle must run in full, or None (quiet). In full when:

- the KB list could not be read (`FAILED`: the API's health is the full cycle's work);
- no full cycle settled yet, or the last one failed or changed anything (`UNSETTLED`: a
  fixed point is only ever reached by a full cycle that found nothing to do);
- the account's KB list is not what that cycle saw (`LISTED`: any item, by value);
- the store was written since that cycle began by anyone but this cycle object (`WRITTEN`:
  another connection's commit, a reopen; a store that cannot tell, PostgreSQL, always);
- the wall clock went back since (`WALL_STEPPED`: the wall deadlines cannot be trusted);
  while a job's deadline for people is held (`Settled.clocked`: `now.wall + left`,
  `watcher.core.detect`, which a full cycle moves with either step), the wall clock stepped
  either way against the elapsed clock by `STEP` or more (`WALL_STEPPED`), or
  DigitalOcean's clock (its `Date` headers) did (`API_STEPPED`);
- the safety net: `SafetyNet.cycles` quiet cycles in a row, or `SafetyNet.every` since the last
  full cycle on the elapsed clock (`SAFETY_NET`: whatever a deadline below misses is late by
  that much at most);
- a deadline came (`DUE`), each on its own clock: stalls' pending and runtime limits and the
  KBs' schedules and freshness on the API's; the no-progress limit, reminders, escalations,
  prices and extra reads on the elapsed clock; silences' ends, digests and the outbox (a
  retry, a quiet-hours release) on the wall clock. A deadline with no moment is a subsystem
  saying it may have work now. An extra read's deadline (`needs_room`) counts only while the
  reads budget has room: without room the full cycle would read nothing either.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from watcher.core.clocks import Elapsed, Instant
from watcher.core.extras import Candidate
from watcher.core.incident import Incident
from watcher.core.model import KnowledgeBase
from watcher.core.reminders import IncidentRule
from watcher.core.state import JobState, Policy


class DueKind(StrEnum):
    """What a deadline belongs to."""

    STALL = "stall"  # pending too long, no progress, running too long
    SCHEDULE = "schedule"  # a KB's awaited run and its freshness window
    REMINDER = "reminder"  # an incident's reminder or escalation
    DIGEST = "digest"
    SILENCE_END = "silence_end"
    OUTBOX = "outbox"  # a row due, retrying, held by quiet hours, or claimed
    DELIVERY = "delivery"  # a route's round still running in the background
    PRICES = "prices"
    REMEDIATION = "remediation"
    EXTRA_READS = "extra_reads"  # the schedules' reads and the reads after the poll


class Full(StrEnum):
    """Why a cycle runs in full (see the module)."""

    FAILED = "failed"  # the KB list could not be read
    UNSETTLED = "unsettled"
    LISTED = "listed"
    WRITTEN = "written"
    WALL_STEPPED = "wall_stepped"
    API_STEPPED = "api_stepped"
    SAFETY_NET = "safety_net"
    DUE = "due"


@dataclass(frozen=True, slots=True)
class Deadline:
    """One moment something is due, on one clock (none: due now, a subsystem may have work)."""

    kind: DueKind
    api: datetime | None = None
    elapsed: Elapsed | None = None
    wall: datetime | None = None
    needs_room: bool = False  # an extra read: due only while the reads budget has room

    def due(self, now: Instant) -> bool:
        """Whether it came at `now` (an elapsed reading of another boot: it did)."""
        if self.api is not None:
            return now.api >= self.api
        if self.elapsed is not None:
            if self.elapsed.boot != now.elapsed.boot:
                return True
            return now.elapsed.seconds >= self.elapsed.seconds
        if self.wall is not None:
            return now.wall >= self.wall
        return True


STEP = timedelta(seconds=2)
"""How far a clock may move against the elapsed clock before it counts as a step: more than
an estimate of the API's clock from whole-second `Date` headers wanders (under a second),
and than `watcher.core.state.changed` lets a job's deadline for people move unwritten."""


@dataclass(frozen=True, slots=True)
class SafetyNet:
    """A full cycle at least every `cycles` cycles and every `every` (elapsed clock)."""

    cycles: int = 20
    every: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Settled:
    """What a full cycle that changed nothing left: the KB list it saw, the store's version
    before it read the store, when it began, and every deadline it knew of."""

    account: tuple[KnowledgeBase, ...]
    version: Hashable
    began: Instant
    deadlines: tuple[Deadline, ...]
    quiet: int = 0  # quiet cycles since
    clocked: bool = False  # a job's deadline for people is held: it moves with a clock's step


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why this cycle runs in full (None: quiet), and which deadline came."""

    full: Full | None
    due: DueKind | None = None


def verdict(
    settled: Settled | None,
    account: Sequence[KnowledgeBase],
    version: Hashable | None,
    now: Instant,
    *,
    room: bool,
    net: SafetyNet = SafetyNet(),
) -> Verdict:
    """Whether this cycle may be quiet (see the module); `version` the store's now (None: it
    cannot tell), `room` whether the reads budget has room for one extra read."""
    if settled is None:
        return Verdict(Full.UNSETTLED)
    # a tuple compares item by item, and stops at identity: the client hands back the very
    # objects of a page whose bytes did not change
    if tuple(account) != settled.account:
        return Verdict(Full.LISTED)
    if version is None or version != settled.version:
        return Verdict(Full.WRITTEN)
    if now.wall < settled.began.wall:
        return Verdict(Full.WALL_STEPPED)
    if settled.clocked and (stepped := _stepped(settled.began, now)) is not None:
        return Verdict(stepped)
    if settled.quiet + 1 >= net.cycles or _since(settled.began.elapsed, now) >= net.every:
        return Verdict(Full.SAFETY_NET)
    for deadline in settled.deadlines:
        if deadline.due(now) and (room or not deadline.needs_room):
            return Verdict(Full.DUE, deadline.kind)
    return Verdict(None)


def _stepped(began: Instant, now: Instant) -> Full | None:
    """Whether the wall clock or the API's stepped against the elapsed clock since `began`
    (an elapsed reading of another boot: the safety net's, nothing can be compared)."""
    waited = now.elapsed.since(began.elapsed)
    if waited is None:
        return None
    if abs(now.wall - began.wall - waited) >= STEP:
        return Full.WALL_STEPPED
    if abs(now.api - began.api - waited) >= STEP:
        return Full.API_STEPPED
    return None


def _since(began: Elapsed, now: Instant) -> timedelta:
    waited = now.elapsed.since(began)
    return timedelta.max if waited is None else waited


def stall_deadlines(state: JobState, policy: Policy) -> tuple[Deadline, ...]:
    """When each stall rule would fire for this job (`watcher.core.stall.stall_due`'s rules,
    each on its clock: pending and runtime on the API's from its timestamps, else on the
    watcher's sightings; no progress on the sightings, always); none once done or stalled."""
    job = state.job
    if state.done or job.is_terminal or state.stalled is not None:
        return ()
    sighting = state.sighting
    if sighting is None:  # re-seeded by the next full cycle
        return (Deadline(DueKind.STALL),)
    if job.is_pending:
        return (_limit(job.created_at, sighting.first, policy.pending_after),)
    if job.is_running:
        return (
            Deadline(DueKind.STALL, elapsed=_after(sighting.moved, policy.no_progress_after)),
            _limit(job.started_at or job.created_at, sighting.first, policy.max_runtime),
        )
    return ()


def _limit(since: datetime | None, first: Elapsed, limit: timedelta) -> Deadline:
    if since is None:
        return Deadline(DueKind.STALL, elapsed=_after(first, limit))
    return Deadline(DueKind.STALL, api=since + limit)


def _after(reading: Elapsed, delta: timedelta) -> Elapsed:
    return reading.minus(-delta)


def reminder_deadlines(
    incidents: Iterable[Incident], rules: Mapping[str, IncidentRule]
) -> tuple[Deadline, ...]:
    """When each open, unacknowledged incident's next reminder or escalation is due
    (`watcher.core.reminders.nudge`'s rules, on the elapsed clock)."""
    found = []
    for incident in incidents:
        if not incident.is_open or incident.ack is not None:
            continue
        for notice in incident.notices:
            rule = rules.get(notice.route)
            if rule is None:
                continue
            if rule.repeat_after is not None:
                found.append(_on(DueKind.REMINDER, notice.last, rule.repeat_after))
            if rule.escalate_after is not None and rule.escalate_to and not notice.escalated:
                found.append(_on(DueKind.REMINDER, notice.first, rule.escalate_after))
    return tuple(found)


def _on(kind: DueKind, since: Elapsed, period: timedelta) -> Deadline:
    return Deadline(kind, elapsed=_after(since, period))


def reads_deadline(
    candidates: Iterable[Candidate], now: Elapsed, *, needs_room: bool
) -> tuple[Deadline, ...]:
    """When the first of these extra reads comes due (one never made, or triggered: now;
    `watcher.core.extras.Candidate.overdue_s`), on the elapsed clock of `now`'s boot."""
    first: float | None = None
    for c in candidates:
        at = -math.inf if c.last_s is None or c.triggered else c.last_s
        at += c.spec.every.total_seconds()
        first = at if first is None else min(first, at)
    if first is None:
        return ()
    return (Deadline(DueKind.EXTRA_READS, elapsed=Elapsed(first, now.boot), needs_room=needs_room),)

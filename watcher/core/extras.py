"""Extra reads inside the budget: which reads beyond the polling are due this cycle. Pure.

Polling (the KB list, job lists, followed jobs, failed jobs' details) is what the watcher
exists for; every other read (a KB's data sources, its database health, the agents that use
it, its schedule, the models' prices, a finished job's per-file report) is an *extra read*.
Extra reads share the token's budget with the polling and never delay it:

- **A share of the watcher's own ceiling**: at most `share` (default 10 %) of
  `api.max_requests_per_minute` × 60 requests an hour (`share_per_hour`), counted over the
  sliding hour by the edge (the requests each extra read really sent, retries included).
- **Spread over the hour**: a token bucket refills at `share_per_hour / 3600` a second and
  holds at most `BURST_MINUTES` minutes' worth, so an hour's share is never spent in one go.
- **First to go when the budget is tight**: no extra read while the API says the token runs
  low (`tight`), nor beyond what the polls of a minute at the fastest pace leave of the
  client's ceiling (`ceiling - minute_polls - extra_minute`; before the pace is known, the
  room beyond the next poll's cost, `minute_left - poll_cost`): a read made now stays in the
  client's sliding minute for 60 s, and the polls due meanwhile must find their room there.
  Judged by the next poll alone, a burst of extra reads after a cheap first poll (120 data
  sources at 10,000 KBs) filled the minute, and a later poll waited 33 s for them to age out;
  and once the polls took most of the minute, no extra read ever fitted beside the next one.
  Of what the polls leave, the share's reads take at most half: the other half is kept for the
  reports of finished jobs and the prices (`Room.share_room`).
  When fewer are allowed than are due, the most urgent go first: a read never made (or
  triggered) before any other, by `Priority`; the others by priority × (1 + overdue /
  cadence), so a low-priority read that waited many cadences is made before a high one just
  due (none starves when the share cannot keep every cadence).

Not every extra read is charged alike (`Charge`, decided by `admit`): the model prices are a
small floor outside the share (two requests an hour, also when the share is 0), and a
finished job's report is charged to the share but not bounded by it (an alert is waiting for
it); both still wait while the budget is tight or the minute has no room beyond the polls.

A read is *due* when it was never made (in this boot), when its `every` has passed since the
last one, or when its trigger fired (`Candidate.triggered`: a KB's data sources are read
again when a new job starts). Cadences are measured on the elapsed clock (seconds, one boot).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import IntEnum, StrEnum
from typing import NamedTuple, TypeAlias

from watcher.core.clocks import Elapsed

DEFAULT_SHARE = 0.10
"""The default share of the watcher's own hourly ceiling that extra reads may spend."""

SCHEDULE_READS_PER_CYCLE = 20
"""Without a budget (a cycle built with no `extras` settings): at most this many schedules."""

BURST_MINUTES = 5.0
"""The token bucket holds at most this many minutes' worth of the hourly share."""


class Priority(IntEnum):
    """Which extra reads go first when fewer are allowed than are due (HIGH first)."""

    LOW = 1
    NORMAL = 2
    HIGH = 3


class Scope(StrEnum):
    """What one extra read is about: its targets come from the shell per scope."""

    ACCOUNT = "account"  # one target, "" (an account-wide list)
    KB = "kb"  # each watched knowledge base's uuid
    AGENT = "agent"  # each agent the account's agent list named


class Charge(StrEnum):
    """How one kind of extra read is charged (`admit`)."""

    SHARE = "share"  # within the share: data sources, database, agents, schedules
    FLOOR = "floor"  # a small floor outside the share (model prices): also at share 0
    REPORT = "report"  # charged to the share, not bounded by it (a report an alert waits for)


class PlanReason(StrEnum):
    """Why a plan holds what it holds (logged, and in the bench's figures)."""

    NONE_DUE = "none_due"  # nothing is due
    ALL_DUE = "all_due"  # everything due fits
    SHARE_SPENT = "share_spent"  # the hourly share or the bucket holds fewer than are due
    TIGHT = "tight"  # the API says the token runs low: no extra read at all
    MINUTE_FULL = "minute_full"  # the sliding minute has no room beyond the polls


@dataclass(frozen=True, slots=True)
class ReadSpec:
    """One kind of extra read, as registered (`watcher.service.extras.REGISTRY`).

    `every` is its cadence, `cost` the requests one read takes (a paged list: its pages as
    last seen, at least 1), `on_new_job` re-reads a KB's value when a new job starts.
    """

    name: str
    scope: Scope
    every: timedelta
    priority: Priority = Priority.NORMAL
    cost: int = 1
    on_new_job: bool = False


class Candidate(NamedTuple):
    """One extra read that could run: its spec, its target, when it last ran (elapsed
    seconds of this boot, None when never), whether its trigger fired, and its cost now.

    A named tuple rather than a frozen dataclass: a cycle makes one per read and target (a
    few thousand at 1,000 KBs), and a tuple is made in a third of the time."""

    spec: ReadSpec
    target: str
    last_s: float | None = None
    triggered: bool = False
    cost: int | None = None  # None: the spec's

    @property
    def requests(self) -> int:
        return max(1, self.cost if self.cost is not None else self.spec.cost)

    def overdue_s(self, now_s: float) -> float | None:
        """Seconds past due (infinite when never read or triggered), None when not due."""
        if self.last_s is None or self.triggered:
            return math.inf
        late = now_s - self.last_s - self.spec.every.total_seconds()
        return late if late >= 0 else None


@dataclass(frozen=True, slots=True)
class Bucket:
    """The token bucket that spreads the share over the hour: `tokens` at elapsed `at_s`."""

    tokens: float = 0.0
    at_s: float | None = None

    def refilled(self, now_s: float, per_hour: int) -> Bucket:
        """The bucket at `now_s`: refilled at `per_hour / 3600` a second, capped at
        `BURST_MINUTES` minutes' worth (a fresh bucket starts full)."""
        cap = per_hour * BURST_MINUTES / 60
        if self.at_s is None:
            return Bucket(cap, now_s)
        gained = max(0.0, now_s - self.at_s) * per_hour / 3600
        return Bucket(min(cap, self.tokens + gained), now_s)


def spent_bucket(charged: Iterable[tuple[float, int]], since_s: float, per_hour: int) -> Bucket:
    """The bucket after `charged` ((elapsed s, requests), oldest first), had it been full at
    `since_s`: what a process that goes on from another's spent hour starts with, so that a
    new process (`watcher once` from cron, a reload) does not get a fresh burst each time."""
    bucket = Bucket().refilled(since_s, per_hour)
    for at_s, n in charged:
        bucket = bucket.refilled(max(at_s, since_s), per_hour)
        bucket = Bucket(bucket.tokens - n, bucket.at_s)
    return bucket


@dataclass(frozen=True, slots=True)
class Room:
    """What the budget leaves for extra reads at this moment (measured by the edge).

    `per_hour` the share (`share_per_hour`); `spent_hour` what extra reads sent in the last
    sliding hour; `minute_left` the client's room in its sliding minute; `poll_cost` the
    requests the last poll cycle took (kept free for the next one); `tight` the API's
    `ratelimit-remaining` is under the configured reserve. `ceiling` is the client's own
    requests per minute (`api.max_requests_per_minute`; None for a budget built without it or
    without the fastest pace, as some tests build it), `minute_polls` what the polls of one
    minute may send, and
    `extra_minute` what every extra read (the prices' floor too) sent in the last 60 s.
    `minute_polls` counts as many polls as the fastest pace may hold in a minute (the pace can
    quicken at any cycle: a job starts).
    """

    per_hour: int
    spent_hour: int = 0
    minute_left: int = 1_000_000
    poll_cost: int = 0
    tight: bool = False
    ceiling: int | None = None
    minute_polls: int = 0
    extra_minute: int = 0

    def minute_room(self) -> int:
        """Requests extra reads may send now without taking a poll's room in the client's
        sliding minute. With the pace known: what the minute's polls leave, less what extra
        reads sent in the last 60 s (then no 60 s ever holds more than the ceiling: polls at
        most `minute_polls`, extra reads at most the rest); without it, the room beyond the
        next poll's cost."""
        if self.ceiling is None:
            return self.minute_left - self.poll_cost
        return min(self.ceiling - self.minute_polls - self.extra_minute, self.minute_left)

    def share_room(self) -> int:
        """What the share's reads (data sources, databases, agents, schedules) may send now:
        `minute_room` less the half of what the minute's polls leave that is kept for the
        reports of finished jobs (an alert waits for each) and the prices' floor. Without it,
        at 10,000 KBs the share's reads after each poll took the minute and no report was
        ever kept. All of `minute_room` while the pace is not known."""
        if self.ceiling is None:
            return self.minute_room()
        left = max(self.ceiling - self.minute_polls, 0)
        return self.minute_room() - (left - left // 2)


@dataclass(frozen=True, slots=True)
class ExtraPlan:
    """The reads to make this cycle (in order), the bucket after them, and why."""

    reads: tuple[Candidate, ...]
    bucket: Bucket
    reason: PlanReason
    waiting: int = 0  # due reads left for a later cycle


def share_per_hour(max_requests_per_minute: int, share: float = DEFAULT_SHARE) -> int:
    """The extra reads' hourly share: `share` of the watcher's ceiling (`per_minute` × 60)."""
    return max(0, math.floor(max_requests_per_minute * 60 * share))


def due(candidates: Sequence[Candidate], now_s: float) -> list[Candidate]:
    """The due candidates in the order they go: the most urgent first (see the module)."""
    return [c for _, c in sorted(_ready(candidates, now_s), key=_first)]


_Ready: TypeAlias = tuple[tuple[float, int, float], Candidate]


def _first(pair: _Ready) -> tuple[float, int, float]:
    return pair[0]


def _ready(candidates: Sequence[Candidate], now_s: float) -> list[_Ready]:
    """The due candidates, unordered, each with its sort key: the most urgent first, then the
    higher priority, then the longer overdue (urgency = priority × (1 + overdue / every))."""
    out = []
    for c in candidates:
        overdue = c.overdue_s(now_s)
        if overdue is not None:
            spec = c.spec
            urgency = spec.priority * (1 + overdue / max(spec.every.total_seconds(), 1.0))
            out.append(((-urgency, -spec.priority, -overdue), c))
    return out


def plan(candidates: Sequence[Candidate], room: Room, bucket: Bucket, now_s: float) -> ExtraPlan:
    """The extra reads to make now, within the share, the bucket and the minute's room.

    Only the reads that can fit are put in order: each costs at least one request, so the
    choice (the longest prefix of the whole order that fits) lies within the `allowance` most
    urgent (a cycle with thousands due and room for two orders two, not thousands)."""
    bucket = bucket.refilled(now_s, room.per_hour)
    keyed = _ready(candidates, now_s)
    if not keyed:
        return ExtraPlan((), bucket, PlanReason.NONE_DUE)
    if room.tight:
        return ExtraPlan((), bucket, PlanReason.TIGHT, len(keyed))
    minute = room.share_room()
    allowance = min(bucket.tokens, room.per_hour - room.spent_hour, minute)
    reach = max(0, math.floor(allowance))
    ready = [c for _, c in heapq.nsmallest(reach, keyed, key=_first)]
    chosen: list[Candidate] = []
    for candidate in ready:
        if candidate.requests > allowance:
            break  # never let a cheaper, less important read overtake one that waits
        chosen.append(candidate)
        allowance -= candidate.requests
    spent = sum(c.requests for c in chosen)
    after = replace(bucket, tokens=bucket.tokens - spent)
    waiting = len(keyed) - len(chosen)
    if not waiting:
        return ExtraPlan(tuple(chosen), after, PlanReason.ALL_DUE)
    blocked = minute < min(bucket.tokens, room.per_hour - room.spent_hour)
    reason = PlanReason.MINUTE_FULL if blocked else PlanReason.SHARE_SPENT
    return ExtraPlan(tuple(chosen), after, reason, waiting)


def admit(charge: Charge, cost: int, room: Room, bucket: Bucket) -> PlanReason:
    """Whether one read of `cost` requests may go now: `ALL_DUE` when it may, else why it
    waits. Every read waits while the budget is tight and when the sliding minute has no room
    for it beyond the polls' (`Room.minute_room`); a `SHARE` read also leaves the reports their
    half of it (`Room.share_room`) and needs the share and the bucket (as refilled now)."""
    if room.tight:
        return PlanReason.TIGHT
    minute = room.share_room() if charge is Charge.SHARE else room.minute_room()
    if minute < cost:
        return PlanReason.MINUTE_FULL
    if charge is Charge.SHARE and min(bucket.tokens, room.per_hour - room.spent_hour) < cost:
        return PlanReason.SHARE_SPENT
    return PlanReason.ALL_DUE


def targets_of(chosen: ExtraPlan, name: str) -> tuple[str, ...]:
    """The targets of the read `name` among a plan's reads, in the plan's order (for the
    reads another step makes, such as the schedules the cycle reads before it judges)."""
    return tuple(c.target for c in chosen.reads if c.spec.name == name)


def schedule_reads_due(
    kb_uuids: Sequence[str],
    last_read: Mapping[str, Elapsed],
    now: Elapsed,
    every: timedelta = timedelta(hours=1),
    limit: int = SCHEDULE_READS_PER_CYCLE,
) -> tuple[str, ...]:
    """The KBs whose schedule to read now when no budget plans them: never read by this
    process (or on another boot), or last read `every` ago or more (the elapsed clock); never
    read ones first, then the oldest reads; at most `limit`. With a budget, the schedules are
    candidates of `plan` like any read of the share (`schedule_candidates`, `targets_of`)."""
    due: list[tuple[float, str]] = []
    for uuid in kb_uuids:
        before = last_read.get(uuid)
        age = now.since(before) if before is not None else None
        if age is None:
            due.append((float("-inf"), uuid))
        elif age >= every:
            due.append((-age.total_seconds(), uuid))
    due.sort()
    return tuple(uuid for _, uuid in due[: max(limit, 0)])


def schedule_candidates(
    spec: ReadSpec, kb_uuids: Sequence[str], last_read: Mapping[str, Elapsed], now: Elapsed
) -> list[Candidate]:
    """One candidate per KB for the schedule read `spec`: its last read on this boot's
    elapsed clock (a read of another boot counts as never made)."""
    out = []
    for uuid in kb_uuids:
        before = last_read.get(uuid)
        since = now.since(before) if before is not None else None
        last_s = None if since is None else now.seconds - since.total_seconds()
        out.append(Candidate(spec, uuid, last_s))
    return out

"""One token's budget for every read beyond the polling: what it allows, what it spent.

`ReadsBudget` holds the token bucket and the sliding hour of requests the extra reads sent
(on the elapsed clock of this boot), and the poll's own cost (kept free for the next cycle).
The decisions are pure (`watcher.core.extras`: `plan` for the reads that compete for the
share, `admit` for one read); this object measures what the edge says (`requests_sent`, the
last `ratelimit-remaining`, the client's room in its sliding minute) and counts, by kind,
what each read really sent (`measure`: retries and pages included).

One budget serves the whole cycle: the schedules read before it judges
(`watcher.service.kbwatch`), the reports of finished jobs, the models' prices
(`watcher.service.costs`) and the reads after the poll (`watcher.service.extrarun`).

What it spent survives the process: the charged requests of the last hour are kept in the
store's meta (`spent_key`, one value per token lease), per minute of DigitalOcean's clock
(the budget is its hourly rate limit; the elapsed clock of this boot does not outlive the
process). `dump` writes them at the end of a cycle, `restore` reads them back on a new
process's (or a reloaded cycle's) first cycle: the sliding hour goes on from there and the
bucket is what it would be had one process spent them (`watcher.core.extras.spent_bucket`).
So `watcher once` from cron, or a SIGHUP reload, spends no more than the share.
"""

from __future__ import annotations

import json
import math
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Protocol

import structlog

from watcher.core.clocks import Elapsed
from watcher.core.extras import (
    Bucket,
    Candidate,
    Charge,
    ExtraPlan,
    PlanReason,
    Room,
    admit,
    plan,
    spent_bucket,
)
from watcher.core.model import RateLimit
from watcher.core.pace import budget_floor

log = structlog.get_logger(__name__)

HOUR_S = 3600.0
MINUTE_S = 60.0
PRICES, REPORT, SCHEDULE = "prices", "report", "schedule"
"""The kinds of extra read the cycle makes outside the registry (`watcher.service.extras`)."""
CHARGES = {PRICES: Charge.FLOOR, REPORT: Charge.REPORT}
"""How each kind is charged; any other kind (schedule, the registry's reads) is `SHARE`."""
SPENT_KEY = "extra_reads_spent"
"""The meta key of the spent hour of the store's own lease (SQLite, or no token)."""


def spent_key(lease: str) -> str:
    """The meta key of what the budget of the token whose poller lease is `lease` spent
    (`SqliteStore.lease_name`: "store", or PostgreSQL's `token:<fingerprint>`)."""
    return SPENT_KEY if lease in ("", "store") else f"{SPENT_KEY}:{lease}"


def encode_spent(minutes: dict[int, int]) -> str:
    """`{"v": 1, "minutes": [[minute, requests], ...]}`: minutes since the epoch of the API's
    clock, oldest first."""
    return json.dumps({"v": 1, "minutes": sorted(minutes.items())}, separators=(",", ":"))


def decode_spent(text: str) -> dict[int, int]:
    """The minutes of `encode_spent`; ValueError when `text` is not such a value."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or value.get("v") != 1:
        raise ValueError("not a version 1 object")
    pairs = value.get("minutes")
    if not isinstance(pairs, list):
        raise ValueError("no list of minutes")
    found: dict[int, int] = {}
    for pair in pairs:
        ok = isinstance(pair, list) and len(pair) == 2
        if not ok or not all(type(n) is int and n >= 0 for n in pair):
            raise ValueError(f"not a [minute, requests] pair: {pair!r}")
        found[pair[0]] = found.get(pair[0], 0) + pair[1]
    return found


class Gauge(Protocol):
    """What the edge measures of the budget (`watcher.edges.api.client.ApiClient`)."""

    @property
    def requests_sent(self) -> int: ...

    @property
    def rate_limit(self) -> RateLimit | None: ...

    def minute_left(self) -> int: ...


class ReadsBudget:
    """The extra reads' share of one token's hourly budget (`per_hour` requests; none while
    `ratelimit-remaining` is under `reserve`). `ceiling`: the client's own requests per
    minute, and `fastest`: the shortest interval the pace may take (`poll.active_interval`,
    seconds); with both, the extra reads leave room for every poll a minute may hold
    (`Room.minute_room`), whatever the pace becomes meanwhile."""

    def __init__(
        self,
        gauge: Gauge,
        per_hour: int,
        reserve: int = 500,
        ceiling: int | None = None,
        fastest: float | None = None,
    ) -> None:
        self.gauge, self.per_hour, self.reserve = gauge, per_hour, reserve
        self.ceiling, self.fastest = ceiling, fastest
        self.bucket = Bucket()
        self.spent: deque[tuple[float, int]] = deque()  # (elapsed s, requests) charged
        self.minute: deque[tuple[float, int]] = deque()  # (elapsed s, requests) every kind
        self.by_kind: Counter[str] = Counter()  # requests sent by each kind, this boot
        self.measured = 0  # every request measured, whatever its kind
        # what the last poll took, or the next may take if more (`reads.next_poll_cost`):
        # kept free for the polls
        self.poll_cost = 0
        self.last_wait: dict[str, PlanReason] = {}  # why each kind last waited
        self.restored = False  # whether the stored hour was read (`restore`)
        self.kept: str | None = None  # the stored hour as last read or written

    def spent_hour(self, now: Elapsed) -> int:
        """Requests charged to the share in the last sliding hour."""
        while self.spent and self.spent[0][0] <= now.seconds - HOUR_S:
            self.spent.popleft()
        return sum(n for _, n in self.spent)

    def room(self, now: Elapsed) -> Room:
        """What the budget leaves for extra reads now (the bucket refilled to `now`)."""
        self.bucket = self.bucket.refilled(now.seconds, self.per_hour)
        rate = self.gauge.rate_limit
        remaining = rate.remaining if rate is not None else None
        return Room(
            per_hour=self.per_hour,
            spent_hour=self.spent_hour(now),
            minute_left=self.gauge.minute_left(),
            poll_cost=self.poll_cost,
            tight=remaining is not None and remaining < self.reserve,
            ceiling=self.ceiling if self.fastest is not None else None,
            minute_polls=self.minute_polls(),
            extra_minute=self.extra_minute(now),
        )

    def minute_polls(self) -> int:
        """The most requests the polls of one minute may send: as many polls as the fastest
        pace allows (`poll.active_interval`, or the budget's floor for the last poll's cost,
        `watcher.core.pace.budget_floor`, whichever is longer) times that cost."""
        if self.ceiling is None or self.fastest is None or not self.poll_cost:
            return 0
        floor = budget_floor(self.ceiling, self.poll_cost).total_seconds()
        every = max(self.fastest, floor, 1e-3)
        return math.ceil(MINUTE_S / every) * self.poll_cost

    def extra_minute(self, now: Elapsed) -> int:
        """Requests every extra read sent in the last 60 s (the prices' floor included)."""
        while self.minute and self.minute[0][0] <= now.seconds - MINUTE_S:
            self.minute.popleft()
        return sum(n for _, n in self.minute)

    def plan(self, candidates: Sequence[Candidate], now: Elapsed) -> ExtraPlan:
        """The reads of the share to make now (`watcher.core.extras.plan`); the bucket is
        charged by `measure`, with what each read really sent."""
        return plan(candidates, self.room(now), self.bucket, now.seconds)

    def blocked(self, now: Elapsed) -> PlanReason | None:
        """Why no read of the share can go now, not even one of one request (tight, the
        minute full, the share or the bucket spent), or None when one can. A blocked cycle
        needs no plan: its candidates (thousands at 1,000 KBs) need not even be made."""
        reason = admit(Charge.SHARE, 1, self.room(now), self.bucket)
        return None if reason is PlanReason.ALL_DUE else reason

    def allowed(self, kind: str, now: Elapsed, cost: int = 1) -> bool:
        """Whether one read of `kind` (of `cost` requests) may go now (`admit`)."""
        room = self.room(now)
        reason = admit(CHARGES.get(kind, Charge.SHARE), cost, room, self.bucket)
        if reason is not PlanReason.ALL_DUE:
            self.last_wait[kind] = reason
        return reason is PlanReason.ALL_DUE

    @contextmanager
    def measure(self, kind: str, now: Elapsed) -> Iterator[None]:
        """Count the requests sent inside the block as one read of `kind` (also when it
        raises): charged to the share and the bucket but for the prices' floor."""
        before = self.gauge.requests_sent
        try:
            yield
        finally:
            sent = self.gauge.requests_sent - before
            self.by_kind[kind] += sent
            self.measured += sent
            if sent:
                self.minute.append((now.seconds, sent))
            if CHARGES.get(kind, Charge.SHARE) is not Charge.FLOOR and sent:
                self.spent.append((now.seconds, sent))
                self.bucket = replace(self.bucket, tokens=self.bucket.tokens - sent)

    def restore(self, stored: str | None, api_now: datetime, now: Elapsed) -> None:
        """Go on from the hour another process (or the cycle a reload replaced) spent:
        `stored` (`encode_spent`, per minute of the API's clock) read at `api_now` (the API's
        clock) and `now` (elapsed, the same moment). A malformed value, or the minutes after
        `api_now`, are ignored with a warning: the budget then starts as if fresh."""
        self.restored = True
        if stored is None:
            return
        try:
            minutes = decode_spent(stored)
        except ValueError as exc:
            log.warning("extra_reads_spent_ignored", reason=f"malformed: {exc}")
            return
        self.kept = stored
        at = api_now.timestamp()
        future = [m for m in minutes if m * 60 > at]
        if future:
            log.warning(
                "extra_reads_spent_ignored",
                reason="dated after the API's clock",
                minutes=len(future),
                api_now=api_now.isoformat(),
            )
        charged: list[tuple[float, int]] = []
        for minute, n in sorted(minutes.items()):
            ago = at - min(minute * 60 + 59, at)  # its latest second: never expired too soon
            if minute * 60 <= at and ago < HOUR_S and n > 0:
                charged.append((now.seconds - ago, n))
        if not charged:
            return
        self.spent = deque(sorted([*charged, *self.spent]))
        self.bucket = spent_bucket(self.spent, now.seconds - HOUR_S, self.per_hour)

    def unsaved(self, api_now: datetime, now: Elapsed) -> str | None:
        """What to store now (`dump`) when it differs from what was last read or written;
        None when nothing changed, or before `restore` (the API's clock not known yet)."""
        if not self.restored:
            return None
        text = self.dump(api_now, now)
        if text == self.kept:
            return None
        self.kept = text
        return text

    def dump(self, api_now: datetime, now: Elapsed) -> str:
        """The charged requests of the last hour, per minute of the API's clock (`api_now`
        and `now` are the same moment on the API's and the elapsed clocks)."""
        self.spent_hour(now)  # drop what left the hour
        at = api_now.timestamp()
        minutes: dict[int, int] = {}
        for seconds, n in self.spent:
            minute = int((at - (now.seconds - seconds)) // 60)
            minutes[minute] = minutes.get(minute, 0) + n
        return encode_spent(minutes)

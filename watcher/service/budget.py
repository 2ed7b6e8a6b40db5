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
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Protocol

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
)
from watcher.core.model import RateLimit

HOUR_S = 3600.0
PRICES, REPORT, SCHEDULE = "prices", "report", "schedule"
"""The kinds of extra read the cycle makes outside the registry (`watcher.service.extras`)."""
CHARGES = {PRICES: Charge.FLOOR, REPORT: Charge.REPORT}
"""How each kind is charged; any other kind (schedule, the registry's reads) is `SHARE`."""


class Gauge(Protocol):
    """What the edge measures of the budget (`watcher.edges.api.client.ApiClient`)."""

    @property
    def requests_sent(self) -> int: ...

    @property
    def rate_limit(self) -> RateLimit | None: ...

    def minute_left(self) -> int: ...


class ReadsBudget:
    """The extra reads' share of one token's hourly budget (`per_hour` requests; none while
    `ratelimit-remaining` is under `reserve`)."""

    def __init__(self, gauge: Gauge, per_hour: int, reserve: int = 500) -> None:
        self.gauge, self.per_hour, self.reserve = gauge, per_hour, reserve
        self.bucket = Bucket()
        self.spent: deque[tuple[float, int]] = deque()  # (elapsed s, requests) charged
        self.by_kind: Counter[str] = Counter()  # requests sent by each kind, this boot
        self.measured = 0  # every request measured, whatever its kind
        self.poll_cost = 0  # what the last poll took: kept free for the next one
        self.last_wait: dict[str, PlanReason] = {}  # why each kind last waited

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
        )

    def plan(self, candidates: Sequence[Candidate], now: Elapsed) -> ExtraPlan:
        """The reads of the share to make now (`watcher.core.extras.plan`); the bucket is
        charged by `measure`, with what each read really sent."""
        return plan(candidates, self.room(now), self.bucket, now.seconds)

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
            if CHARGES.get(kind, Charge.SHARE) is not Charge.FLOOR and sent:
                self.spent.append((now.seconds, sent))
                self.bucket = replace(self.bucket, tokens=self.bucket.tokens - sent)

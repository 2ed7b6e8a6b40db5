"""Who may poll and write a store: a lease with a holder and a fencing epoch. Pure.

One process at a time polls the API and records what it saw into a store (a daemon, or
`watcher once`): it holds the store's lease. The lease is a row in the store itself (holder,
epoch, expiry on one clock), never a side file, so deleting a file beside the store changes
nothing. Every write of the holder checks, in the same transaction, that the row still
carries its epoch (fencing): once another process took the lease over, a paused old holder
that wakes up finds its writes refused. (This is not the per-row claim lease of the outbox.)

`decide` is the whole rule, the same for every store:

- nobody holds it (never held, or released) → ACQUIRE, epoch + 1;
- it is mine (my holder id and the epoch I hold) → RENEW, same epoch;
- I held it, but the row now carries another epoch or holder → STAND_BY (SUPERSEDED): I lost it;
- another holder, provably gone (`Liveness.GONE`) → ACQUIRE, epoch + 1 (HOLDER_GONE);
- another holder, provably still running → STAND_BY, even when its expiry passed: a process
  that still runs on this host is never taken over (HOLDER_RUNNING);
- the expiry was taken on another clock, or lies further ahead than its duration (the clock
  was reset: a reboot) → ACQUIRE (OTHER_CLOCK);
- expired on the same clock → ACQUIRE (EXPIRED); else STAND_BY (HELD).

The clock: expiry and `now` are seconds on one clock that every contender reads, named by
`LeaseTime.clock`. The SQLite store runs on one host, so its lease clock is that host's
boot-time clock (monotonic, counts suspend, never stepped), named by the kernel's boot id:
after a reboot no holder can still run, and the new boot's readings are another clock. A
store shared by several hosts (PostgreSQL) uses the database server's clock instead. Never the
wall clock: an NTP step would hand the lease to a second process or hold it forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

RENEW_EVERY: Final = 1 / 3
"""A holder renews after this fraction of the lease duration (two renewals may fail)."""
STANDBY_EVERY: Final = 1 / 15
"""A process standing by looks again after this fraction (2 s of a 30 s lease), or at expiry."""
_SOONEST: Final = 0.05


@dataclass(frozen=True, slots=True)
class LeaseTime:
    """A reading of the lease clock: `seconds` on the clock named `clock`."""

    clock: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Holder:
    """A process that holds or asks for a lease, and what tells whether it still runs.

    `id` is unique per process run. `boot`, `pid_ns` and `start` (the process's start time in
    clock ticks since boot, `/proc/PID/stat` field 22) let another process on the same host
    prove that this one is gone; empty or 0 when unknown. `since` is wall-clock text, for people.
    """

    id: str
    command: str
    host: str
    pid: int
    since: str
    boot: str = ""
    pid_ns: str = ""
    start: int = 0

    def describe(self) -> str:
        """`watcher run (pid 1234 on web-1, started 2026-11-28T12:00:03Z)`."""
        return f"{self.command} (pid {self.pid} on {self.host}, started {self.since})"


@dataclass(frozen=True, slots=True)
class Lease:
    """The lease row: its holder (None once released), epoch, and expiry on `clock`.

    `duration` is the holder's own lease duration in seconds: a remaining time longer than
    that cannot have been written on this clock.
    """

    holder: Holder | None
    epoch: int
    clock: str
    expires: float
    duration: float


class Liveness(StrEnum):
    """What a store can prove about the process named in the lease row."""

    RUNNING = "running"  # same host and boot, its pid runs with the same start time
    GONE = "gone"  # same host and boot, and no such process any more
    UNKNOWN = "unknown"  # another host, pid namespace or boot, or nothing to look at


class LeaseAction(StrEnum):
    ACQUIRE = "acquire"  # write this process as holder with a new epoch
    RENEW = "renew"  # push the expiry of the lease this process holds
    STAND_BY = "stand_by"  # write nothing; look again after `recheck_in`


class LeaseReason(StrEnum):
    """Why `decide` chose its action (logged, shown by `status`, asserted by tests)."""

    VACANT = "vacant"  # never held
    RELEASED = "released"  # its holder let it go when it stopped
    EXPIRED = "expired"  # its holder stopped renewing it
    HOLDER_GONE = "holder_gone"  # its holder's process no longer exists
    OTHER_CLOCK = "other_clock"  # its expiry was taken on another clock (another boot)
    MINE = "mine"  # this process holds it
    HELD = "held"  # another process holds it and renews it
    HOLDER_RUNNING = "holder_running"  # expired, but its holder still runs on this host
    SUPERSEDED = "superseded"  # this process held it; another one took it over


@dataclass(frozen=True, slots=True)
class LeaseDecision:
    """What to do with the lease, why, and the row's values once done.

    `epoch` and `expires` are what the row holds after the action (for STAND_BY: as found);
    `holder` is who holds it then; `recheck_in` is seconds until the next step.
    """

    action: LeaseAction
    reason: LeaseReason
    epoch: int
    expires: float
    holder: Holder | None
    recheck_in: float

    @property
    def held(self) -> bool:
        """Whether this process holds the lease once the decision is applied."""
        return self.action is not LeaseAction.STAND_BY


def decide(
    lease: Lease | None,
    *,
    me: Holder,
    held: int | None,
    now: LeaseTime,
    duration: float,
    liveness: Liveness = Liveness.UNKNOWN,
) -> LeaseDecision:
    """The next step for `me`, which believes it holds epoch `held` (None: holds nothing).

    `liveness` is what the store could prove about `lease.holder`; `duration` is how long an
    acquired or renewed lease lasts, in seconds of the lease clock.
    """
    if duration <= 0:
        raise ValueError(f"lease duration must be positive, got {duration!r}")
    if lease is None:
        return _take(LeaseReason.VACANT, 0, me, now, duration)
    if lease.holder is not None and lease.holder.id == me.id and held in (None, lease.epoch):
        return _renew(lease, me, now, duration)
    if held is not None:
        return _stand_by(LeaseReason.SUPERSEDED, lease, now, duration)
    if lease.holder is None:
        return _take(LeaseReason.RELEASED, lease.epoch, me, now, duration)
    if liveness is Liveness.GONE:
        return _take(LeaseReason.HOLDER_GONE, lease.epoch, me, now, duration)
    if liveness is Liveness.RUNNING:
        valid = _valid(lease, now)
        return _stand_by(
            LeaseReason.HELD if valid else LeaseReason.HOLDER_RUNNING, lease, now, duration
        )
    if lease.clock != now.clock or lease.expires - now.seconds > lease.duration:
        return _take(LeaseReason.OTHER_CLOCK, lease.epoch, me, now, duration)
    if now.seconds >= lease.expires:
        return _take(LeaseReason.EXPIRED, lease.epoch, me, now, duration)
    return _stand_by(LeaseReason.HELD, lease, now, duration)


def _valid(lease: Lease, now: LeaseTime) -> bool:
    return lease.clock == now.clock and now.seconds < lease.expires


def _take(
    reason: LeaseReason, epoch: int, me: Holder, now: LeaseTime, duration: float
) -> LeaseDecision:
    return LeaseDecision(
        LeaseAction.ACQUIRE, reason, epoch + 1, now.seconds + duration, me, duration * RENEW_EVERY
    )


def _renew(lease: Lease, me: Holder, now: LeaseTime, duration: float) -> LeaseDecision:
    return LeaseDecision(
        LeaseAction.RENEW,
        LeaseReason.MINE,
        lease.epoch,
        now.seconds + duration,
        me,
        duration * RENEW_EVERY,
    )


def _stand_by(reason: LeaseReason, lease: Lease, now: LeaseTime, duration: float) -> LeaseDecision:
    look = duration * STANDBY_EVERY
    if reason is LeaseReason.HELD and lease.clock == now.clock:
        look = max(min(look, lease.expires - now.seconds), _SOONEST)
    return LeaseDecision(
        LeaseAction.STAND_BY, reason, lease.epoch, lease.expires, lease.holder, look
    )

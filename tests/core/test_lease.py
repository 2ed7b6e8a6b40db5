"""The store lease's rule, table-driven: (row, who asks, what it holds, now, liveness) -> step."""

from __future__ import annotations

import pytest

from watcher.core.lease import (
    Holder,
    Lease,
    LeaseAction,
    LeaseDecision,
    LeaseReason,
    LeaseTime,
    Liveness,
    decide,
)

CLOCK = "boot:1111"
NOW = LeaseTime(CLOCK, 1000.0)
D = 30.0  # seconds a lease lasts
ME = Holder("me", "watcher run", "host-a", 200, "2026-11-28T12:00:00Z")
THEM = Holder("them", "watcher run", "host-a", 100, "2026-11-28T11:00:00Z")
A, R, S = LeaseAction.ACQUIRE, LeaseAction.RENEW, LeaseAction.STAND_BY
Why = LeaseReason


def row(
    holder: Holder | None = THEM, epoch: int = 4, expires: float = 1010.0, clock: str = CLOCK
) -> Lease:
    """The lease row as a store reads it."""
    return Lease(holder, epoch, clock, expires, D)


CASES = [
    # Nobody ever held the store: the first process takes epoch 1.
    (None, None, Liveness.UNKNOWN, A, Why.VACANT, 1),
    # Its holder let it go at a clean stop: taken at once, the epoch moves on.
    (row(holder=None), None, Liveness.UNKNOWN, A, Why.RELEASED, 5),
    # Mine, at the epoch I hold: renewed, same epoch.
    (row(holder=ME), 4, Liveness.UNKNOWN, R, Why.MINE, 4),
    # Mine, though my last step's answer was lost: adopted and renewed.
    (row(holder=ME), None, Liveness.UNKNOWN, R, Why.MINE, 4),
    # I held epoch 3, the row says someone else holds epoch 4: I lost it.
    (row(), 3, Liveness.UNKNOWN, S, Why.SUPERSEDED, 4),
    # Released after I lost it: I do not silently carry on; the next step takes it anew.
    (row(holder=None), 3, Liveness.UNKNOWN, S, Why.SUPERSEDED, 4),
    # Held and renewed by another process: stand by.
    (row(), None, Liveness.UNKNOWN, S, Why.HELD, 4),
    # Held and valid, but its process is proven gone (kill -9 on this host): taken now.
    (row(), None, Liveness.GONE, A, Why.HOLDER_GONE, 5),
    # Expired, its process unknown (another container): taken.
    (row(expires=999.0), None, Liveness.UNKNOWN, A, Why.EXPIRED, 5),
    # Expired exactly now: taken.
    (row(expires=1000.0), None, Liveness.UNKNOWN, A, Why.EXPIRED, 5),
    # Expired, but its process still runs on this host (paused, slow disk): never taken.
    (row(expires=900.0), None, Liveness.RUNNING, S, Why.HOLDER_RUNNING, 4),
    # Valid and running: plainly held.
    (row(), None, Liveness.RUNNING, S, Why.HELD, 4),
    # Written on another boot's clock: no process of that boot still runs.
    (row(clock="boot:0000", expires=5000.0), None, Liveness.UNKNOWN, A, Why.OTHER_CLOCK, 5),
    # Further ahead than its own duration: written before a clock reset.
    (row(expires=1000.0 + D + 1), None, Liveness.UNKNOWN, A, Why.OTHER_CLOCK, 5),
    # Exactly one duration ahead: just renewed, valid.
    (row(expires=1000.0 + D), None, Liveness.UNKNOWN, S, Why.HELD, 4),
]


@pytest.mark.parametrize(("lease", "held", "liveness", "action", "reason", "epoch"), CASES)
def test_the_next_lease_step_follows_the_table(
    lease: Lease | None,
    held: int | None,
    liveness: Liveness,
    action: LeaseAction,
    reason: LeaseReason,
    epoch: int,
) -> None:
    decision = decide(lease, me=ME, held=held, now=NOW, duration=D, liveness=liveness)
    assert (decision.action, decision.reason, decision.epoch) == (action, reason, epoch)
    assert decision.held is (action is not S)


def test_taking_or_renewing_sets_the_expiry_one_duration_ahead_and_renews_at_a_third() -> None:
    taken = decide(None, me=ME, held=None, now=NOW, duration=D)
    renewed = decide(row(holder=ME), me=ME, held=4, now=NOW, duration=D)
    for decision in (taken, renewed):
        assert (decision.expires, decision.holder, decision.recheck_in) == (1030.0, ME, 10.0)


@pytest.mark.parametrize(
    ("lease", "liveness", "recheck_in"),
    [
        (row(expires=1010.0), Liveness.UNKNOWN, 2.0),  # every 1/15 of the duration...
        (row(expires=1000.5), Liveness.UNKNOWN, 0.5),  # ...or at the expiry, if sooner
        (row(expires=1000.01), Liveness.UNKNOWN, 0.05),  # never a busy loop
        (row(expires=900.0), Liveness.RUNNING, 2.0),  # a running holder: look again later
    ],
)
def test_a_process_standing_by_looks_again_soon_and_at_the_expiry(
    lease: Lease, liveness: Liveness, recheck_in: float
) -> None:
    decision = decide(lease, me=ME, held=None, now=NOW, duration=D, liveness=liveness)
    assert decision.action is S
    assert decision.recheck_in == pytest.approx(recheck_in)
    assert (decision.holder, decision.expires) == (THEM, lease.expires)


def test_standing_by_names_the_holder_and_keeps_the_row_as_found() -> None:
    decision = decide(row(epoch=9), me=ME, held=None, now=NOW, duration=D)
    assert decision == LeaseDecision(S, Why.HELD, 9, 1010.0, THEM, 2.0)
    assert THEM.describe() == "watcher run (pid 100 on host-a, started 2026-11-28T11:00:00Z)"


def test_a_lease_without_a_duration_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        decide(None, me=ME, held=None, now=NOW, duration=0)

"""The lease keeper: takes, renews, stands by and lets go, logging each change once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from watcher.core.errors import StoreError, StoreHeld, StoreReplaced
from watcher.core.lease import Holder, Lease, LeaseTime, decide
from watcher.edges.store.lease import LeaseOutcome
from watcher.service.lease_keeper import LeaseKeeper, Tenure

ME = Holder("me", "watcher run", "host-a", 200, "2026-11-28T12:00:00Z")
THEM = Holder("them", "watcher run", "host-b", 100, "2026-11-28T11:00:00Z")
D = 30.0


class FakeStore:
    """A store whose lease row the test sets; it decides with the real rule."""

    def __init__(self) -> None:
        self.path = Path("/var/lib/gradient-watcher/watcher.db")
        self.lease: Lease | None = None
        self.now = 1000.0
        self.fail: Exception | None = None
        self.released = 0

    async def lease_step(self, holder: Holder, duration: float) -> LeaseOutcome:
        if self.fail is not None:
            raise self.fail
        held = self.lease.epoch if self.lease and self.lease.holder == holder else None
        now = LeaseTime("boot:1", self.now)
        decision = decide(self.lease, me=holder, held=held, now=now, duration=duration)
        if decision.held:
            self.lease = Lease(holder, decision.epoch, "boot:1", decision.expires, duration)
        return LeaseOutcome(decision, returned=2 if decision.held else 0)

    async def release_lease(self) -> None:
        self.released += 1
        assert self.lease is not None
        self.lease = Lease(None, self.lease.epoch, "boot:1", self.now, D)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def logs() -> Iterator[list[dict[str, object]]]:
    with capture_logs() as captured:
        yield captured


def events(logs: list[dict[str, object]]) -> list[object]:
    return [e["event"] for e in logs]


async def test_taking_the_lease_logs_why_the_epoch_and_the_claims_returned(
    store: FakeStore, logs: list[dict[str, object]]
) -> None:
    keeper = LeaseKeeper(store, ME, D)
    await keeper.acquire()
    assert keeper.held and keeper.holding.is_set()
    [taken] = logs
    assert taken == {
        "event": "store_lease_acquired",
        "epoch": 1,
        "reason": "vacant",
        "claims_returned": 2,
        "log_level": "info",
    }
    assert await keeper.step() == 10.0  # renewed: next step after a third of the lease
    assert events(logs) == ["store_lease_acquired"]


async def test_once_beside_a_daemon_is_refused_naming_the_daemon(store: FakeStore) -> None:
    store.lease = Lease(THEM, 7, "boot:1", 1020.0, D)
    keeper = LeaseKeeper(store, Holder("x", "watcher once", "host-a", 5, "now"), D)
    with pytest.raises(StoreHeld) as caught:
        await keeper.acquire()
    message = str(caught.value)
    assert f"{store.path} is held by {THEM.describe()}, epoch 7" in message
    assert "watcher once would be a second one" in message
    assert keeper.tenure is Tenure.STANDING_BY


async def test_standing_by_is_logged_once_per_holder_and_taking_over_when_it_lets_go(
    store: FakeStore, logs: list[dict[str, object]]
) -> None:
    store.lease = Lease(THEM, 3, "boot:1", 1020.0, D)
    changes: list[Tenure] = []
    keeper = LeaseKeeper(store, ME, D)
    keeper.on_change = changes.append
    assert await keeper.step() == 2.0
    await keeper.step()
    assert events(logs) == ["store_standing_by"]
    assert logs[0]["holder"] == THEM.describe()
    assert (
        keeper.problem is not None and "is held by watcher run (pid 100 on host-b" in keeper.problem
    )
    store.lease = Lease(None, 3, "boot:1", 1000.0, D)  # it stopped cleanly
    await keeper.step()
    assert events(logs)[-1] == "store_lease_acquired" and logs[-1]["reason"] == "released"
    assert changes == [Tenure.STANDING_BY, Tenure.HOLDING]


async def test_losing_the_lease_is_an_error_and_the_keeper_stands_by(
    store: FakeStore, logs: list[dict[str, object]]
) -> None:
    keeper = LeaseKeeper(store, ME, D)
    await keeper.acquire()
    store.lease = Lease(THEM, 2, "boot:1", 1030.0, D)  # taken over while this one was paused
    await keeper.step()
    assert events(logs)[-2:] == ["store_lease_lost", "store_standing_by"]
    assert not keeper.held and keeper.tenure is Tenure.STANDING_BY


async def test_a_failed_step_changes_nothing_and_a_replaced_store_is_said_once(
    store: FakeStore, logs: list[dict[str, object]]
) -> None:
    keeper = LeaseKeeper(store, ME, D)
    await keeper.acquire()
    store.fail = StoreError("disk full")
    await keeper.step()
    assert keeper.held  # fencing, not the keeper, stops a stale holder
    store.fail = StoreReplaced("state store x: x was deleted or moved away")
    await keeper.step()
    await keeper.step()
    assert events(logs)[1:] == ["store_lease_step_failed", "store_replaced"]
    assert keeper.tenure is Tenure.REPLACED and keeper.problem is not None
    store.fail = None
    await keeper.step()
    assert events(logs)[-2:] == ["store_restored", "store_lease_acquired"] and keeper.held


async def test_stopping_lets_the_lease_go_once(store: FakeStore) -> None:
    keeper = LeaseKeeper(store, ME, D)
    await keeper.acquire()
    keeper.start()
    await keeper.stop()
    await keeper.stop()
    assert store.released == 1 and not keeper.held
    assert store.lease is not None and store.lease.holder is None

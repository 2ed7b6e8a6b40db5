"""At-least-once across kill -9: the real daemon, killed at random moments, loses no alert.

`watcher run` runs as a subprocess against a real-time simulator served from this process,
with two real webhook routes; it is SIGKILLed at seeded random moments and restarted, while
the simulated API misbehaves on its timeline. At the end every alert the scenario's jobs owe
has arrived on every route that asked for it, nothing else has, and each duplicate arrived
right around a kill (between a send and its acknowledgement in the store). The long version
with many kills and seeds is `python bench/crash_run.py`.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.promises.crashrig import (
    CrashPlan,
    faults_table,
    figures_table,
    libfaketime,
    run_crash,
)
from tests.stores import open_held
from watcher.core.errors import StoreHeld
from watcher.core.lease import LeaseAction, LeaseReason, LeaseTime
from watcher.core.model import EventKind
from watcher.core.state import Change, Delivery, Transition
from watcher.edges import host
from watcher.edges.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_sigkill_at_random_moments_loses_no_alert_and_duplicates_only_around_a_kill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = CrashPlan(seed=20261128, kills=6, kbs=6, first_job=6.0, horizon=20.0, drain_timeout=30.0)
    figures = run_crash(plan, tmp_path)
    with capsys.disabled():
        print("\n" + figures_table([figures]) + "\n" + faults_table([figures]))
    assert figures.kills == 6
    assert figures.bystander_failures == []
    assert figures.lost == []
    assert figures.unexpected == []
    assert figures.unexplained == [], "a duplicate arrived with no kill in its ack window"
    assert figures.leaked == []
    assert figures.exit_code == 0
    assert figures.stuck_claims == 0
    assert figures.delivered == figures.expected > 0
    assert sum(figures.faults.values()) > 0
    # the clock faults of this seed: the API's clock a second behind, the daemons' stepped
    assert figures.api_skew == -1.0
    if libfaketime() is not None:
        assert figures.clock_steps, "this seed steps the daemons' wall clock"


_CLAIM_AND_DIE = """
import asyncio, os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from watcher.edges import host
from watcher.edges.store.sqlite import SqliteStore
from watcher.core.model import EventKind
from watcher.core.state import Change, Transition
from watcher.core.state import Delivery

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

async def main() -> None:
    store = await SqliteStore.open(Path(sys.argv[1]), now=NOW)
    await store.lease_step(host.this_process("watcher once", NOW), 30.0)
    event = Transition("job-1/failed", EventKind.FAILED, NOW, kb_uuid="kb-1")
    change = Change("c1", NOW, transitions=(event,), deliveries=(Delivery(event.event_id, "ops"),))
    await store.record(change)
    print(len(await store.claim_due(NOW, 10)), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # dies holding the claim, mid-delivery

asyncio.run(main())
"""


async def test_claims_of_a_killed_process_are_returned_at_once_when_its_lease_is_taken_over(
    tmp_path: Path,
) -> None:
    """A restart delivers what the dead process had claimed, without waiting for any lease:
    the dead holder is proven gone (same boot, same pid namespace, its pid no longer runs)."""
    path = tmp_path / "watcher.db"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _CLAIM_AND_DIE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout.strip() == "1"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT state FROM outbox").fetchall() == [("sending",)]
    conn.close()
    again = await SqliteStore.open(path, now=NOW + timedelta(seconds=1))
    try:
        taken = await again.lease_step(host.this_process("watcher run", NOW), 30.0)
        assert (taken.decision.reason, taken.decision.epoch) == (LeaseReason.HOLDER_GONE, 2)
        assert taken.returned == 1
        claimed = await again.claim_due(NOW + timedelta(seconds=1), 10)
        assert [item.transition.event_id for item in claimed] == ["job-1/failed"]
        assert claimed[0].last_error == "claim returned: the process that claimed it is gone"
    finally:
        await again.close()


async def test_claims_are_kept_while_their_holder_runs(tmp_path: Path) -> None:
    """With a live holder the claim may be in flight: another daemon stands by and claims
    nothing; a process outside the lease gets the row back only when the claim's lease ends."""
    path = tmp_path / "watcher.db"
    holder = await open_held(path, NOW)
    try:
        event = Transition("job-1/failed", EventKind.FAILED, NOW, kb_uuid="kb-1")
        await holder.record(
            Change(
                cycle_id="c1",
                at=NOW,
                transitions=(event,),
                deliveries=(Delivery("job-1/failed", "ops"),),
            )
        )
        assert len(await holder.claim_due(NOW, 10)) == 1
        standby = await SqliteStore.open(path, now=NOW)
        bystander = await SqliteStore.open(path, now=NOW)
        try:
            step = await standby.lease_step(host.this_process("watcher run", NOW), 30.0)
            assert (step.decision.action, step.returned) == (LeaseAction.STAND_BY, 0)
            later = NOW + holder.lease + timedelta(seconds=1)
            with pytest.raises(StoreHeld):
                await standby.claim_due(later, 10)
            assert await bystander.claim_due(later, 10) == []  # the wall clock decides nothing
            # the claim's lease ends on the boot-time clock the store's lease keeps
            lease_time = host.lease_time
            bystander.lease_clock = lambda: LeaseTime(
                lease_time().clock, lease_time().seconds + holder.lease.total_seconds() + 1
            )
            assert len(await bystander.claim_due(later, 10)) == 1
        finally:
            await bystander.close()
            await standby.close()
    finally:
        await holder.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"

"""The daemon around its cycles: a store that fails its upkeep, or its last delivery at a
stop, is logged and survived, and nothing the upkeep does can end the polling. A real runtime
against the simulator; the store's faults come from a hand-written stand-in that refuses the
calls it is told to with the store's own error."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.service.quiet_runtime import quiet_runtime
from watcher.core.errors import StoreError
from watcher.core.pace import PACE_KEY, budget_floor
from watcher.edges.metrics import Metrics
from watcher.edges.store.sqlite import SqliteStore
from watcher.service.cycle import CycleReport
from watcher.service.daemon import Daemon
from watcher.service.runtime import NO_METRICS, Runtime
from watcher.service.upkeep import Upkeep

TOKEN = "dop_v1_" + "7319" * 16
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
REPORT = CycleReport(cycle_id="c1", ok=True, active_jobs=0)


class Refusing:
    """The store, except that the calls named in `refuse` fail as a full disk would."""

    def __init__(self, store: SqliteStore, *refuse: str) -> None:
        self.store, self.refuse = store, set(refuse)

    def __getattr__(self, name: str) -> Any:
        if name in self.refuse:
            return self._fail
        return getattr(self.store, name)

    async def _fail(self, *args: object, **kwargs: object) -> None:
        raise StoreError(f"state store {self.store.path}: writing failed: database or disk is full")


class BrokenGauges(Metrics):
    """Metrics with a bug in one setter."""

    def set_store_gauges(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in the gauges")


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with quiet_runtime(tmp_path, TOKEN, NOW) as opened:
        yield opened


async def test_a_pace_the_store_refuses_is_in_force_all_the_same_and_saved_next_cycle(
    runtime: Runtime,
) -> None:
    real = runtime.store
    runtime.store = Refusing(real, "set_meta")  # type: ignore[assignment]
    upkeep = Upkeep(runtime, Metrics())
    with capture_logs() as logs:
        await upkeep.after_cycle(REPORT, 0.1, NOW)  # raised StoreError before: polling ended
    [refused] = [e for e in logs if e["event"] == "poll_interval_not_saved"]
    assert "disk is full" in refused["error"]
    assert await real.get_meta(PACE_KEY) is None

    runtime.store = real
    await upkeep.after_cycle(REPORT, 0.1, NOW + timedelta(minutes=1))
    assert await real.get_meta(PACE_KEY) is not None


@pytest.mark.parametrize(
    ("refused", "event"),
    [
        # the gauges are read from a snapshot after every cycle
        ("snapshot", "store_snapshot_failed"),
        # pruning, hourly
        ("prune", "history_prune_failed"),
    ],
)
async def test_a_store_failing_the_upkeep_is_logged_with_its_error_and_survived(
    runtime: Runtime, refused: str, event: str
) -> None:
    runtime.store = Refusing(runtime.store, refused)  # type: ignore[assignment]
    upkeep = Upkeep(runtime, Metrics())
    with capture_logs() as logs:
        await upkeep.after_cycle(REPORT, 0.1, NOW)
        await upkeep.prune(NOW)
    [failed] = [e for e in logs if e["event"] == event]
    assert "disk is full" in failed["error"]


async def test_a_bug_in_the_upkeep_after_a_cycle_is_logged_and_the_polling_goes_on(
    runtime: Runtime,
) -> None:
    """`tick` is the loop's boundary: before, the exception ended the poll task silently."""
    runtime.metrics = BrokenGauges()
    daemon = Daemon(runtime, config_path=None, env={}, clock=lambda: NOW)
    with capture_logs() as logs:
        await daemon.tick()
        await daemon.tick()
    events = [e["event"] for e in logs]
    assert events.count("cycle_upkeep_failed") == 2
    assert "cycle_failed" not in events


async def test_a_store_failing_the_last_delivery_at_a_stop_is_logged_and_the_store_closed(
    runtime: Runtime,
) -> None:
    runtime.cycle.dispatcher.outbox = Refusing(runtime.store, "claim_due")  # type: ignore[assignment]
    daemon = Daemon(runtime, config_path=None, env={}, clock=lambda: NOW)
    with capture_logs() as logs:
        await daemon._shutdown(None)
    [incomplete] = [e for e in logs if e["event"] == "final_delivery_incomplete"]
    assert "disk is full" in incomplete["error"]
    assert logs[-1]["event"] == "watcher_stopped"
    with pytest.raises(StoreError, match="closed"):
        await runtime.store.get_meta(PACE_KEY)


async def test_a_daemon_refuses_a_runtime_that_counts_nothing(runtime: Runtime) -> None:
    """`NO_METRICS` is `watcher once`'s: a daemon serves `/metrics`, so it wants real ones
    rather than exporting gauges nobody counted."""
    runtime.metrics = NO_METRICS
    with pytest.raises(TypeError, match="Metrics"):
        Daemon(runtime, config_path=None, env={}, clock=lambda: NOW)


async def test_the_pace_counts_the_polls_own_requests_never_the_extra_reads_made_during_it(
    runtime: Runtime,
) -> None:
    """The prices (and schedules, reports) are read inside the poll; they have their own
    budget. Counted as polling they raised the budget's floor: at 1,000 busy KBs the pace went
    from 20 s to 30 s on the report reads alone, and every alert came that much later."""
    upkeep = Upkeep(runtime, Metrics())
    report = await runtime.cycle.run()
    budget = runtime.cycle.budget
    assert budget is not None and budget.by_kind["prices"] > 0  # an extra read in the poll
    await upkeep.after_cycle(report, 0.1, NOW)
    assert upkeep.last_cost == budget.poll_cost > 0
    during = budget.by_kind["prices"] + budget.by_kind["schedule"] + budget.by_kind["report"]
    assert report.extra_requests >= during


async def test_the_extra_reads_leave_room_for_every_poll_the_fastest_pace_may_send(
    runtime: Runtime,
) -> None:
    """The pace may quicken at any cycle (a job starts), so the extra reads count the polls
    of a minute at `poll.active_interval` (or the budget's floor for the poll's cost)."""
    await runtime.cycle.run()
    budget = runtime.cycle.budget
    assert budget is not None and budget.poll_cost > 0
    config = runtime.config
    room = budget.room(runtime.cycle.elapsed())
    every = max(
        config.poll.active_interval.total_seconds(),
        budget_floor(config.api.max_requests_per_minute, budget.poll_cost).total_seconds(),
    )
    assert room.ceiling == config.api.max_requests_per_minute
    assert room.minute_polls == math.ceil(60 / every) * budget.poll_cost
    assert room.extra_minute == budget.measured  # every extra read of this minute
    assert room.minute_room() == min(
        room.ceiling - room.minute_polls - room.extra_minute, room.minute_left
    )

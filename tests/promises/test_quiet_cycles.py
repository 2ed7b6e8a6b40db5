"""Quiet cycles: on an idle account the cycle polls the KB list and skips its bookkeeping,
yet every deadline still comes on time (`watcher.core.nextdue`).

Each test runs the same scenario twice on the real runtime (simulator, SQLite file, apprise to
a loopback webhook): once as it ships, once with quiet cycles off (the store's signs taken
away, so every cycle runs in full). What the receiver holds after each cycle must be the
same in both runs, quiet cycles must have happened before the deadline, and the cycle that
met the deadline ran in full for it (`CycleReport.due`).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.harness import GROUP, Harness, Key, alerts_of, job_scenario, open_harness, route
from tests.receivers import WebhookReceiver
from watcher.core.errors import StoreReplaced
from watcher.core.incident import Ack
from watcher.core.model import EventKind
from watcher.core.nextdue import DueKind, Full
from watcher.core.silences import Silence
from watcher.edges.store.sqlite import SqliteStore
from watcher.service.cycle import CycleReport

During = Callable[[Harness, int], Awaitable[None]]
IDLE = job_scenario(["docs", "wiki"], [])


def failing(at: float = 10) -> dict[str, Any]:
    """KB `docs` idle but for one job, started at `at`, failed 6 s later."""
    job = {"at": at, "kb": "docs", "id": "broken", "run": 5, "outcome": "failed"}
    return job_scenario(["docs"], [job])


@dataclass
class Run:
    """What the receiver held after each cycle, each cycle's report, the API's requests."""

    timeline: list[Counter[Key]]
    reports: list[CycleReport]
    requests: list[list[str]]
    # the stall deadline for people of each job not done, as the store holds it (the web
    # page's `stall_deadline`), after each cycle
    deadlines: list[list[tuple[str, datetime | None]]] = field(default_factory=list)

    def first(self, kind: EventKind) -> int:
        """The cycle after which an alert of `kind` had arrived."""
        return next(n for n, seen in enumerate(self.timeline) if any(k == kind for _, k in seen))


def delivered(receiver: WebhookReceiver, path: str) -> Counter[Key]:
    """The events of the alerts the receiver accepted at `path` (each line of a group)."""
    accepted = [r for r in receiver.requests if r.answered == 200]
    found: Counter[Key] = Counter()
    for alert in alerts_of(accepted, path):
        if alert.kind == GROUP:
            found.update((None, EventKind(kind)) for kind, _ in alert.events())
        else:
            found[alert.key] += 1
    return found


async def watch(
    tmp_path: Path,
    receiver: WebhookReceiver,
    scenario: dict[str, Any],
    *,
    quiet: bool,
    cycles: int,
    every: float = 5.0,
    during: During | None = None,
    on_route: dict[str, Any] | None = None,
    **sections: Any,
) -> Run:
    """`cycles` cycles `every` simulated seconds, quiet cycles on or off."""
    label = "quiet" if quiet else "full"
    (tmp_path / label).mkdir()
    ops = route("ops", receiver.url_json(f"/{label}")) | (on_route or {})
    webhook = receiver
    async with open_harness(
        scenario, tmp_path / label, receiver, routes=[ops], start=False, **sections
    ) as rig:
        runtime = await rig.start()
        if not quiet:
            runtime.cycle.quiet_signs = None
        run = Run([], [], [])
        for n in range(cycles):
            if during is not None:
                await during(rig, n)
            mark = len(rig.sim.requests)
            run.reports.append(await rig.step(every))
            run.timeline.append(delivered(webhook, f"/{label}"))
            run.requests.append(rig.requests_since(mark))
            held = await runtime.store.load(())
            jobs = sorted((j.job.uuid, j.deadline) for j in held.jobs.values() if not j.done)
            run.deadlines.append(jobs)
        return run


@contextlib.asynccontextmanager
async def another_connection(rig: Harness) -> AsyncIterator[SqliteStore]:
    """The store file opened again, as `watcher silence` or `watcher ack` opens it."""
    other = await SqliteStore.open(rig.state_path, now=rig.now())
    try:
        yield other
    finally:
        await other.close()


async def same_alerts(tmp_path: Path, receiver: WebhookReceiver, **kwargs: Any) -> Run:
    """The quiet run, once its alerts came cycle for cycle as those of the full run."""
    full = await watch(tmp_path, receiver, quiet=False, **kwargs)
    receiver.answer(200)
    quiet = await watch(tmp_path, receiver, quiet=True, **kwargs)
    assert quiet.timeline == full.timeline
    assert deadlines_differ(quiet, full) is None
    assert not any(r.quiet for r in full.reports)
    return quiet


def deadlines_differ(run: Run, other: Run) -> int | None:
    """The first cycle after which the jobs' deadlines for people differ between the runs
    (None: the same after each), by two seconds or more: two estimates of the API's clock
    may differ by a second (`core.state.changed` lets one move by under a second)."""
    for n, (held, also) in enumerate(zip(run.deadlines, other.deadlines, strict=True)):
        if [uuid for uuid, _ in held] != [uuid for uuid, _ in also]:
            return n
        for (_, at), (_, other_at) in zip(held, also, strict=True):
            if (at is None) != (other_at is None):
                return n
            if at is not None and other_at is not None and abs(at - other_at).total_seconds() >= 2:
                return n
    return None


def met(run: Run, kind: EventKind, due: DueKind) -> int:
    """The cycle that alerted `kind`: quiet cycles came before it, and it ran for `due`."""
    n = run.first(kind)
    assert any(r.quiet for r in run.reports[:n]), "no quiet cycle before the deadline"
    assert run.reports[n].full is Full.DUE
    assert run.reports[n].due is due
    return n


async def test_an_idle_account_is_polled_quietly_without_reading_or_judging_the_store(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    async with open_harness(IDLE, tmp_path, webhook_receiver) as rig:
        runtime = rig.runtime
        assert runtime is not None
        await rig.run(15)
        store, cycle = runtime.store, runtime.cycle
        loads, skips = store.loads_kept, cycle.kb_watch.quiet_skips
        mark = len(rig.sim.requests)
        reports = await rig.run(50)
        assert all(r.ok and r.quiet for r in reports)
        assert (store.loads_kept, cycle.kb_watch.quiet_skips) == (loads, skips)  # no load
        assert set(rig.requests_since(mark)) == {"GET /v2/gen-ai/knowledge_bases"}
        assert reports[-1].knowledge_bases == 2  # what the last full cycle saw


async def test_a_full_cycle_runs_at_least_every_twenty_cycles(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    async with open_harness(IDLE, tmp_path, webhook_receiver) as rig:
        reports = await rig.run(5 * 45)
        nets = [n for n, r in enumerate(reports) if r.full is Full.SAFETY_NET]
        assert len(nets) == 2 and nets[1] - nets[0] == 20
        assert sum(r.quiet for r in reports) >= 40


async def test_a_job_that_stops_moving_is_stalled_at_its_deadline_after_quiet_cycles(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """No progress for 60 s (the elapsed clock): the job froze 5 s into its run for good."""
    stalls = [{"after": 5, "for": None}]
    frozen = {"at": 10, "kb": "docs", "id": "frozen", "run": 900, "stalls": stalls}
    run = await same_alerts(
        tmp_path, webhook_receiver, scenario=job_scenario(["docs"], [frozen]), cycles=30
    )
    met(run, EventKind.STALLED, DueKind.STALL)


async def test_a_job_stuck_pending_is_stalled_at_its_deadline_on_the_apis_clock(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Pending for 120 s since its `created_at` (DigitalOcean's clock, 90 s ahead)."""
    stuck = {"at": 10, "kb": "docs", "id": "stuck", "pending": None, "run": 60}
    scenario = job_scenario(["docs"], [stuck])
    run = await same_alerts(tmp_path, webhook_receiver, scenario=scenario, cycles=40)
    met(run, EventKind.STALLED, DueKind.STALL)


async def test_a_refused_alert_is_sent_again_at_its_retry_time_after_quiet_cycles(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """The receiver refuses the `failed` alert until 40 s later; retries every 30 s at most."""

    async def receiver_back(rig: Harness, n: int) -> None:
        webhook_receiver.answer(500 if n < 8 else 200)

    run = await same_alerts(
        tmp_path,
        webhook_receiver,
        scenario=failing(),
        cycles=30,
        during=receiver_back,
    )
    met(run, EventKind.FAILED, DueKind.OUTBOX)


async def test_a_silence_written_by_another_connection_holds_and_its_end_tells_what_it_held(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """`watcher silence` (its own connection) while the account idles: the next cycle sees it,
    the job failing under it is held, and its end (wall clock) announces the open failure."""

    async def silence(rig: Harness, n: int) -> None:
        if n == 6:
            now = rig.now()
            async with another_connection(rig) as other:
                end = now + timedelta(seconds=90)
                await other.add_silence(Silence("s1", None, None, now, end, "alice", "upgrade"))

    run = await same_alerts(
        tmp_path,
        webhook_receiver,
        scenario=failing(at=60),
        cycles=40,
        during=silence,
    )
    assert run.reports[6].full is Full.WRITTEN
    assert not any(k == EventKind.FAILED for _, k in run.timeline[-1])  # held, not sent
    met(run, EventKind.SILENCE_ENDED, DueKind.SILENCE_END)


async def test_a_digest_is_sent_at_its_slot_after_quiet_cycles(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """The simulator starts at 09:00 UTC; the digest's slot is 09:02."""
    run = await same_alerts(
        tmp_path,
        webhook_receiver,
        scenario=IDLE,
        cycles=35,
        on_route={"digest": "daily 09:02"},
    )
    met(run, EventKind.DIGEST, DueKind.DIGEST)


async def test_a_reminder_of_an_open_incident_comes_at_its_period_after_quiet_cycles(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    run = await same_alerts(
        tmp_path,
        webhook_receiver,
        scenario=failing(),
        cycles=35,
        on_route={"repeat_after": "2m"},
    )
    met(run, EventKind.REMINDER, DueKind.REMINDER)


async def test_an_ack_written_by_another_connection_is_seen_by_the_next_cycle(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """`watcher ack` between two quiet cycles: the reminder due after it is never sent."""

    async def ack(rig: Harness, n: int) -> None:
        if n == 12:
            async with another_connection(rig) as other:
                await other.acknowledge("docs-kb", Ack("alice", rig.now(), "on it"))

    run = await same_alerts(
        tmp_path,
        webhook_receiver,
        scenario=failing(),
        cycles=40,
        during=ack,
        on_route={"repeat_after": "2m"},
    )
    assert any(r.quiet for r in run.reports[5:12])
    assert run.reports[12].full is Full.WRITTEN
    assert not any(k == EventKind.REMINDER for _, k in run.timeline[-1])


async def test_alerts_held_by_quiet_hours_go_out_when_they_end_after_quiet_cycles(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Quiet hours 09:00-09:02 UTC; the job fails at 09:00:15."""
    window = {"times": [{"start_time": "09:00", "end_time": "09:02"}]}
    run = await same_alerts(
        tmp_path,
        webhook_receiver,
        scenario=failing(),
        cycles=35,
        on_route={"mute_during": ["morning"]},
        time_intervals=[{"name": "morning", "time_intervals": [window]}],
    )
    met(run, EventKind.FAILED, DueKind.OUTBOX)


async def test_a_kb_going_stale_is_alerted_when_its_freshness_window_ends(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Its last success ended a day ago, less its 5-minute run; fresh within 1437 minutes:
    stale 2 minutes in."""
    run = await same_alerts(
        tmp_path,
        webhook_receiver,
        scenario=job_scenario(["docs"], []),
        cycles=35,
        freshness={"fresh_within": "1437m"},
    )
    met(run, EventKind.STALE, DueKind.SCHEDULE)


async def test_a_job_starting_on_an_idle_account_is_alerted_by_the_next_cycle(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    starting = {"at": 80, "kb": "docs", "id": "new", "run": 600}
    run = await same_alerts(
        tmp_path, webhook_receiver, scenario=job_scenario(["docs"], [starting]), cycles=20
    )
    n = run.first(EventKind.STARTED)
    assert any(r.quiet for r in run.reports[:n])
    assert run.reports[n].full is Full.LISTED


async def test_the_hourly_extra_reads_and_prices_go_on_time_between_quiet_cycles(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Every read beyond the KB list is made in the same cycle as with quiet cycles off."""
    kwargs: dict[str, Any] = {
        "scenario": IDLE,
        "cycles": 80,
        "every": 60.0,
        "cost": {"prices_every": "25m"},  # apart from the other reads (every 20m, 30m)
        "schedules": {"read_every": "20m"},
    }
    full = await watch(tmp_path, webhook_receiver, quiet=False, **kwargs)
    quiet = await watch(tmp_path, webhook_receiver, quiet=True, **kwargs)
    beyond = "GET /v2/gen-ai/knowledge_bases"
    reads = [[r for r in cycle if r != beyond] for cycle in quiet.requests]
    assert reads == [[r for r in cycle if r != beyond] for cycle in full.requests]
    later = [n for n, cycle in enumerate(reads) if cycle and n > 5]
    assert later, "no hourly read after the first ones"
    assert any(r.quiet for r in quiet.reports[5 : later[0]])
    dues = {quiet.reports[n].due for n in later}
    assert (
        {DueKind.EXTRA_READS, DueKind.PRICES} <= dues <= {DueKind.EXTRA_READS, DueKind.PRICES, None}
    )


async def test_a_step_of_the_wall_clock_is_seen_by_the_next_cycle_whichever_way(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """A job stuck pending (its limit 30 minutes off): the watcher's wall clock steps an hour
    forward, later 20 seconds back (less than the time since the last full cycle). The
    deadline for people (`now.wall + left`) moves with each step in the very next cycle,
    as it does with every cycle in full."""
    stuck = {"at": 10, "kb": "docs", "id": "stuck", "pending": None, "run": 60}

    async def steps(rig: Harness, n: int) -> None:
        if n == 12:
            rig.offset += timedelta(hours=1)
        if n == 24:
            rig.offset -= timedelta(seconds=20)

    run = await same_alerts(
        tmp_path,
        webhook_receiver,
        scenario=job_scenario(["docs"], [stuck]),
        cycles=30,
        during=steps,
        stall={"pending_after": "30m"},
    )
    for n in (12, 24):
        assert any(r.quiet for r in run.reports[n - 5 : n]), "no quiet cycle before the step"
        assert run.reports[n].full is Full.WALL_STEPPED


async def test_a_step_of_the_apis_clock_is_seen_by_the_next_cycle(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """DigitalOcean's clock (its `Date` headers) steps a minute forward while the KB list's
    bytes stay the same: the deadline for people of a job stuck pending moves at once."""
    stuck = {"at": 10, "kb": "docs", "id": "stuck", "pending": None, "run": 60}

    async def step(rig: Harness, n: int) -> None:
        if n == 12:
            rig.sim.api_clock_offset += timedelta(seconds=60)

    run = await same_alerts(
        tmp_path,
        webhook_receiver,
        scenario=job_scenario(["docs"], [stuck]),
        cycles=20,
        during=step,
        stall={"pending_after": "30m"},
    )
    assert any(r.quiet for r in run.reports[7:12]), "no quiet cycle before the step"
    assert run.reports[12].full is Full.API_STEPPED


async def test_a_store_moved_away_is_refused_by_the_next_cycle_as_a_full_cycle_refuses_it(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """A full cycle's write checks that the file is still at the path; a quiet cycle writes
    nothing, yet refuses the same way (the daemon then logs `cycle_refused_by_store`, the
    cycle counts as failed, and the lease keeper is woken), and goes on once it is back."""
    async with open_harness(IDLE, tmp_path, webhook_receiver) as rig:
        reports = await rig.run(30)
        assert reports[-1].quiet
        aside = tmp_path / "aside.db"
        os.replace(rig.state_path, aside)
        with pytest.raises(StoreReplaced, match="deleted or moved away"):
            await rig.step(5)
        os.replace(aside, rig.state_path)
        assert (await rig.step(5)).ok

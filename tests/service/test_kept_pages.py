"""An idle cycle keeps the KB list's pages whose bytes did not change (nothing decoded or
parsed again), and still judges every job: a stall deadline that passes while no byte of the
list moves is alerted, and a job that starts inside an otherwise unchanged account is too."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from tests.harness import Harness, job_scenario, open_harness
from tests.receivers import WebhookReceiver
from watcher.core.model import EventKind


def kept_pages(rig: Harness) -> int:
    """How many KB-list pages the watcher's client has kept so far, as read."""
    assert rig.runtime is not None
    return rig.runtime.client._kb_pages.hits


def kinds(rig: Harness) -> list[EventKind]:
    return [t for r in rig.reports for t in r.events]


async def test_a_stall_deadline_passing_without_a_changed_byte_is_alerted(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """`stuck` freezes 4 s into its run for good; no_progress_after is 60 s."""
    stuck = {"kb": "docs", "id": "stuck", "pending": 1, "run": 30, "stalls": [{"after": 4}]}
    scenario = job_scenario(["docs", "wiki"], [stuck])
    async with open_harness(scenario, tmp_path, webhook_receiver) as rig:
        await rig.run(30)  # the job is seen running, then frozen
        assert EventKind.STARTED in kinds(rig) and EventKind.STALLED not in kinds(rig)
        before = kept_pages(rig)
        await rig.run(60)
        assert kept_pages(rig) > before  # the list's bytes stood still meanwhile
        assert EventKind.STALLED in kinds(rig)
        stalled = [a for a in rig.alerts() if a.kind is EventKind.STALLED]
        assert [a.job_uuid for a in stalled] == [rig.sim.job_uuid("stuck")]


async def test_a_job_started_in_an_idle_account_is_alerted_after_kept_pages(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    new = {"at": 40, "kb": "wiki", "id": "new", "pending": 1, "run": 20}
    scenario = job_scenario(["docs", "wiki"], [new])
    async with open_harness(scenario, tmp_path, webhook_receiver) as rig:
        await rig.run(30)
        assert kept_pages(rig) >= 4  # idle: the same bytes cycle after cycle
        assert not kinds(rig)
        await rig.run(60)
        events = rig.received()
        job = rig.sim.job_uuid("new")
        assert events[(job, EventKind.STARTED)] == 1
        assert events[(job, EventKind.COMPLETED)] == 1


def stored_done(rig: Harness, job_uuid: str) -> bool:
    """The job's `done` column as another process reads the store file."""
    with closing(sqlite3.connect(rig.state_path)) as conn:
        (done,) = conn.execute("SELECT done FROM jobs WHERE uuid = ?", (job_uuid,)).fetchone()
    return bool(done)


async def test_a_done_job_row_another_writer_changed_is_judged_without_a_changed_byte(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Idle, the watcher stops judging the done latest jobs again (same page, same row); a
    row written by another process (here: the job's `done` undone) is judged at once: the
    API's unchanged, completed copy makes it done again in the next cycle."""
    new = {"at": 5, "kb": "wiki", "id": "new", "pending": 1, "run": 10}
    scenario = job_scenario(["docs", "wiki"], [new])
    async with open_harness(scenario, tmp_path, webhook_receiver) as rig:
        await rig.run(40)
        job = rig.sim.job_uuid("new")
        assert rig.received()[(job, EventKind.COMPLETED)] == 1
        assert rig.runtime is not None
        memo = rig.runtime.cycle.unmoved
        pages, skipped = kept_pages(rig), memo.skipped
        idle = await rig.run(15)
        assert kept_pages(rig) > pages
        # idle: nothing judged again (the cycles are quiet, or the memo skips every job)
        assert all(r.quiet for r in idle) or memo.skipped > skipped
        with closing(sqlite3.connect(rig.state_path)) as conn, conn:
            conn.execute("UPDATE jobs SET done = 0 WHERE uuid = ?", (job,))
        assert not stored_done(rig, job)
        pages = kept_pages(rig)
        await rig.step(5)
        assert kept_pages(rig) > pages  # no byte of the list changed
        assert stored_done(rig, job)
        assert rig.received()[(job, EventKind.COMPLETED)] == 1

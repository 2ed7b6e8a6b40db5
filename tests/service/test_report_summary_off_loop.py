"""A kept report is summarised off the event loop: up to 32 MiB of CSV is seconds of parsing,
during which the loop must keep serving (lease renewal, health, delivery).

Real parts: a real `ReportShelf` on disk and the real summariser. The API side is a minimal
`ExtraSource` that hands over the bytes at once (the download itself is covered end to end in
`tests/e2e/test_schedules_reports.py`). No time is asserted: the loop's turns are counted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

from watcher.core.model import EventKind, Job
from watcher.core.report import ReportFate
from watcher.core.schedules import Schedule
from watcher.core.state import Transition
from watcher.edges.reports import ReportShelf
from watcher.service.kbwatch import KbWatcher, KbWatchSettings

JOB = "4d588143-399c-5617-a9d9-5144e3f48dc6"
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ROW = b"files/item-%d.pdf,failed,could not extract text from page %d\n"
BIG = b"file,status,error\n" + b"".join(ROW % (n, n % 40) for n in range(60_000))


class Handing:
    """An `ExtraSource` whose report is already downloaded."""

    async def get_schedule(self, kb_uuid: str) -> Schedule | None:
        return None

    async def get_report(self, job_uuid: str) -> bytes:
        return BIG


class Waiting(Handing):
    """An `ExtraSource` whose report takes a moment to come (the event loop turns)."""

    async def get_report(self, job_uuid: str) -> bytes:
        await asyncio.sleep(0.01)
        return b"file,status,error\n"


class NoMeta:
    async def get_meta(self, key: str) -> str | None:
        return None


async def test_the_loop_keeps_turning_while_a_big_report_is_summarised(tmp_path: Path) -> None:
    shelf = ReportShelf(tmp_path / "reports")
    kept = shelf.path_of(JOB)
    watcher = KbWatcher(Handing(), NoMeta(), KbWatchSettings(reports=shelf))  # type: ignore[arg-type]
    turns_after_kept = 0
    done = False

    async def ticker() -> None:
        nonlocal turns_after_kept
        while not done:
            if kept.exists():  # the report is on disk: what follows is the summary
                turns_after_kept += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    loop = asyncio.get_running_loop()
    fate, summary, _ = await watcher._keep(JOB, "kb", shelf, loop.time() + 600)
    done = True
    await task
    assert fate is ReportFate.KEPT and summary is not None and summary.rows == 60_000
    # Summarised inline, the loop would not turn between the file landing and the summary
    # (0 turns); off the loop it turns at least at each of the GIL's switches (5 ms) during
    # the parse: dozens on a quiet machine, 35 once on a loaded one (so not "> 50").
    assert turns_after_kept > 5


async def test_reports_not_kept_for_one_reason_in_a_cycle_are_one_warning(tmp_path: Path) -> None:
    """Past the time for extra reads every report of the cycle fails alike: 117 lines in one
    cycle of a 260-job storm; one line now, with how many and the first five."""
    shelf = ReportShelf(tmp_path / "reports")
    watcher = KbWatcher(Waiting(), NoMeta(), KbWatchSettings(reports=shelf))  # type: ignore[arg-type]
    done = [
        Transition(f"j{n}/failed", EventKind.FAILED, T0, f"kb{n}", "docs",
                   Job(uuid=f"j{n}", is_report_available=True))
        for n in range(7)
    ]  # fmt: skip
    past = asyncio.get_running_loop().time() - 1  # the time for extra reads is over
    with capture_logs() as logs:
        told = await watcher.with_reports(done, past)
    (line,) = [e for e in logs if e["event"] == "job_report_not_kept"]
    assert line["jobs"] == 7 and line["first"] == ["j0", "j1", "j2", "j3", "j4"]
    assert line["error"] == "time for extra reads over"
    assert all(t.report and "could not be kept" in t.report for t in told)

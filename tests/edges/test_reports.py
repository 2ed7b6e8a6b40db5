"""The reports directory: a report is kept whole under the state directory, read back byte for
byte, pruned with the history, and no name from the API reaches outside the directory."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.edges.reports import ReportShelf, reports_dir

JOB = "5f0e3c2a-9b8d-4e7f-a6b5-c4d3e2f1a0b9"


def test_reports_live_beside_the_store(tmp_path: Path) -> None:
    assert reports_dir(tmp_path / "state" / "watcher.db") == tmp_path / "state" / "reports"


async def test_a_kept_report_reads_back_byte_for_byte_and_replaces_an_older_copy(
    tmp_path: Path,
) -> None:
    shelf = ReportShelf(tmp_path / "reports")
    assert await shelf.read(JOB) is None
    await shelf.keep(JOB, b"old")
    data = b"file,error\n\xff\xfe binary-safe\n"
    path = await shelf.keep(JOB, data)
    assert await shelf.read(JOB) == data and path.name == f"{JOB}.csv"
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [f"{JOB}.csv"]  # no temp left
    assert (tmp_path / "reports").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "x" * 101, "job.csv", "ü"])
async def test_a_job_uuid_that_is_not_a_plain_name_is_refused(tmp_path: Path, name: str) -> None:
    shelf = ReportShelf(tmp_path / "reports")
    with pytest.raises(ValueError, match="letters, digits"):
        await shelf.keep(name, b"x")
    assert not (tmp_path / "escape").exists()


async def test_reports_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    shelf = ReportShelf(tmp_path / "reports")
    old, new = await shelf.keep("old-job", b"o"), await shelf.keep("new-job", b"n")
    then = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    os.utime(old, (then, then))
    assert await shelf.prune(datetime(2026, 6, 1, tzinfo=UTC)) == 1
    assert not old.exists() and new.exists()
    assert await ReportShelf(tmp_path / "none").prune(datetime(2026, 6, 1, tzinfo=UTC)) == 0

"""`watcher report JOB [--output FILE]`: a finished job's per-file report, as it was kept.

The report comes from the reports directory beside the store (`watcher.edges.reports`); the
store tells a job it never saw from a job that has no report kept, so each gets its own
error. The bytes are given back unchanged: to stdout, or written whole to `--output`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from watcher.config import Config
from watcher.core.errors import WatcherError
from watcher.edges.reports import ReportShelf, reports_dir
from watcher.service.runtime import utcnow
from watcher.service.stores import open_store, store_absent


class NoReport(WatcherError):
    """The job is unknown, or it has no report kept."""


async def kept_report(config: Config, job_uuid: str) -> bytes:
    """The kept report of `job_uuid`; `NoReport` saying why there is none."""
    shelf = ReportShelf(reports_dir(config.state.path))
    try:
        data = await shelf.read(job_uuid)
    except ValueError as exc:
        raise NoReport(f"{job_uuid!r} is not a job uuid ({exc})") from None
    if data is not None:
        return data
    if store_absent(config):
        raise NoReport(f"no state store at {config.state.path}: the watcher has not run there")
    store = await open_store(config, utcnow(), integrity_check=False)
    try:
        known = await store.job(job_uuid)
    finally:
        await store.close()
    if known is None:
        raise NoReport(f"unknown job {job_uuid}: the store at {config.state.path} never saw it")
    raise NoReport(
        f"job {job_uuid} has no per-file report kept: DigitalOcean offered none "
        "(is_report_available), it could not be fetched, or it was pruned with the history"
    )


async def write_report(config: Config, job_uuid: str, output: Path | None) -> int:
    """Print or write the report; 0 when given back (errors raise `NoReport`)."""
    data = await kept_report(config, job_uuid)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    _write_whole(output, data)
    return 0


def _write_whole(output: Path, data: bytes) -> None:
    """Write `data` to `output` through a temporary file in its directory, renamed into place."""
    folder = output.absolute().parent
    try:
        fd, temp = tempfile.mkstemp(prefix=".report-", dir=folder)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temp, output)
    except OSError as exc:
        raise NoReport(f"--output {output}: {exc.strerror or exc}") from None

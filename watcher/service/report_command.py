"""`watcher report JOB [--output FILE]`: a finished job's per-file report, as it was kept.

The report comes from the reports directory beside the store (`watcher.edges.reports`); the
store tells a job it never saw from a job that has no report kept, so each gets its own
error. The bytes are given back unchanged when piped or written to `--output`; on a terminal
the text is made inert first (`watcher.core.inert`): a report's error texts come from outside
and must not move the cursor, set the title or clear the screen. `--output` never replaces an
existing file unless `--force` is given, and then writes into it (its mode, owner and links
stay); a new file that could not be written whole is removed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

from watcher.config import Config
from watcher.core.errors import WatcherError
from watcher.core.inert import inert
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


async def write_report(
    config: Config,
    job_uuid: str,
    output: Path | None,
    *,
    force: bool = False,
    stdout: BinaryIO | None = None,
) -> int:
    """Print or write the report; 0 when given back (errors raise `NoReport`). On a terminal
    `stdout` gets the text made inert (newlines kept); piped, the bytes unchanged."""
    if output is not None and not force:
        _refuse_existing(output)
    data = await kept_report(config, job_uuid)
    if output is None:
        out = sys.stdout.buffer if stdout is None else stdout
        out.write(_for_terminal(data) if out.isatty() else data)
        out.flush()
        return 0
    _write_whole(output, data, replace=force)
    return 0


def _refuse_existing(output: Path) -> None:
    if os.path.lexists(output):
        raise NoReport(f"--output {output}: the file exists (remove it, or add --force)")


def _for_terminal(data: bytes) -> bytes:
    """The report as a terminal may show it: no control, bidi or format character."""
    text = data.decode("utf-8", errors="replace")
    return inert(text, newlines=True).encode("utf-8")


def _write_whole(output: Path, data: bytes, *, replace: bool) -> None:
    """Write `data` to `output`: a new file (never over one that appeared meanwhile), or with
    `replace` an existing one overwritten in place (its mode, owner and links stay). A new
    file that could not be written whole is removed."""
    existed = output.exists()
    try:
        out = output.open("wb" if replace else "xb")
    except OSError as exc:
        raise NoReport(f"--output {output}: {exc.strerror or exc}") from None
    try:
        with out:
            out.write(data)
    except OSError as exc:
        if not existed:
            output.unlink(missing_ok=True)
        raise NoReport(f"--output {output}: {exc.strerror or exc}") from None

"""A finished job's per-file report (the CSV behind `details_signed_url`): what an alert says
of it. Pure.

DigitalOcean documents no columns for the report. The summary recognises, case-insensitively,
an error column (`error`, `error_message`, `error_msg`, `reason`, `message`, `details`) and
optionally a status column (`status`, `state`, `result`); a row counts as an error when its
error text is not empty, or its status reads failed/error/skipped. Without a recognised error
column the alert says only that the report was kept.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from watcher.core.inert import inert

TOP = 3
"""How many of the most frequent errors an alert lists."""
MAX_ERROR = 160
_ERROR_COLUMNS = ("error", "error_message", "error_msg", "reason", "message", "details")
_STATUS_COLUMNS = ("status", "state", "result")
_BAD_STATUS = ("fail", "error", "skip")


class ReportFate(StrEnum):
    """What became of a finished job's report."""

    KEPT = "kept"
    NOT_KEPT = "not_kept"  # the report exists but could not be fetched or written
    NO_ROOM = "no_room"  # the report exists but the API budget had no room to fetch it


@dataclass(frozen=True, slots=True)
class ErrorSummary:
    """The most frequent errors of a report: (error text, rows) worst first, and the totals."""

    top: tuple[tuple[str, int], ...]
    error_rows: int
    rows: int


def summarise(data: bytes, top: int = TOP) -> ErrorSummary | None:
    """The most frequent errors in a CSV report; None when its columns are not recognised
    (or it is not CSV text). Never raises."""
    try:
        text = data.decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        columns = {name.strip().lower(): name for name in reader.fieldnames or ()}
    except (UnicodeDecodeError, csv.Error):
        return None
    error_col = next((columns[c] for c in _ERROR_COLUMNS if c in columns), None)
    status_col = next((columns[c] for c in _STATUS_COLUMNS if c in columns), None)
    if error_col is None:
        return None
    counts: Counter[str] = Counter()
    rows = 0
    try:
        for row in reader:
            rows += 1
            error = " ".join((row.get(error_col) or "").split())
            status = (row.get(status_col) or "").lower() if status_col else ""
            if error or any(word in status for word in _BAD_STATUS):
                counts[error or f"({status})"] += 1
    except csv.Error:
        return None
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ErrorSummary(tuple(ranked[:top]), sum(counts.values()), rows)


def report_note(job_uuid: str, fate: ReportFate, summary: ErrorSummary | None) -> str:
    """The lines an alert carries about the report (plain text; outside text made inert)."""
    if fate is ReportFate.NO_ROOM:
        return (
            "A per-file report exists but was not kept: the API's rate limit had no room for "
            "it beside the polling (it is on DigitalOcean's page of the job while the job is "
            "among the knowledge base's last 15)."
        )
    if fate is ReportFate.NOT_KEPT:
        return (
            "A per-file report exists but could not be kept (it is on DigitalOcean's page of "
            "the job while the job is among the knowledge base's last 15)."
        )
    lines = [f"Per-file report kept: watcher report {job_uuid}"]
    if summary is not None and summary.top:
        lines.append(f"Most frequent errors ({summary.error_rows:,} of {summary.rows:,} rows):")
        for error, count in summary.top:
            text = inert(error)
            text = text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"
            lines.append(f"{count:,} × {text}")
    return "\n".join(lines)

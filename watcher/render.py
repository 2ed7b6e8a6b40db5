"""Rendering alerts: a title and a markdown body for each transition. Pure.

Everything that comes from the API (KB names, error messages) is escaped for markdown, and
markdown-to-HTML targets then escape HTML, so an error text cannot inject links or markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import quote

from watcher.model import DataSourceJob, EventKind, Job, Severity
from watcher.state import Message, StallReason, Transition

DASHBOARD = "https://cloud.digitalocean.com/gen-ai/knowledge-bases"

_HEADLINE = {
    EventKind.STARTED: "indexing started",
    EventKind.COMPLETED: "indexing completed",
    EventKind.NO_CHANGES: "indexing found no changes",
    EventKind.PARTIAL: "indexing finished with gaps",
    EventKind.FAILED: "indexing failed",
    EventKind.CANCELLED: "indexing cancelled",
    EventKind.STALLED: "indexing stalled",
    EventKind.RECOVERED: "indexing moving again",
    EventKind.API_UNREACHABLE: "DigitalOcean API unreachable",
    EventKind.API_RECOVERED: "DigitalOcean API reachable again",
}

_STALL_TEXT = {
    StallReason.PENDING_TOO_LONG: "still pending",
    StallReason.NO_PROGRESS: "no progress",
    StallReason.MAX_RUNTIME: "running longer than the maximum runtime",
}

_ICON = {
    Severity.FAILURE: "❌",
    Severity.WARNING: "⚠️",
    Severity.SUCCESS: "✅",
    Severity.INFO: "ℹ️",
}

# Characters that start markup anywhere in a line; `-`, `+` and `.` matter only at the start
# of a line, and line breaks are flattened, so words like "support-articles" stay readable.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()#|<>~])")
_MAX_ERROR_TEXT = 500


def escape(text: str) -> str:
    """Escape markdown syntax in text from outside (KB names, API error messages)."""
    flat = " ".join(text.split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat)


def render(transition: Transition, dashboard: str = DASHBOARD) -> Message:
    """One alert for one transition: title, markdown body, severity."""
    kind = transition.kind
    title = f"{_ICON[kind.severity]} {_subject(transition)}: {_HEADLINE[kind]}"
    lines = [f"**{_HEADLINE[kind].capitalize()}**" + _stall_suffix(transition), ""]
    lines += _facts(transition, dashboard)
    if transition.job is not None and kind is not EventKind.STARTED:
        lines += _sources(transition.job)
    if transition.detail:
        lines += ["", escape(transition.detail)]
    return Message(title=title, body="\n".join(lines).rstrip() + "\n", severity=kind.severity)


def render_group(transitions: Sequence[Transition], dashboard: str = DASHBOARD) -> Message:
    """One alert listing many transitions (storm control); severity is the worst of them."""
    worst = max((t.severity for t in transitions), key=_SEVERITY_ORDER.index)
    title = f"{_ICON[worst]} {len(transitions)} indexing events"
    lines = [f"**{len(transitions)} indexing events in one poll**", ""]
    for t in transitions:
        job = f" job {_code(t.job_uuid)}" if t.job_uuid else ""
        link = f" ([open]({kb_link(dashboard, t.kb_uuid)}))" if t.kb_uuid else ""
        lines.append(
            f"- {_ICON[t.severity]} {_subject(t, escaped=True)}{job}: {t.kind.value}{link}"
        )
    return Message(title=title, body="\n".join(lines) + "\n", severity=worst)


_SEVERITY_ORDER = [Severity.INFO, Severity.SUCCESS, Severity.WARNING, Severity.FAILURE]


def kb_link(dashboard: str, kb_uuid: str) -> str:
    """The knowledge base's page in the DigitalOcean control panel."""
    return f"{dashboard}/{quote(kb_uuid, safe='')}"


def _subject(t: Transition, *, escaped: bool = False) -> str:
    if t.kb_uuid is None:
        return "gradient-watcher"
    name = t.kb_name or t.kb_uuid
    return escape(name) if escaped else _TITLE_SPECIAL.sub(r"\\\1", " ".join(name.split()))


# Titles go to apprise as markdown too, and services without a title field blend the title
# into the body before converting it: links, images, HTML and code spans must not survive
# there. Only those characters are escaped, so common names (`product-docs`) stay readable
# where the title is shown as plain text (an email subject).
_TITLE_SPECIAL = re.compile(r"([\\`\[\]<>])")


def _stall_suffix(t: Transition) -> str:
    if t.kind in (EventKind.STALLED, EventKind.RECOVERED) and t.stall_reason is not None:
        return f" ({_STALL_TEXT[t.stall_reason]})"
    return ""


def _facts(t: Transition, dashboard: str) -> list[str]:
    lines: list[str] = []
    if t.kb_uuid is not None:
        lines.append(f"- Knowledge base: {escape(t.kb_name or '(unnamed)')} ({_code(t.kb_uuid)})")
    job = t.job
    if job is not None:
        lines.append(f"- Job: {_code(job.uuid)}")
        lines.append(f"- Outcome: {_state_text(job)}")
        duration = _duration(job, t.at)
        if duration is not None:
            lines.append(f"- Duration: {format_duration(duration)}")
        if job.total_datasources:
            lines.append(
                f"- Data sources: {job.completed_datasources or 0}/{job.total_datasources} done"
            )
        tokens = job.total_tokens if job.total_tokens is not None else job.tokens
        if tokens is not None:
            lines.append(f"- Tokens: {tokens:,}")
        if job.data_source_jobs or job.total_items_indexed is not None:
            lines.append(
                f"- Items: {job.items_indexed:,} indexed, {job.items_failed:,} failed, "
                f"{job.items_skipped:,} skipped"
            )
    if t.kb_uuid is not None:
        lines.append(f"- Control panel: {kb_link(dashboard, t.kb_uuid)}")
    return lines


def _state_text(job: Job) -> str:
    phase = job.phase_text.removeprefix("BATCH_JOB_PHASE_")
    status = job.status_text.removeprefix("INDEX_JOB_STATUS_")
    return f"{escape(status.lower())} (phase {escape(phase.lower())})"


def _duration(job: Job, at: datetime) -> timedelta | None:
    start = job.started_at or job.created_at
    if start is None:
        return None
    end = job.finished_at or (at if not job.is_terminal else job.updated_at) or at
    return max(end - start, timedelta(0))


def format_duration(delta: timedelta) -> str:
    """`1h 02m 05s` style, dropping leading zero units."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _sources(job: Job) -> list[str]:
    """One bullet per data source, its error under it: lists read well on every service
    (Slack and plain-text email have no tables)."""
    if not job.data_source_jobs:
        return []
    lines = ["", "**Data sources**", ""]
    for ds in job.data_source_jobs:
        lines.append(_source_line(ds))
        text = ": ".join(x for x in (ds.error_msg, ds.error_details) if x)
        if text:
            lines.append(f"  - error: {escape(_clip(text))}")
    return lines


def _source_line(ds: DataSourceJob) -> str:
    status = ds.status_text.removeprefix("DATA_SOURCE_STATUS_").lower()
    return (
        f"- {_code(ds.data_source_uuid)} {escape(status)}: {ds.indexed_item_count or 0:,} "
        f"indexed, {ds.failed_item_count or 0:,} failed, {ds.skipped_item_count or 0:,} skipped"
    )


def _code(value: str | None) -> str:
    """An identifier as a code span; backticks and line breaks from outside are dropped."""
    clean = " ".join((value or "?").replace("`", "").split())
    return f"`{clean}`"


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"

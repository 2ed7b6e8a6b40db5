"""Rendering alerts: a plain-text title and a body in markdown, plain text and HTML. Pure.

The body is built as a few blocks (`watcher.core.markup`) and written out in every format, so the
notifier can hand each service the format apprise will use for it without converting
anything. Text from outside (KB names, API error messages, unknown enum values) is made inert
and escaped for each format by the writer; the title is plain text on one line, never escaped
(a subject line or a title field shows it as is; the notifier escapes it when a service blends
the title into the body).

Given a target's `Budget`, an alert is fitted into it (`watcher.core.fit`), in each format: the
headline and the facts always come first, data sources (and a grouped alert's events) are
listed worst first and cut with a count of what was left out, error texts are shortened.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from watcher.core.cost import eta
from watcher.core.durations import format_elapsed
from watcher.core.fit import Entry, Shape, clip, fit_shaped, more_text
from watcher.core.incident_text import (
    ESCALATED_HEADLINE,
    REMINDER_HEADLINE,
    incident_lines,
    open_problem_text,
)
from watcher.core.inert import inert
from watcher.core.markup import (
    Block,
    Bullets,
    Item,
    Para,
    Span,
    code,
    escape_markdown,
    link,
    plain,
    strong,
    write,
)
from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Severity
from watcher.core.outbox import BodyFormat, Budget, Message, Part
from watcher.core.state import OpenProblem, StallReason, Transition

DASHBOARD = "https://cloud.digitalocean.com/gen-ai/knowledge-bases"

_HEADLINE = {
    EventKind.STARTED: "indexing started",
    EventKind.COMPLETED: "indexing completed",
    EventKind.NO_CHANGES: "indexing found no changes",
    EventKind.PARTIAL: "indexing partial (finished with gaps)",
    EventKind.FAILED: "indexing failed",
    EventKind.CANCELLED: "indexing cancelled",
    EventKind.STALLED: "indexing stalled",
    EventKind.RECOVERED: "indexing moving again",
    EventKind.CORRECTED: "indexing outcome corrected",
    EventKind.API_UNREACHABLE: "DigitalOcean API unreachable",
    EventKind.API_RECOVERED: "DigitalOcean API reachable again",
    EventKind.DELIVERY_FAILING: "alerts not getting through",
    EventKind.DELIVERY_RECOVERED: "alerts getting through again",
    EventKind.KNOWLEDGE_BASE_MISSING: "knowledge base not found in the account",
    EventKind.KNOWLEDGE_BASE_FOUND: "knowledge base found again",
    EventKind.DATABASE_UNHEALTHY: "knowledge base database not online",
    EventKind.DATABASE_RECOVERED: "knowledge base database online again",
    EventKind.SILENCE_ENDED: "silence ended, problems still open",
    EventKind.SCHEDULE_MISSED: "scheduled indexing did not run",
    EventKind.SCHEDULE_DISABLED: "scheduled indexing turned off",
    EventKind.STALE: "knowledge base stale (no successful indexing lately)",
    EventKind.FRESH: "knowledge base fresh again",
    EventKind.REMINDER: REMINDER_HEADLINE,
    EventKind.ESCALATED: ESCALATED_HEADLINE,
    EventKind.COST_SPIKE: "indexing cost spike",
    EventKind.REMEDIATED: "stalled job remediated",
    EventKind.DIGEST: "indexing digest",
}
_ETA_KINDS = frozenset({EventKind.STALLED, EventKind.RECOVERED})  # a running job's alerts
# `recovered` for a job that ended (sent alone to a route that did not ask for the outcome).
RECOVERED_BY_ENDING = "indexing finished after a stall"

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
_MAX_TITLE_NAME = 120


def escape(text: str) -> str:
    """Escape markdown syntax in text from outside (KB names, API error messages)."""
    return escape_markdown(text)


def plain_title(title: str) -> str:
    """A title as plain text on one line: inert, whitespace runs collapsed."""
    return inert(" ".join(title.split()))


def message(title: str, doc: Sequence[Block], severity: Severity) -> Message:
    """A message with `doc` written in every body format and `title` made plain and inert."""
    return _message(plain_title(title), lambda fmt: write(tuple(doc), fmt), severity)


def _message(title: str, body: Callable[[BodyFormat], str], severity: Severity) -> Message:
    if isinstance(body, _FittedBody) and body.counted is not None:  # the service's own first
        written = {fmt: body(fmt) for fmt in sorted(_FORMATS, key=lambda f: f is not body.counted)}
    else:
        written = {fmt: body(fmt) for fmt in _FORMATS}
    markdown, text, html = (written[fmt] for fmt in _FORMATS)
    left_out = body.left_out if isinstance(body, _FittedBody) else 0
    return Message(title, markdown, severity, text, html, left_out=left_out)


_FORMATS = (BodyFormat.MARKDOWN, BodyFormat.TEXT, BodyFormat.HTML)


def render(
    transition: Transition, dashboard: str = DASHBOARD, budget: Budget | None = None
) -> Message:
    """One alert for one transition: title, body in every format, severity; within `budget`."""
    budget = budget or Budget()
    kind = transition.kind
    if kind is EventKind.SILENCE_ENDED:
        return _render_silence_end(transition, dashboard, budget)
    if kind is EventKind.DIGEST:  # its text was written when it was due (`core.digest`)
        lead, *lines = (transition.detail or "Indexing digest").split("\n")
        spans = [(plain(line),) for line in lines]
        return render_list("gradient-watcher: indexing digest", lead, spans, Severity.INFO, budget)
    severity = _severity(transition)
    title = _fit_title(f"{_ICON[severity]} {_subject(transition)}: {_headline(transition)}", budget)
    head: list[Block] = [
        Para((strong(_sentence(_headline(transition)) + _stall_suffix(transition)),))
    ]
    head += [Para((plain(line),)) for line in _stall_story(transition)]
    head += [Para((plain(line),)) for line in incident_lines(transition)]
    if facts := _facts(transition, dashboard):
        head.append(Bullets(facts))
    if transition.detail:
        head.append(Para((plain(transition.detail),)))
    head += _report(transition.report)
    job = transition.job
    names = dict(transition.source_names)
    rows = _sources(job, names) if job is not None and kind is not EventKind.STARTED else []
    heading = Para((strong("Data sources"),))
    fitted = _fitted(head, rows, "data sources", heading, title, budget)
    return _message(title, fitted, severity)


def render_group(
    transitions: Sequence[Transition],
    dashboard: str = DASHBOARD,
    budget: Budget | None = None,
    part: Part | None = None,
) -> Message:
    """One alert listing many transitions (storm control), worst first; severity is the worst
    of them; within `budget`. `part`: which of the messages a storm too long for one is split
    into (`watcher.core.plan`) this one is, said in its title and first line."""
    budget = budget or Budget()
    worst = max((t.severity for t in transitions), key=_SEVERITY_ORDER.index)
    label = f" ({part.label()})" if part is not None else ""
    count = f"{len(transitions)} indexing event" + ("" if len(transitions) == 1 else "s")
    title = _fit_title(f"{_ICON[worst]} {count}{label}", budget)
    lead = f" ({part.lead()})" if part is not None else ""
    head: list[Block] = [Para((strong(count), plain(lead)))]
    ordered = sorted(transitions, key=worst_first)
    rows = [_Row(_group_line(t, dashboard), None, t.kind.value) for t in ordered]
    fitted = _fitted(head, rows, "events", None, title, budget)
    return _message(title, fitted, worst)


def worst_first(transition: Transition) -> int:
    """The sort key that puts the worst severity first (a stable sort keeps the rest's order)."""
    return -_SEVERITY_ORDER.index(transition.severity)


def render_list(
    title: str,
    lead: str,
    lines: Sequence[tuple[Span, ...]],
    severity: Severity,
    budget: Budget | None = None,
    *,
    tail: Sequence[tuple[Span, ...]] = (),
    tail_heading: str | None = None,
) -> Message:
    """A message of a bold `lead` and a list of `lines` (then, under `tail_heading`, the
    `tail` lines), cut with a count of what was left out to fit `budget` (a held-then-released
    batch, a digest)."""
    budget = budget or Budget()
    title = _fit_title(f"{_ICON[severity]} {title}", budget)
    head: list[Block] = [Para((strong(lead),))]
    spans = list(lines)
    if tail:
        spans += [(strong(tail_heading or "Also"),), *tail]
    rows = [_Row(line, None, "") for line in spans]  # "… and 9 more lines", no tally
    fitted = _fitted(head, rows, "lines", None, title, budget)
    return _message(title, fitted, severity)


def group_line(t: Transition, dashboard: str = DASHBOARD) -> tuple[Span, ...]:
    """One transition as a line of a grouped alert (`- ❌ kb job `x`: failed (open)`)."""
    return _group_line(t, dashboard)


def worst(severities: Sequence[Severity]) -> Severity:
    """The worst of `severities` (INFO when there are none)."""
    return max(severities, key=_SEVERITY_ORDER.index, default=Severity.INFO)


def render_test(now: datetime) -> Message:
    """The alert `watcher test-notify` sends."""
    events = (
        plain("Events this route can receive: see "),
        code("events ="),
        plain(" in its config"),
    )
    doc = (
        Para((strong("This is a test alert from gradient-watcher."),)),
        Bullets((Item((plain(f"Sent at: {now.isoformat(timespec='seconds')}"),)), Item(events))),
        Para((plain("If you can read this, the route works."),)),
    )
    return message("🧪 gradient-watcher test alert", doc, Severity.INFO)


def _render_silence_end(t: Transition, dashboard: str, budget: Budget) -> Message:
    """What a silence hid and is still open: one line per knowledge base, worst first."""
    count = len(t.open_problems)
    title = _fit_title(f"{_ICON[t.severity]} {_subject(t)}: {_headline(t)}", budget)
    said = (plain("Silence "), code(t.silence_id or "?"), plain(f" ended; {count} "))
    noun = "problem it held is" if count == 1 else "problems it held are"
    head: list[Block] = [
        Para((strong(_sentence(_headline(t))),)),
        Para((*said, plain(noun + " still open."))),
    ]
    if t.detail:
        head.append(Para((plain(f"Its comment: {t.detail}"),)))
    ordered = sorted(t.open_problems, key=lambda p: -_SEVERITY_ORDER.index(p.problem.severity))
    rows = [_Row(_open_problem_line(p, dashboard), None, p.problem.value) for p in ordered]
    heading = Para((strong("Still open"),))
    fitted = _fitted(head, rows, "knowledge bases", heading, title, budget)
    return _message(title, fitted, t.severity)


def _open_problem_line(p: OpenProblem, dashboard: str) -> tuple[Span, ...]:
    """`❌ docs (uuid): 3 failures in a row since ... (latest failed, job j); not acknowledged
    (open)`, in the digest's words (`: failed, job j (open)` for a payload without them)."""
    job = (plain(", job "), code(p.job_uuid)) if p.job_uuid else ()
    said = open_problem_text(p)
    if said is None:
        problem: tuple[Span, ...] = (plain(f"): {p.problem.value}"), *job)
    else:
        streak, ack = said
        latest = (plain(f"): {streak} (latest {p.problem.value}"), *job, plain(")"))
        problem = (*latest, plain(f"; {ack}"))
    return (
        plain(f"{_ICON[p.problem.severity]} {p.kb_name or '(unnamed)'} ("),
        code(p.kb_uuid),
        *problem,
        plain(" ("),
        link("open", kb_link(dashboard, p.kb_uuid)),
        plain(")"),
    )


@dataclass(frozen=True, slots=True)
class _Row:
    """A list entry as spans (a data source, an event of a group), its note, its tally."""

    spans: tuple[Span, ...]
    note: str | None
    tally: str


def _fitted(
    head: Sequence[Block],
    rows: Sequence[_Row],
    noun: str,
    heading: Block | None,
    title: str,
    budget: Budget,
) -> _FittedBody:
    """Per format, the body of `head` and the list of `rows` fitted within the budget."""
    room, lines, counted = budget.body_room(title), budget.body_lines(title), budget.format
    return _FittedBody(tuple(head), tuple(rows), noun, heading, room, lines, counted)


@dataclass(slots=True)
class _FittedBody:
    """A body fitted per format (`__call__`), counting the most rows the format the target
    gets (`counted`; None: any format) left out. Once that format is fitted, the others (which
    the target never gets) list the same rows without being fitted themselves."""

    head: tuple[Block, ...]
    rows: tuple[_Row, ...]
    noun: str
    heading: Block | None
    chars: int | None
    lines: int | None
    counted: BodyFormat | None = None
    left_out: int = 0
    shape: Shape | None = None  # how the counted format was fitted

    def __call__(self, fmt: BodyFormat) -> str:
        head, rows, heading = self.head, self.rows, self.heading

        def build(kept: int, note_limit: int, cut: bool) -> str:
            blocks = list(head)
            items = [Item(row.spans, _note(row.note, note_limit)) for row in rows[:kept]]
            if cut:
                left = [Entry("", row.note, row.tally) for row in rows[kept:]]
                items.append(Item((plain(more_text(left, self.noun)),)))
            if rows and heading is not None:
                blocks.append(heading)
            if items:
                blocks.append(Bullets(tuple(items)))
            return write(tuple(blocks), fmt)

        if self.shape is not None and fmt is not self.counted:  # never sent: the same rows
            return build(*self.shape)
        notes = any(row.note for row in rows)
        text, left, shape = fit_shaped(
            build, len(rows), chars=self.chars, lines=self.lines, notes=notes
        )
        if self.counted is None or self.counted is fmt:
            self.left_out = max(self.left_out, left)
        if fmt is self.counted:
            self.shape = shape
        return text


def _report(note: str | None) -> list[Block]:
    """A finished job's report note (`watcher.core.report.report_note`): what became of the
    report, then its most frequent errors as a list."""
    if not note:
        return []
    first, *errors = note.splitlines()
    blocks: list[Block] = [Para((plain(first),))]
    if errors:
        blocks.append(Para((plain(errors[0]),)))
        if errors[1:]:
            blocks.append(Bullets(tuple(Item((plain(line),)) for line in errors[1:])))
    return blocks


def _note(note: str | None, limit: int) -> tuple[Item, ...]:
    if not note or limit <= 0:
        return ()
    return (Item((plain(f"error: {clip(note, limit)}"),)),)


def _group_line(t: Transition, dashboard: str) -> tuple[Span, ...]:
    spans = [plain(f"{_ICON[t.severity]} {_subject(t)}")]
    if t.job_uuid:
        spans += [plain(" job "), code(t.job_uuid)]
    spans.append(plain(f": {t.kind.value}"))
    if t.kind.is_terminal and t.stall_reason is not None:
        spans.append(plain(" after a stall"))
    if t.kb_uuid:
        spans += [plain(" ("), link("open", kb_link(dashboard, t.kb_uuid)), plain(")")]
    return tuple(spans)


def _fit_title(title: str, budget: Budget) -> str:
    title = plain_title(title)
    return clip(title, budget.title) if budget.title is not None else title


def headline(t: Transition) -> str:
    """The few words that say what happened (the end of an alert's title)."""
    return _headline(t)


def _headline(t: Transition) -> str:
    if t.kind is EventKind.RECOVERED and t.job is not None and t.job.is_terminal:
        return RECOVERED_BY_ENDING
    return _HEADLINE[t.kind]


def _sentence(headline: str) -> str:
    """The headline as the start of a sentence; names keep their capitals (DigitalOcean API)."""
    return headline[:1].upper() + headline[1:]


def _severity(t: Transition) -> Severity:
    """A stall that ended with the job carries the outcome's severity (a failure stays red)."""
    if t.kind is EventKind.RECOVERED and t.job is not None and t.job.outcome is not None:
        return t.job.outcome.severity
    if t.kind is EventKind.REMINDER and t.incident is not None:  # as bad as what it reminds of
        return t.incident.last_kind.severity
    return t.kind.severity


def _stall_story(t: Transition) -> list[str]:
    """An outcome (or `recovered` by ending) of a job that had stalled says so, and how long
    nothing moved before it ended."""
    ended = t.kind.is_terminal or (t.job is not None and t.job.is_terminal)
    if t.stall_reason is None or not ended or t.kind is EventKind.STALLED:
        return []
    still = ""
    if t.stalled_since is not None and t.at > t.stalled_since:
        still = f"; nothing had moved for {format_elapsed(t.at - t.stalled_since)}"
    return [f"It had stalled ({_STALL_TEXT[t.stall_reason]}){still} before it ended."]


_SEVERITY_ORDER = [Severity.INFO, Severity.SUCCESS, Severity.WARNING, Severity.FAILURE]


def kb_link(dashboard: str, kb_uuid: str) -> str:
    """The knowledge base's page in the DigitalOcean control panel."""
    return f"{dashboard}/{quote(kb_uuid, safe='')}"


def _subject(t: Transition) -> str:
    """Who the alert is about: a route, a knowledge base (its name, shortened if very long),
    or the watcher itself."""
    if t.route is not None:
        return f"gradient-watcher: route {t.route}"
    account = f" [{t.account}]" if t.account is not None else ""
    if t.kb_uuid is None:
        return f"gradient-watcher{account}"
    name = " ".join((t.kb_name or t.kb_uuid).split())
    name = name if len(name) <= _MAX_TITLE_NAME else name[: _MAX_TITLE_NAME - 1] + "…"
    return name + account


def _stall_suffix(t: Transition) -> str:
    """Why it stalled: `(no progress)` on a stall, `(it had stalled: no progress)` on a
    recovery (the bare reason under "moving again" read as its state)."""
    if t.stall_reason is None:
        return ""
    if t.kind is EventKind.STALLED:
        return f" ({_STALL_TEXT[t.stall_reason]})"
    if t.kind is EventKind.RECOVERED:
        return f" (it had stalled: {_STALL_TEXT[t.stall_reason]})"
    return ""


def _facts(t: Transition, dashboard: str) -> tuple[Item, ...]:
    lines: list[tuple[Span, ...]] = []
    if t.account is not None:
        lines.append((plain(f"Account: {t.account}"),))
    if t.kb_uuid is not None:
        lines.append(
            (plain(f"Knowledge base: {t.kb_name or '(unnamed)'} ("), code(t.kb_uuid), plain(")"))
        )
    job = t.job
    if job is not None:
        lines.append((plain("Job: "), code(job.uuid)))
        if t.kind is not EventKind.REMEDIATED:  # it names the stalled job, not its state
            lines.append((plain(f"Outcome: {_state_text(job)}"),))
        duration = _duration(job, t.api_at)
        if duration is not None:
            lines.append((plain(f"Duration: {format_elapsed(duration)}"),))
        if job.total_datasources:
            done = f"{job.completed_datasources or 0}/{job.total_datasources}"
            lines.append((plain(f"Data sources: {done} done"),))
        tokens = job.total_tokens if job.total_tokens is not None else job.tokens
        if tokens is not None:
            lines.append((plain(f"Tokens: {tokens:,}"),))
        if t.cost is not None:
            lines.append((plain(f"Cost: {t.cost.text()}"),))
        if t.api_at is not None and t.kind in _ETA_KINDS and not job.is_terminal:
            lines.append((plain(eta(job, t.api_at).text()),))
        if job.data_source_jobs or job.total_items_indexed is not None:
            items = (
                f"Items: {job.items_indexed:,} indexed, {job.items_failed:,} failed, "
                f"{job.items_skipped:,} skipped"
            )
            lines.append((plain(items),))
    lines += _kb_facts(t)
    if t.kb_uuid is not None:
        url = kb_link(dashboard, t.kb_uuid)
        lines.append((plain("Control panel: "), link(url, url)))
    return tuple(Item(spans) for spans in lines)


def _kb_facts(t: Transition) -> list[tuple[Span, ...]]:
    """What the extra reads know of the KB: its sources by name (when no per-source rows
    follow), its database when not online, the agents it feeds."""
    lines: list[tuple[Span, ...]] = []
    listed = t.job is not None and t.job.data_source_jobs and t.kind is not EventKind.STARTED
    if t.source_names and not listed:
        lines.append((plain("Sources: " + ", ".join(label for _, label in t.source_names)),))
    if t.database_status is not None:
        lines.append((plain(f"Database: {t.database_status}"), *_database_note(t)))
    if t.agents:
        lines.append((plain("Feeds agents: " + ", ".join(t.agents)),))
    return lines


def _database_note(t: Transition) -> tuple[Span, ...]:
    if t.kind in (EventKind.DATABASE_UNHEALTHY, EventKind.DATABASE_RECOVERED):
        return ()
    return (plain(" (the knowledge base's database is not online)"),)


def _state_text(job: Job) -> str:
    phase = job.phase_text.removeprefix("BATCH_JOB_PHASE_")
    status = job.status_text.removeprefix("INDEX_JOB_STATUS_")
    return f"{status.lower()} (phase {phase.lower()})"


def _duration(job: Job, api_at: datetime | None) -> timedelta | None:
    """How long the job has run, on DigitalOcean's clock alone: to its `finished_at` (or its
    last `updated_at`) once it ended, else to `api_at` (the API's clock when it was seen; an
    event stored before that was recorded falls back to `updated_at`). Never the wall clock:
    with the API's clock minutes behind, wall minus `started_at` read minutes for a job that
    started a second ago."""
    start = job.started_at or job.created_at
    if start is None:
        return None
    end = (job.finished_at or job.updated_at) if job.is_terminal else (api_at or job.updated_at)
    return None if end is None else max(end - start, timedelta(0))


def _sources(job: Job, names: dict[str, str]) -> list[_Row]:
    """One bullet per data source, worst first, its error as a note under it: lists read well
    on every service (Slack and plain-text email have no tables)."""
    ordered = sorted(job.data_source_jobs, key=lambda ds: _SOURCE_ORDER.get(ds.status, 3))
    return [
        _Row(
            _source_line(ds, names),
            ": ".join(x for x in (ds.error_msg, ds.error_details) if x) or None,
            _status_word(ds),
        )
        for ds in ordered
    ]


_SOURCE_ORDER = {
    DataSourceStatus.FAILED: 0,
    DataSourceStatus.PARTIALLY_UPDATED: 1,
    DataSourceStatus.CANCELLED: 2,
    DataSourceStatus.NOT_UPDATED: 2,
    DataSourceStatus.IN_PROGRESS: 4,
    DataSourceStatus.UPDATED: 5,
}


def _status_word(ds: DataSourceJob) -> str:
    return ds.status_text.removeprefix("DATA_SOURCE_STATUS_").lower()


def _source_line(ds: DataSourceJob, names: dict[str, str]) -> tuple[Span, ...]:
    counts = (
        f" {_status_word(ds)}: {ds.indexed_item_count or 0:,} indexed, "
        f"{ds.failed_item_count or 0:,} failed, {ds.skipped_item_count or 0:,} skipped"
    )
    name = names.get(ds.data_source_uuid or "")
    if name is not None:
        return (plain(name), plain(counts))
    return (code(ds.data_source_uuid or "?"), plain(counts))

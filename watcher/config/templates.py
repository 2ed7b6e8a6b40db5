"""A route's title and body templates: Jinja2, sandboxed, strict, checked at load.

`compile_template` parses a template in Jinja2's `ImmutableSandboxedEnvironment` (no access
to attributes that start with `_`, no calls that change data, no file loader: a template
cannot read the disk, import or reach Python internals) with `StrictUndefined` (a misspelt
name is an error, not an empty string). A syntax error is a `TemplateFailed` with the line.

`check_template` renders a compiled template for a sample of each event the route receives,
so that `check-config` reports a template that would fail at send time (a name that does
not exist, `job.uuid` for an event that has no job) with the route, the line and the event.
At send time (`Compiled.render`) any error is a `TemplateFailed`: the core then sends the
built-in text instead (`watcher.core.present`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Status
from watcher.core.outbox import BodyFormat
from watcher.core.present import TemplateFailed, Verbatim, template_context
from watcher.core.render import DASHBOARD, render
from watcher.core.state import StallReason, Transition

_NAME = "<template>"
_MAX_OUTPUT = 100_000  # characters: a runaway loop is an error, not a megabyte alert


class Compiled:
    """A compiled template that renders with every printed value escaped (see `Template`).
    Renders one at a time (the escape of the render in progress is held here): the watcher
    renders on its event loop only."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._escape: Callable[[str], str] = str
        self._env = ImmutableSandboxedEnvironment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            finalize=self._finalize,
        )
        try:
            self._template = self._env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateFailed(exc.message or "syntax error", exc.lineno) from None

    def _finalize(self, value: object) -> object:
        if isinstance(value, Verbatim):
            return str(value)
        if value is None:
            return ""
        return self._escape(value if isinstance(value, str) else str(value))

    def render(self, context: Mapping[str, Any], escape: Callable[[str], str]) -> str:
        """The template rendered over `context`, each printed value through `escape`;
        `TemplateFailed` (with the template's line when known) for any error."""
        self._escape = escape
        try:
            text = self._template.render(dict(context))
        except Exception as exc:  # the template's own code: any error is the template's
            raise TemplateFailed(_reason(exc), _line(exc.__traceback__)) from None
        finally:
            self._escape = str
        if len(text) > _MAX_OUTPUT:
            raise TemplateFailed(f"rendered more than {_MAX_OUTPUT:,} characters")
        return text


def compile_template(source: str) -> Compiled:
    """Parse `source`; `TemplateFailed` with the line for a syntax error."""
    return Compiled(source)


def check_template(template: Compiled, events: Iterable[EventKind]) -> TemplateFailed | None:
    """The first failure of `template` over a sample of each of `events` (None: none fails);
    the reason names the event."""
    for kind in events:
        sample = sample_transition(kind)
        builtin = render(sample, DASHBOARD)
        for fmt in (BodyFormat.MARKDOWN, BodyFormat.TEXT):
            try:
                template.render(template_context(sample, DASHBOARD, builtin, fmt), str)
            except TemplateFailed as failed:
                return TemplateFailed(f"{failed.reason} (for a {kind.value} event)", failed.line)
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, jinja2.UndefinedError | jinja2.exceptions.SecurityError):
        return str(exc.message or type(exc).__name__)
    return f"{type(exc).__name__}: {exc}"


def _line(trace: TracebackType | None) -> int | None:
    """The template's line in a traceback (Jinja2 maps its frames back to the source)."""
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == _NAME:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


_SAMPLE_AT = datetime(2026, 1, 1, tzinfo=UTC)
_SAMPLE_KB = "00000000-0000-4000-8000-000000000000"
_KB_EVENTS = frozenset(
    {
        EventKind.KNOWLEDGE_BASE_MISSING,
        EventKind.KNOWLEDGE_BASE_FOUND,
        EventKind.SCHEDULE_MISSED,
        EventKind.SCHEDULE_DISABLED,
        EventKind.STALE,
        EventKind.FRESH,
    }
)


def sample_transition(kind: EventKind) -> Transition:
    """An event of `kind` with every field an event of that kind carries."""
    if not kind.is_about_a_job:
        kb = kind in _KB_EVENTS
        delivery = kind in (EventKind.DELIVERY_FAILING, EventKind.DELIVERY_RECOVERED)
        return Transition(
            event_id=f"sample/{kind.value}",
            kind=kind,
            at=_SAMPLE_AT,
            kb_uuid=_SAMPLE_KB if kb else None,
            kb_name="sample-kb" if kb else None,
            route="sample-route" if delivery else None,
            detail="sample detail",
        )
    job = Job(
        uuid="00000000-0000-4000-8000-000000000001",
        knowledge_base_uuid=_SAMPLE_KB,
        phase=Phase.SUCCEEDED if kind.is_terminal else Phase.RUNNING,
        status=Status.COMPLETED if kind.is_terminal else Status.IN_PROGRESS,
        created_at=_SAMPLE_AT,
        started_at=_SAMPLE_AT,
        updated_at=_SAMPLE_AT,
        total_tokens=1000,
        data_source_jobs=(
            DataSourceJob(
                data_source_uuid="00000000-0000-4000-8000-000000000002",
                status=DataSourceStatus.UPDATED,
                indexed_item_count=10,
                failed_item_count=0,
                skipped_item_count=0,
            ),
        ),
    )
    stalled = kind in (EventKind.STALLED, EventKind.RECOVERED)
    return Transition(
        event_id=f"sample/{kind.value}",
        kind=kind,
        at=_SAMPLE_AT,
        kb_uuid=_SAMPLE_KB,
        kb_name="sample-kb",
        job=job,
        stall_reason=StallReason.NO_PROGRESS if stalled else None,
        corrects=EventKind.COMPLETED if kind is EventKind.CORRECTED else None,
        detail="sample detail" if kind is EventKind.CORRECTED else None,
    )

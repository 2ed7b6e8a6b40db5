"""How a route shows its events: the built-in alert, its own templates, or the event itself.

Pure. A route's `Presentation` is one of:

- the built-in alert (`watcher.core.render`), the default;
- the built-in alert with the route's own title and/or body templates (`title_template`,
  `body_template`): the template renders the event's context (`template_context`); the
  result is fitted within each target's `Budget` like any alert, and made inert and redacted
  on its way out (`watcher.core.guard`). A template that fails at send time (an error of its
  own, a value it does not expect, an empty result) never costs the alert: the built-in text
  goes instead, and the failure is reported with the send (`Send.template_failures`);
- the event as a signed JSON document (`format = "event"`, `watcher.core.event_document`):
  one message per event, never grouped.

The template context is the event document's `data` (schema version 1: `event`, `severity`,
`headline`, `detail`, `knowledge_base`, `job` with `data_sources`, `stall`, `corrects`,
`route`, `incident`), plus `title` and `body`, the built-in title and body (for a template
that only adds to them), and `account` (the `[[accounts]]` name, None with a single account).
Every value a template prints is escaped for the body's format
(markdown for most services, plain text, and HTML made from the plain text for e-mail), so
text from the API cannot inject markup; `body` is already written for the format and is
printed as it is.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from watcher.core.event_document import (
    document_text,
    event_document,
    notify_test_document,
    webhook_id,
)
from watcher.core.fit import clip
from watcher.core.markup import escape_markdown_inline, escape_text
from watcher.core.outbox import BodyFormat, Budget, EventBody, Message
from watcher.core.render import plain_title, render
from watcher.core.state import Transition


class RouteFormat(StrEnum):
    """What a route sends: alerts for people (apprise), or events for machines (signed JSON)."""

    ALERT = "alert"
    EVENT = "event"


class TemplateFailed(Exception):
    """A template could not render: `reason` (no secret, no input), and its `line` if known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason, self.line = reason, line
        super().__init__(f"line {line}: {reason}" if line is not None else reason)


class Verbatim(str):
    """Text already written for the body's format: a template prints it without escaping."""

    __slots__ = ()


class Template(Protocol):
    """A compiled template (`watcher.config.templates`): renders `context`, passing every
    value it prints through `escape` unless it is `Verbatim`; raises `TemplateFailed` only."""

    def render(self, context: Mapping[str, Any], escape: Callable[[str], str]) -> str: ...


@dataclass(frozen=True, slots=True)
class Presentation:
    """One route's way of showing events (the default: the built-in alert)."""

    format: RouteFormat = RouteFormat.ALERT
    title: Template | None = None
    body: Template | None = None

    @property
    def templated(self) -> bool:
        return self.title is not None or self.body is not None


def template_context(
    transition: Transition, dashboard: str, builtin: Message, fmt: BodyFormat
) -> dict[str, Any]:
    """What a template sees (see the module docstring), with the built-in `body` in `fmt`."""
    context: dict[str, Any] = dict(event_document(transition, dashboard)["data"])
    context.setdefault("account", None)  # the [[accounts]] name; None with a single account
    context["title"] = builtin.title
    context["body"] = Verbatim(builtin.body_in(fmt))
    return context


def render_templated(
    transition: Transition, shown: Presentation, dashboard: str, budget: Budget
) -> tuple[Message, str | None]:
    """The alert with the route's templates, within `budget`; or, when a template fails, the
    built-in alert and why (the alert itself is never lost)."""
    builtin = render(transition, dashboard, budget)
    whole = render(transition, dashboard)  # the built-in body a template may print, unfitted
    try:
        title = _title(transition, shown, dashboard, whole, budget)
        if shown.body is None:
            return replace(builtin, title=title), None
        markdown = _body(transition, shown.body, dashboard, whole, BodyFormat.MARKDOWN)
        text = _body(transition, shown.body, dashboard, whole, BodyFormat.TEXT)
    except TemplateFailed as failed:
        return builtin, str(failed)
    room, lines = budget.body_room(title), budget.body_lines(title)
    text = _fitted(text, room, lines)
    message = Message(
        title=title,
        body=_fitted(markdown, room, lines),
        severity=builtin.severity,
        text=text,
        html=_fitted(_as_html(text), room, lines),
    )
    return message, None


def with_event(message: Message, transition: Transition, route: str, dashboard: str) -> Message:
    """`message` carrying the event's signed-webhook document for `route`."""
    text = document_text(event_document(transition, dashboard))
    return replace(message, document=EventBody(webhook_id(transition.event_id, route), text))


def with_test_event(message: Message, now: datetime) -> Message:
    """`message` (the test alert) carrying the test event's document."""
    document = notify_test_document(now)
    msg_id = f"msg_test{int(now.timestamp())}"
    return replace(message, document=EventBody(msg_id, document_text(document)))


def _title(
    t: Transition, shown: Presentation, dashboard: str, whole: Message, budget: Budget
) -> str:
    if shown.title is None:
        title = whole.title
    else:
        context = template_context(t, dashboard, whole, BodyFormat.TEXT)
        title = plain_title(shown.title.render(context, escape_text))
        if not title:
            raise TemplateFailed("the title template rendered nothing")
    return clip(title, budget.title) if budget.title is not None else title


def _body(t: Transition, body: Template, dashboard: str, whole: Message, fmt: BodyFormat) -> str:
    escape = escape_markdown_inline if fmt is BodyFormat.MARKDOWN else escape_text
    text = body.render(template_context(t, dashboard, whole, fmt), escape).strip()
    if not text:
        raise TemplateFailed("the body template rendered nothing")
    return text + "\n"


def _as_html(text: str) -> str:
    """Plain text as an HTML fragment: escaped, its line breaks kept."""
    return "<br>\n".join(html.escape(line, quote=True) for line in text.rstrip("\n").split("\n"))


def _fitted(text: str, chars: int | None, lines: int | None) -> str:
    """`text` within `chars` characters and `lines` line breaks, cut with an ellipsis."""
    if lines is not None and text.count("\n") > lines:
        text = "\n".join(text.split("\n")[:lines]) + "\n"
    if chars is not None and len(text) > chars:
        text = clip(text.rstrip("\n"), max(chars - 1, 1)) + "\n"
    return text

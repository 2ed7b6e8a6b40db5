"""An alert's text as a few blocks, written out as markdown, plain text or HTML. Pure.

`render` builds a `Doc` (paragraphs and bullet lists of spans); `write(doc, format)` turns it
into the body for the format apprise will hand to a service, so nothing is converted twice and
every piece of outside text (KB names, API error messages) is escaped for exactly that format:

- markdown: every character that starts markup (CommonMark, and Slack's `<…>` links) gets a
  backslash, so `[x](y)`, `<script>`, `**`, `#` or `&#x202e;` stay literal text;
- text: written as is (only made inert);
- html: `&`, `<`, `>` and quotes become entities; link targets are attribute-escaped.

Every span is made inert first (`watcher.core.inert`): no control, bidi or format character and no
line break from outside reaches any format.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import assert_never
from urllib.parse import quote

from watcher.core.inert import inert


class BodyFormat(StrEnum):
    """The formats a service takes a body in: apprise's `NotifyFormat` values."""

    MARKDOWN = "markdown"
    TEXT = "text"
    HTML = "html"


class Style(StrEnum):
    """How a span is shown."""

    PLAIN = "plain"
    STRONG = "strong"
    CODE = "code"
    LINK = "link"


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text in one style; `href` is the target of a LINK (the text is its label)."""

    text: str
    style: Style = Style.PLAIN
    href: str | None = None


def plain(text: str) -> Span:
    return Span(text)


def strong(text: str) -> Span:
    return Span(text, Style.STRONG)


def code(text: str) -> Span:
    return Span(text, Style.CODE)


def link(text: str, href: str) -> Span:
    return Span(text, Style.LINK, href)


@dataclass(frozen=True, slots=True)
class Item:
    """One bullet, with the bullets nested under it."""

    spans: tuple[Span, ...]
    children: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True)
class Para:
    """A paragraph: one line of spans."""

    spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class Bullets:
    """A bullet list."""

    items: tuple[Item, ...]


Block = Para | Bullets
Doc = tuple[Block, ...]

# What starts markup in the middle of a line (emphasis, code, links, autolinks and HTML,
# strikethrough), plus `&`: an entity such as `&#x202e;` would come back as a character once
# converted to HTML. Parentheses need no escape once brackets have one.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>~&])")
# At the start of a line these make a heading, a list item, a quote or a rule.
_MARKDOWN_LEADING = re.compile(r"^(\s*)(\d*)([-+=>#|.)])")
_BLANK_RUN = re.compile(r"\s+")


def escape_markdown(text: str) -> str:
    """`text` as literal markdown: inert, on one line, every markup character escaped."""
    return _line_start(escape_markdown_inline(text).strip())


def escape_markdown_inline(text: str) -> str:
    """`text` as literal markdown in the middle of a line (where `1.` or `-` start nothing)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escape_text(text))


def _line_start(line: str) -> str:
    """Escape what would make a line a heading, a list item, a quote or a rule."""
    found = _MARKDOWN_LEADING.match(line)
    if found is None or (found.group(2) and found.group(3) not in ".)"):
        return line
    return f"{line[: found.end(2)]}\\{line[found.end(2) :]}"


def escape_html(text: str) -> str:
    """`text` as literal HTML: inert, on one line, `& < > " '` as entities."""
    return html.escape(escape_text(text), quote=True)


def escape_text(text: str) -> str:
    """`text` as plain text: inert and on one line (each run of whitespace one space)."""
    return inert(_BLANK_RUN.sub(" ", text))


def escape(text: str, fmt: BodyFormat) -> str:
    """`text` made literal for `fmt` (a title blended into a body, a span of a body)."""
    match fmt:
        case BodyFormat.MARKDOWN:
            return escape_markdown(text)
        case BodyFormat.HTML:
            return escape_html(text)
        case BodyFormat.TEXT:
            return escape_text(text)
        case _:
            assert_never(fmt)


def write(doc: Doc, fmt: BodyFormat) -> str:
    """The body in `fmt`, ending with one newline (markdown and text) or a closing tag."""
    match fmt:
        case BodyFormat.MARKDOWN:
            return "\n\n".join(_markdown_block(b) for b in doc) + "\n"
        case BodyFormat.TEXT:
            return "\n\n".join(_text_block(b) for b in doc) + "\n"
        case BodyFormat.HTML:
            return "\n".join(_html_block(b) for b in doc) + "\n"
        case _:
            assert_never(fmt)


def _markdown_block(block: Block) -> str:
    if isinstance(block, Para):
        return _markdown_spans(block.spans)
    return "\n".join(_lines(block.items, "- ", "  ", _markdown_spans))


def _text_block(block: Block) -> str:
    if isinstance(block, Para):
        return _text_spans(block.spans)
    return "\n".join(_lines(block.items, "- ", "  ", _text_spans))


def _lines(
    items: Iterable[Item],
    bullet: str,
    indent: str,
    spans: Callable[[tuple[Span, ...]], str],
    depth: int = 0,
) -> list[str]:
    out: list[str] = []
    for item in items:
        out.append(indent * depth + bullet + spans(item.spans))
        out += _lines(item.children, bullet, indent, spans, depth + 1)
    return out


@lru_cache(maxsize=512)
def _markdown_spans(spans: tuple[Span, ...]) -> str:
    out = []
    for span in spans:
        text = escape_markdown_inline(span.text)
        match span.style:
            case Style.PLAIN:
                out.append(text)
            case Style.STRONG:
                out.append(f"**{text}**" if text else "")
            case Style.CODE:
                out.append(_code_span(span.text))
            case Style.LINK:
                out.append(f"[{text}]({_markdown_href(span.href or '')})")
            case _:
                assert_never(span.style)
    return _line_start("".join(out))


@lru_cache(maxsize=512)
def _text_spans(spans: tuple[Span, ...]) -> str:
    out = []
    for span in spans:
        text = escape_text(span.text)
        if span.style is Style.LINK and span.href and span.href != span.text:
            text = f"{text}: {escape_text(span.href)}"
        out.append(text)
    return "".join(out)


def _html_block(block: Block) -> str:
    if isinstance(block, Para):
        return f"<p>{_html_spans(block.spans)}</p>"
    return _html_list(block.items)


def _html_list(items: tuple[Item, ...]) -> str:
    inner = "".join(
        f"<li>{_html_spans(item.spans)}{_html_list(item.children) if item.children else ''}</li>"
        for item in items
    )
    return f"<ul>{inner}</ul>"


@lru_cache(maxsize=512)
def _html_spans(spans: tuple[Span, ...]) -> str:
    out = []
    for span in spans:
        text = escape_html(span.text)
        match span.style:
            case Style.PLAIN:
                out.append(text)
            case Style.STRONG:
                out.append(f"<b>{text}</b>")
            case Style.CODE:
                out.append(f"<code>{text}</code>")
            case Style.LINK:
                out.append(f'<a href="{escape_html(_safe_href(span.href or ""))}">{text}</a>')
            case _:
                assert_never(span.style)
    return "".join(out)


def _code_span(text: str) -> str:
    """An identifier as a markdown code span; backticks and line breaks from outside dropped."""
    clean = escape_text(text.replace("`", "")) or "?"
    return f"`{clean}`"


def _safe_href(href: str) -> str:
    """A link target with nothing that could end it early or change its scheme's meaning."""
    flat = escape_text(href)
    return quote(flat, safe=":/?&=#%+@,;~!$'*.-_")


def _markdown_href(href: str) -> str:
    return _safe_href(href).replace("(", "%28").replace(")", "%29")

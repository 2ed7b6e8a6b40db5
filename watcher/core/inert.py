"""Text from outside made inert: no control, bidi or invisible format character survives. Pure.

One function, `inert`, is applied wherever text leaves the watcher for a person: the terminal
(`status`, `check-config`, `test-notify`, console logs), alerts (titles and bodies, in every
format), the systemd status line and, later, the web page. A knowledge-base name or an API
error message can then neither move a terminal's cursor, set its title or clear its screen
(ANSI escapes, BEL, NUL), nor forge a line (a raw newline or carriage return), nor reorder
what a reader sees (Unicode bidirectional overrides, "Trojan Source").

What is neutralised: every character of the Unicode categories Cc (C0, DEL, C1), Cf (format:
bidi embeddings, overrides and isolates, marks, zero-width characters, tags), Cs (lone
surrogates, which cannot even be encoded) and Zl/Zp (line and paragraph separators); the
zero-width (non-)joiners U+200C/U+200D stay, since scripts and emoji need them. Line breaks and
other whitespace controls become a space (or stay a newline where the output is multi-line);
everything else becomes a visible escape such as `\\x1b` or `\\u202e`.
"""

from __future__ import annotations

import re

# Cc, Cf (minus U+200C/U+200D), Cs, Zl and Zp as of Unicode 15; `tests/test_inert.py` checks
# this class against `unicodedata` for every code point, so a newer Python cannot slip past.
_UNSAFE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "]"
)
# Whitespace controls: a line break or a tab in a name is a space, never a new line.
_BLANKS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
_CRLF = re.compile(r"\r\n?")


def inert(text: str, *, newlines: bool = False) -> str:
    """`text` with every control, bidi and format character neutralised.

    Whitespace controls become a space; with `newlines=True` a line break (`\\n`, `\\r\\n` or a
    lone `\\r`) stays a newline instead, for output that is multi-line on purpose. Every other
    such character becomes a visible escape (`\\x07`, `\\u202e`, `\\U000e0041`).
    """
    if _UNSAFE.search(text) is None:
        return text
    if newlines:
        text = _CRLF.sub("\n", text)
        return _UNSAFE.sub(lambda m: m.group() if m.group() == "\n" else _shown(m.group()), text)
    return _UNSAFE.sub(lambda m: _shown(m.group()), text)


def _shown(char: str) -> str:
    if char in _BLANKS:
        return " "
    point = ord(char)
    if point <= 0xFF:
        return f"\\x{point:02x}"
    if point <= 0xFFFF:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def is_inert(text: str, *, newlines: bool = False) -> bool:
    """Whether `text` holds no character `inert` would change (a newline allowed if asked)."""
    found = _UNSAFE.search(text.replace("\n", "") if newlines else text)
    return found is None

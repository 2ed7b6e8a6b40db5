"""`inert`: no control, bidi or format character survives; what was there stays visible."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from watcher.core.inert import inert, is_inert

NEUTRALISED = ("Cc", "Cf", "Cs", "Zl", "Zp")
JOINERS = {0x200C, 0x200D}  # scripts and emoji need them


def test_every_control_bidi_and_format_character_of_this_python_is_neutralised() -> None:
    """The hand-written class covers every Cc, Cf, Cs, Zl and Zp code point `unicodedata` knows
    (a newer Unicode adds format characters: this test then names them)."""
    missed = []
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        wanted = unicodedata.category(char) in NEUTRALISED and point not in JOINERS
        if wanted and is_inert(char):
            missed.append(f"U+{point:04X}")
    assert missed == []


def test_nothing_else_is_touched_but_code_points_this_python_leaves_unassigned() -> None:
    """Letters, marks, symbols, emoji and the joiners pass as they are; characters the class
    names beyond this Python's Unicode are unassigned here (format characters in a newer one)."""
    extra = [
        point
        for point in range(sys.maxunicode + 1)
        if not is_inert(chr(point)) and unicodedata.category(chr(point)) not in NEUTRALISED
    ]
    assert all(unicodedata.category(chr(p)) == "Cn" for p in extra), extra
    text = "naïve café 日本語 👩‍👩‍👧 ⚠️ ✅ ZWNJ:\u200c € ½ — “quoted”"
    assert inert(text) == text


@pytest.mark.parametrize(
    ("text", "single", "multi"),
    [
        # an escape sequence that sets the window title, then one that clears the screen
        (
            "a\x1b]0;pwned\x07b\x1b[2Jc",
            "a\\x1b]0;pwned\\x07b\\x1b[2Jc",
            "a\\x1b]0;pwned\\x07b\\x1b[2Jc",
        ),
        # NUL and DEL, and C1 controls (CSI as one character)
        ("x\x00y\x7fz\x9b31m", "x\\x00y\\x7fz\\x9b31m", "x\\x00y\\x7fz\\x9b31m"),
        # line breaks are a space on one line, a newline where lines are meant
        ("one\ntwo\r\nthree\rfour", "one two  three four", "one\ntwo\nthree\nfour"),
        ("tab\there\u2028sep\u2029end\x85", "tab here sep end ", "tab here sep end "),
        # bidi overrides and isolates ("Trojan Source"), and invisible characters
        ("invoice\u202efdp.exe", "invoice\\u202efdp.exe", "invoice\\u202efdp.exe"),
        (
            "a\u2066b\u2069c\u200bd\ufeffe",
            "a\\u2066b\\u2069c\\u200bd\\ufeffe",
            "a\\u2066b\\u2069c\\u200bd\\ufeffe",
        ),
        # tag characters (ASCII smuggled invisibly) and a lone surrogate
        ("hi\U000e0041\U000e0042", "hi\\U000e0041\\U000e0042", "hi\\U000e0041\\U000e0042"),
        ("bad\ud800x", "bad\\ud800x", "bad\\ud800x"),
    ],
)
def test_control_characters_become_visible_escapes_or_spaces(
    text: str, single: str, multi: str
) -> None:
    assert inert(text) == single
    assert inert(text, newlines=True) == multi
    assert is_inert(inert(text)) and is_inert(inert(text, newlines=True), newlines=True)


def test_clean_text_is_returned_as_is() -> None:
    text = "product-docs (EU) [prod] <b>"
    assert inert(text) is text

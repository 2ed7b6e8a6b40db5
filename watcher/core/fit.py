"""Fitting an alert into what one target takes (its `Budget`). Pure.

A body is three parts in order of importance: the head (headline and facts), a list (the
data sources of a job, or the events of a grouped alert; the caller orders it by severity),
and nothing after it. When the whole does not fit the target's characters or lines:

1. the notes under list entries (error texts) are shortened: 500, then 200, then 80
   characters;
2. the list is cut after as many entries as fit, with notes of at most 80 characters, then
   without notes; a last line says what was left out (`… and 480 more: 12 failed, 468
   updated`);
3. without any entry, that line alone stands for the list;
4. when even the head does not fit (a name of thousands of characters), the body is cut at
   the budget with an ellipsis; apprise's `truncate` overflow guards behind all of this.

Titles longer than the target's title limit are cut with an ellipsis.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

NOTE_LIMITS = (500, 200, 80)
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Entry:
    """One list entry: its line, an optional note under it (raw text), and what it counts as
    in the summary of left-out entries (`failed`, `updated`, ...)."""

    line: str
    note: str | None = None
    tally: str = ""


NoteLine = Callable[[str], str]  # a raw note, already shortened, as its line in the body


def clip(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with an ellipsis when it was longer."""
    if limit <= 0:
        return ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def more_text(left_out: Sequence[Entry], noun: str) -> str:
    """`… and 480 more data sources: 12 failed, 468 updated` for the entries left out."""
    counts = Counter(entry.tally for entry in left_out if entry.tally)
    parts = ", ".join(f"{n} {tally}" for tally, n in counts.most_common())
    return f"{ELLIPSIS} and {len(left_out)} more {noun}" + (f": {parts}" if parts else "")


def more_line(left_out: Sequence[Entry], noun: str) -> str:
    """`- … and 480 more: 12 failed, 468 updated` for the entries a list had to leave out."""
    return "- " + more_text(left_out, noun)


# Writes the body keeping the first `kept` entries, their notes cut to `note_limit`
# characters (0: none), and, if `cut`, a line for the entries left out.
Build = Callable[[int, int, bool], str]


def fit(build: Build, total: int, *, chars: int | None, lines: int | None = None) -> str:
    """The fullest body `build` writes (of `total` entries) within `chars` and `lines`."""
    return fit_shaped(build, total, chars=chars, lines=lines)[0]


# What `build` was asked to write the fitted body: (kept, note_limit, cut).
Shape = tuple[int, int, bool]


def fit_shaped(
    build: Build, total: int, *, chars: int | None, lines: int | None = None, notes: bool = True
) -> tuple[str, int, Shape | None]:
    """`fit`'s body, how many of the `total` entries it left out (0: it lists them all; the
    body's last line counts those it did not), and the `build` arguments that wrote the body
    (None when even the summary had to be cut at the budget). `notes`: whether any entry has a
    note (if not, the note limits are not tried one by one: they would write the same body).

    The cost follows what fits, not `total`: the whole list is written only once its first
    entries (8, 32, 128, ...) fit, and the cut is searched upwards from one entry; a grouped
    alert of 2,000 events to a 2,000-character URL writes a few dozen entries, not thousands."""

    def fits(text: str) -> bool:
        too_long = chars is not None and len(text) > chars
        return not too_long and (lines is None or text.count("\n") <= lines)

    limits = NOTE_LIMITS if notes else (0,)
    if chars is None and lines is None:  # no limit: the whole list, its notes the longest
        return build(total, limits[0], False), 0, (total, limits[0], False)
    for limit in limits:
        whole = _whole(build, total, limit, fits)
        if whole is not None:
            return whole, 0, (total, limit, False)
    for limit in dict.fromkeys((limits[-1], 0)):

        def cut_fits(k: int, limit: int = limit) -> bool:
            return fits(build(k, limit, True))

        kept = _most_that_fit(total, cut_fits)
        if kept:
            return build(kept, limit, True), total - kept, (kept, limit, True)
    summary = build(0, 0, total > 0)
    if fits(summary):
        return summary, total, (0, 0, total > 0)
    return _hard_cut(summary, chars, lines), total, None


def _whole(build: Build, total: int, limit: int, fits: Callable[[str], bool]) -> str | None:
    """The whole list with notes cut to `limit`, if it fits. Its first 8, 32, 128, ... entries
    (never longer than the whole) are tried first, so a list far too long is never written."""
    first = 8
    while first < total:
        if not fits(build(first, limit, False)):
            return None
        first *= 4
    whole = build(total, limit, False)
    return whole if fits(whole) else None


def fit_body(
    head: Sequence[str],
    entries: Sequence[Entry],
    *,
    chars: int | None,
    lines: int | None = None,
    note_line: NoteLine,
    noun: str,
    list_heading: Sequence[str] = (),
) -> str:
    """The body of `head` then `list_heading` and `entries`, within `chars` and `lines`."""

    def build(kept: int, note_limit: int, cut: bool) -> str:
        body = list(head)
        if entries:
            body += list(list_heading)
            for entry in entries[:kept]:
                body.append(entry.line)
                if entry.note and note_limit > 0:
                    body.append(note_line(clip(entry.note, note_limit)))
            if cut:
                body.append(more_line(entries[kept:], noun))
        return "\n".join(body).rstrip() + "\n"

    return fit(build, len(entries), chars=chars, lines=lines)


def _most_that_fit(total: int, fits: Callable[[int], bool]) -> int:
    """The largest k in [1, total) with fits(k), or 0; fits is monotone (more never fits
    where fewer does not). Searched from 1 up, doubling, then halving: about 2 log2(k) tries,
    each writing at most 2k entries."""
    if total < 2 or not fits(1):
        return 0
    low, high = 1, total - 1
    while low < high:
        step = min(2 * low, high)
        if not fits(step):
            high = step - 1
            break
        low = step
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _hard_cut(text: str, chars: int | None, lines: int | None) -> str:
    if lines is not None:
        text = "\n".join(text.split("\n")[: max(lines, 1)])
    if chars is not None and len(text) > chars:
        text = clip(text.rstrip("\n"), max(chars - 1, 1))
    return text.rstrip("\n") + "\n"

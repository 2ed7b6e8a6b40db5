"""Silences as people type and read them: the matchers of `watcher silence add`, and the
lines and JSON of `silence list` and `status`. Pure.

Everything shown is made inert (`watcher.core.inert`): a comment, a name or an id from a
command line can neither forge a line nor move a terminal's cursor. Times are shown in the
time zone passed in (the reader's local one, from the shell), JSON times in UTC.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from watcher.core.inert import inert
from watcher.core.model import EventKind
from watcher.core.silences import ANY, Silence

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SHOWN = 60  # characters of a typed word repeated in an error


@dataclass(frozen=True, slots=True)
class KbMatcher:
    """A resolved `--kb`: the uuid (None for `*`), the label people read, and a note."""

    uuid: str | None
    label: str | None = None
    note: str | None = None


def quoted(text: str) -> str:
    short = text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
    return f"'{inert(short)}'"


def parse_event(word: str) -> EventKind | None:
    """`--event`: an event word, or `*` (None: every event); ValueError naming the close one."""
    text = word.strip().lower()
    if text == ANY:
        return None
    try:
        return EventKind(text)
    except ValueError:
        known = [kind.value for kind in EventKind]
        close = difflib.get_close_matches(text, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}, or *"
        raise ValueError(f"{quoted(word)} is not an event; {hint}") from None


def resolve_kb(text: str, known: Sequence[tuple[str, str | None]]) -> KbMatcher:
    """`--kb`: `*`, a uuid, or a name of the knowledge bases `known` ((uuid, name) pairs, the
    store's and the config's), resolved now to its uuid (a later rename changes nothing).
    An unknown well-formed uuid is taken, with a note; anything else unknown, or a name two
    knowledge bases share, is a ValueError saying what to give instead."""
    word = text.strip()
    if word == ANY:
        return KbMatcher(None)
    names = {uuid: name for uuid, name in known}
    if word.lower() in names:
        uuid = word.lower()
        return KbMatcher(uuid, names[uuid] or uuid)
    named = sorted({uuid for uuid, name in known if name == word})
    if len(named) == 1:
        return KbMatcher(named[0], word)
    if named:
        raise ValueError(
            f"{quoted(word)} names {len(named)} knowledge bases ({', '.join(named)}): "
            "give the uuid of the one to silence"
        )
    if _UUID.fullmatch(word.lower()):
        note = "the watcher has not seen this knowledge base yet; silenced by its uuid"
        return KbMatcher(word.lower(), word.lower(), note)
    labels = sorted({name for _, name in known if name})
    close = difflib.get_close_matches(word, labels, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "give its uuid, a name `watcher status`"
    if not close:
        hint += " lists, or *"
    raise ValueError(f"{quoted(word)} is not a knowledge base the watcher knows; {hint}")


def added_line(silence: Silence, tz: tzinfo | None) -> str:
    """What `silence add` tells on stderr once the silence is stored."""
    return inert(
        f"silenced kb {silence.kb_text}, event {silence.event_text} until "
        f"{_local(silence.ends_at, tz)} (watcher silence expire {silence.id} ends it sooner)"
    )


def state_of(silence: Silence, now: datetime) -> str:
    """`active`, `expired` (ended by hand) or `ended` (its time ran out, or the watcher
    announced its end: by its own clock, which may run ahead of this one)."""
    if silence.active(now) and silence.announced_at is None:
        return "active"
    return "expired" if silence.expired_by_hand else "ended"


def _local(moment: datetime, tz: tzinfo | None) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z").strip() if tz else moment.isoformat()


def table(silences: Sequence[Silence], now: datetime, tz: tzinfo | None) -> list[str]:
    """`silence list`: a header and one inert line per silence, times in `tz`."""
    header = ("ID", "STATE", "KB", "EVENT", "BY", "STARTS", "ENDS", "HELD", "COMMENT")
    rows = [header] + [
        (
            s.id,
            state_of(s, now),
            s.kb_text,
            s.event_text,
            s.created_by,
            _local(s.starts_at, tz),
            _local(s.ends_at, tz),
            str(s.held),
            s.comment,
        )
        for s in silences
    ]
    cells = [tuple(inert(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in cells
    ]


def status_lines(silences: Sequence[Silence], now: datetime, tz: tzinfo | None) -> list[str]:
    """`status`: the active silences, one inert line each (nothing when there is none)."""
    active = [s for s in silences if s.active(now)]
    if not active:
        return []
    lines = ["", f"Silences: {len(active)} active (watcher silence list)"]
    for s in active:
        text = (
            f"  {s.id} kb={s.kb_text} event={s.event_text} until {_local(s.ends_at, tz)} "
            f"by {s.created_by}, {s.held} held: {s.comment}"
        )
        lines.append(inert(text))
    return lines


def as_json(silence: Silence, now: datetime) -> dict[str, Any]:
    """One silence for `silence list --json` and `status --json` (times in UTC, ISO 8601)."""
    return {
        "id": silence.id,
        "state": state_of(silence, now),
        "matchers": {
            "kb": silence.kb_uuid or ANY,
            "kb_label": silence.kb_text,
            "event": silence.event_text,
        },
        "created_by": silence.created_by,
        "comment": silence.comment,
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "held": silence.held,
        "announced_at": silence.announced_at.isoformat() if silence.announced_at else None,
    }

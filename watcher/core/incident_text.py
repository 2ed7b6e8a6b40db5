"""What an alert says of its knowledge base's incident, in sentences. Pure.

A failure alert that is not the first in a row says which it is and since when; the alert
that closes an incident says how long it lasted; a reminder and an escalation say how long
it has been open, what failed last, and how to acknowledge it. Times are UTC; durations are
the ones `watcher.core.incidents` measured (on the API's clock where they could be).
"""

from __future__ import annotations

from datetime import datetime

from watcher.core.durations import format_elapsed, format_setting
from watcher.core.incident import IncidentNote
from watcher.core.model import EventKind
from watcher.core.state import OpenProblem, Transition

REMINDER_HEADLINE = "incident still open (reminder)"
ESCALATED_HEADLINE = "incident not acknowledged (escalated)"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st ..."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{({1: 'st', 2: 'nd', 3: 'rd'}).get(n % 10, 'th')}"


def when(moment: datetime) -> str:
    """A moment for people: `2026-11-28 09:50 UTC`."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def streak(note: IncidentNote) -> str:
    """`3rd failure in a row since 2026-11-28 09:50 UTC`."""
    return f"{ordinal(note.failures)} failure in a row since {when(note.since)}"


def incident_lines(t: Transition) -> list[str]:
    """The sentences `t`'s alert carries about its incident (none for a first failure)."""
    note = t.incident
    if note is None:
        return []
    if t.kind is EventKind.REMINDER:
        return [_still_open(note), _ack_hint(t)]
    if t.kind is EventKind.ESCALATED:
        waited = format_setting(note.waited) if note.waited is not None else "its time"
        route = note.route or "?"
        first = f"Nobody acknowledged it within {waited} on route {route}."
        return [first, _still_open(note), _ack_hint(t)]
    if note.closed:
        lasted = format_elapsed(note.duration) if note.duration is not None else "a while"
        failures = "1 failure" if note.failures == 1 else f"{note.failures} failures in a row"
        return [f"Resolved after {lasted} ({failures} since {when(note.since)})."]
    if note.failures > 1:
        return [f"{streak(note)[:1].upper()}{streak(note)[1:]}."]
    return []


def _still_open(note: IncidentNote) -> str:
    open_for = format_elapsed(note.duration) if note.duration is not None else "a while"
    number = f" Reminder {note.reminder}." if note.reminder is not None else ""
    return (
        f"Still failing after {open_for}: {streak(note)}; the latest was "
        f"{note.last_kind.value}.{number}"
    )


def _ack_hint(t: Transition) -> str:
    ref = t.kb_uuid or "?"
    return f"Acknowledge it to stop reminders and escalation: watcher ack {ref}"


def open_problem_text(p: OpenProblem) -> tuple[str, str] | None:
    """A `silence_ended` line's incident, in the digest's words: (`3 failures in a row since
    2026-11-28 09:50 UTC`, `acknowledged by ana at 2026-11-28 10:02 UTC` or `not
    acknowledged`). None for a payload recorded before incidents (no count)."""
    if p.failures is None or p.since is None:
        return None
    n = p.failures
    streak = f"{n} failure{'s' if n != 1 else ''} in a row since {when(p.since)}"
    if p.acked_by is None:
        return streak, "not acknowledged"
    at = f" at {when(p.acked_at)}" if p.acked_at is not None else ""
    return streak, f"acknowledged by {p.acked_by}{at}"

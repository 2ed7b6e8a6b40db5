"""`watcher status`: what the store knows, as a table for people or JSON for scripts. Pure.

Names, states and errors come from the API and from receivers: every cell of the table is made
inert (`watcher.core.inert`), so a knowledge base named with escape sequences, a BEL or a newline
can neither drive the terminal nor forge a row. JSON escapes such characters by itself. The
store holds no secret (`watcher.core.guard.GuardedStore`), and the CLI masks known secrets once
more on the way out (`watcher.cli.say`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, assert_never

from watcher.core.account import MissingKb, UnmatchedRef
from watcher.core.durations import format_elapsed
from watcher.core.incident import Incident
from watcher.core.inert import inert
from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryState
from watcher.core.silence_text import as_json as silence_json
from watcher.core.silence_text import status_lines
from watcher.core.silences import Silence
from watcher.core.snapshot import KbSnapshot, StoreSnapshot
from watcher.core.state import JobCondition


@dataclass(frozen=True, slots=True)
class SetupFindings:
    """What the last cycles found wrong with the setup: watched KBs the account does not list,
    and route entries that match no knowledge base (kept in the store's meta table)."""

    missing: tuple[MissingKb, ...] = ()
    unmatched: tuple[UnmatchedRef, ...] = ()


def state_word(kb: KbSnapshot) -> str:
    """The latest job's state: stalled (why), an outcome, pending, running, unknown, or none."""
    if kb.job_uuid is None:
        return "no jobs"
    if kb.stalled is not None:
        return f"{JobCondition.STALLED.value} ({kb.stalled.value})"
    if kb.outcome is not None:
        return kb.outcome.value
    condition = kb.condition or JobCondition.UNKNOWN
    match condition:
        case JobCondition.PENDING | JobCondition.RUNNING | JobCondition.STALLED | JobCondition.DONE:
            return condition.value
        case JobCondition.UNKNOWN:
            raw = (kb.status or kb.phase or "unknown").rsplit("_", 1)[-1].lower()
            return f"{condition.value} ({raw})"
        case _:
            assert_never(condition)


STATE_WORDS = (
    *(c.value for c in (JobCondition.PENDING, JobCondition.RUNNING, JobCondition.STALLED)),
    *(k.value for k in EventKind if k.is_terminal),
    JobCondition.DONE.value,
    JobCondition.UNKNOWN.value,
    "none",
)
"""What `--state` may ask for: the first word of `state_word` (STATE in the table), "none"
for a KB with no job yet."""


class UnknownKbError(ValueError):
    """A `--kb` that names no knowledge base the store knows."""


def only(
    snapshot: StoreSnapshot, kbs: Sequence[str] = (), states: Sequence[str] = ()
) -> StoreSnapshot:
    """`snapshot` with only the KBs named (by name or uuid) in `kbs` and whose latest job's
    state is one of `states` (words of `STATE_WORDS`; "stalled" matches every stall reason),
    each filter applied when given; open incidents are kept for the KBs kept. The backlog,
    dead letters and cycle times stay whole: they are the store's, not a KB's.

    Raises `UnknownKbError` naming each entry of `kbs` that matches no KB."""
    kept = snapshot.kbs
    if kbs:
        names = {name for kb in kept for name in (kb.uuid, kb.name) if name}
        unknown = [name for name in kbs if name not in names]
        if unknown:
            known = sorted(kb.name or kb.uuid for kb in kept)
            listed = ", ".join(known[:10]) + (
                f" and {len(known) - 10} more" if len(known) > 10 else ""
            )
            raise UnknownKbError(
                f"no knowledge base named {', '.join(map(repr, unknown))} in the store"
                f" (known: {listed or 'none yet'})"
            )
        wanted = set(kbs)
        kept = tuple(kb for kb in kept if kb.uuid in wanted or kb.name in wanted)
    if states:
        asked = set(states)
        kept = tuple(kb for kb in kept if _words(kb) & asked)
    uuids = {kb.uuid for kb in kept}
    incidents = tuple(i for i in snapshot.incidents if i.kb_uuid in uuids)
    return replace(snapshot, kbs=kept, incidents=incidents)


def _words(kb: KbSnapshot) -> set[str]:
    """The `--state` words a KB answers to: its state's first word, and "done" for every
    finished job (whatever its outcome, as the JSON's `jobs_by_state` counts it)."""
    words = {_first_word(state_word(kb))}
    if kb.outcome is not None or kb.condition is JobCondition.DONE:
        words.add(JobCondition.DONE.value)
    return words


def _first_word(word: str) -> str:
    """`stalled (no_progress)` -> `stalled`, `unknown (weird)` -> `unknown`, `no jobs` -> `none`."""
    return "none" if word == "no jobs" else word.split(" ", 1)[0]


def _progress(kb: KbSnapshot) -> str:
    if kb.total_datasources:
        return f"{kb.completed_datasources or 0}/{kb.total_datasources}"
    return "-"


def _age(kb: KbSnapshot, now: datetime) -> str:
    """How long ago the latest job last moved; `now` is the API's clock (its timestamps)."""
    moment = kb.finished_at or kb.updated_at or kb.started_at or kb.created_at
    if moment is None:
        return "-"
    return format_elapsed(max(now - moment, timedelta(0))) + " ago"


def table(
    snapshot: StoreSnapshot,
    now: datetime,
    setup: SetupFindings = SetupFindings(),
    api_now: datetime | None = None,
    silences: Sequence[Silence] = (),
    tz: tzinfo | None = None,
    empty: str = "(no knowledge base seen yet: run `watcher once` or `watcher run`)",
) -> str:
    """A plain-text table of KBs, what is wrong with the setup, the backlog and dead letters,
    and the active silences (their ends shown in `tz`); `empty` stands for a table of none.

    `now` is the wall clock; `api_now` the API's (ages of API timestamps), `now` if unknown.
    """
    several = any(kb.account is not None for kb in snapshot.kbs)
    rows: list[tuple[str, ...]] = [("KNOWLEDGE BASE", "LATEST JOB", "STATE", "PROGRESS", "AGE")]
    for kb in snapshot.kbs:
        rows.append(
            (
                kb.name or kb.uuid,
                kb.job_uuid or "-",
                state_word(kb),
                _progress(kb),
                _age(kb, api_now or now),
            )
        )
    if several:  # with several [[accounts]], each row names its account first
        accounts = ["ACCOUNT", *(kb.account or "-" for kb in snapshot.kbs)]
        rows = [(account, *row) for account, row in zip(accounts, rows, strict=True)]
    rows = [tuple(inert(cell) for cell in row) for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    if len(rows) == 1:
        lines.append(empty)
    lines += _fact_lines(snapshot)
    lines += setup_lines(setup, now)
    lines += incident_lines(snapshot.incidents, now)
    lines.append("")
    lines.append(_deliveries(snapshot, now))
    for route in snapshot.routes:
        held = ""
        if route.held and route.held_until is not None:
            until = route.held_until.isoformat(timespec="minutes")
            held = f" ({route.held} held by quiet hours {route.held_by} until {until})"
        lines.append(
            inert(
                f"  {route.route}: {route.pending + route.sending} pending, {route.dead} dead"
                + held
            )
        )
    for dead in snapshot.dead_letters:
        lines.append(
            inert(
                f"  dead #{dead.id} {dead.route} {dead.kind} job {dead.job_uuid or '-'} after "
                f"{dead.attempts} attempts: {dead.last_error or 'unknown error'}"
            )
        )
    lines += status_lines(silences, now, tz)
    last = snapshot.last_cycle_at
    lines.append(f"Last successful cycle: {_when(last, now)}")
    return "\n".join(lines)


def _fact_lines(snapshot: StoreSnapshot) -> list[str]:
    """Each KB's data sources by name, and its database when it is not ONLINE."""
    lines = []
    for kb in snapshot.kbs:
        name = kb.label
        if kb.sources:
            lines.append(inert(f"  {name}: " + "; ".join(source.label for source in kb.sources)))
        if kb.database is not None and kb.database != "ONLINE":
            lines.append(inert(f"  {name}: database {kb.database} (not online)"))
    return ["", "Data sources and databases:", *lines] if lines else []


def setup_lines(setup: SetupFindings, now: datetime) -> list[str]:
    """One line per missing knowledge base and per route entry that matches nothing."""
    lines = [
        inert(f"{kb.label}: not found in the account since {_when(kb.since, now)}")
        for kb in setup.missing
    ]
    lines += [inert(f"route {ref.route}: {ref.key}: {ref.reason}") for ref in setup.unmatched]
    return ["", *lines] if lines else []


def incident_lines(incidents: tuple[Incident, ...], now: datetime) -> list[str]:
    """A heading and one line per open incident: its KB, how many failures in a row since
    when, the latest, and who acknowledged it when (or how to)."""
    if not incidents:
        return []
    lines = ["", f"Open incidents: {len(incidents)}"]
    for i in incidents:
        failures = f"{i.failures} failure{'s' if i.failures != 1 else ''} in a row"
        ack = (
            f"acknowledged by {i.ack.by} at {_when(i.ack.at, now)}"
            + (f": {i.ack.comment}" if i.ack.comment else "")
            if i.ack
            else f"not acknowledged (watcher ack {i.kb_uuid})"
        )
        since = i.since.isoformat(timespec="seconds")
        lines.append(
            inert(
                f"  {i.kb_name or i.kb_uuid}: {failures} since {since}, latest {i.last_kind}; {ack}"
            )
        )
    return lines


def _deliveries(snapshot: StoreSnapshot, now: datetime) -> str:
    oldest = snapshot.oldest_undelivered_age(now)
    wait = f", oldest waiting {format_elapsed(timedelta(seconds=oldest))}" if oldest else ""
    silenced = snapshot.outbox_by_state.get(DeliveryState.SILENCED, 0)
    shown = f", {silenced} silenced" if silenced else ""
    return f"Deliveries: {snapshot.undelivered} pending, {snapshot.dead} dead{shown}{wait}"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f"{moment.isoformat(timespec='seconds')} ({format_elapsed(now - moment)} ago)"


def as_json(
    snapshot: StoreSnapshot,
    now: datetime,
    setup: SetupFindings = SetupFindings(),
    api_now: datetime | None = None,
    silences: Sequence[Silence] = (),
) -> dict[str, Any]:
    """The same facts as a JSON-ready dict (stable keys for scripts); `api_now`: the API's
    clock as the daemon last read it; `silences`: the active ones."""
    return {
        "at": now.isoformat(),
        "api_clock_at": _iso(api_now),
        "last_successful_cycle_at": _iso(snapshot.last_cycle_at),
        "knowledge_bases": [_kb_json(kb) for kb in snapshot.kbs],
        "missing_knowledge_bases": [
            {"uuid": kb.uuid, "name": kb.name, "since": kb.since.isoformat()}
            for kb in setup.missing
        ],
        "unmatched_route_entries": [
            {"route": ref.route, "key": ref.key, "reason": ref.reason, "suggestion": ref.suggestion}
            for ref in setup.unmatched
        ],
        "deliveries": _deliveries_json(snapshot, now),
        "jobs_by_state": {state.value: count for state, count in snapshot.jobs_by_state.items()},
        "events_by_kind": dict(snapshot.events_by_kind),
        "silences": [silence_json(s, now) for s in silences if s.active(now)],
        "incidents": [incident_json(i) for i in snapshot.incidents],
    }


def incident_json(incident: Incident) -> dict[str, Any]:
    """An open incident for scripts: `acknowledged` is null until somebody ran `watcher ack`."""
    ack = incident.ack
    return {
        "id": incident.id,
        "kb_uuid": incident.kb_uuid,
        "kb_name": incident.kb_name,
        "failures": incident.failures,
        "since": incident.since.isoformat(),
        "opened_at": incident.opened_at.isoformat(),
        "latest": incident.last_kind.value,
        "latest_job": incident.last_job_uuid,
        "acknowledged": (
            {"by": ack.by, "at": ack.at.isoformat(), "comment": ack.comment} if ack else None
        ),
    }


def _kb_json(kb: KbSnapshot) -> dict[str, Any]:
    return {
        "account": kb.account,
        "uuid": kb.uuid,
        "name": kb.name,
        "latest_job": kb.job_uuid,
        "state": state_word(kb),
        "phase": kb.phase,
        "status": kb.status,
        "completed_datasources": kb.completed_datasources,
        "total_datasources": kb.total_datasources,
        "total_tokens": kb.total_tokens,
        "stalled": kb.stalled.value if kb.stalled else None,
        "updated_at": _iso(kb.updated_at),
        "finished_at": _iso(kb.finished_at),
        "sources": [{"uuid": s.uuid, "type": s.type.value, "where": s.where} for s in kb.sources],
        "database_status": kb.database,
    }


def _deliveries_json(snapshot: StoreSnapshot, now: datetime) -> dict[str, Any]:
    return {
        "by_state": {state.value: count for state, count in snapshot.outbox_by_state.items()},
        "oldest_undelivered_age_s": snapshot.oldest_undelivered_age(now),
        "routes": [
            {
                "route": r.route,
                "pending": r.pending + r.sending,
                "dead": r.dead,
                "held": r.held,
                "held_by": r.held_by,
                "held_until": _iso(r.held_until),
            }
            for r in snapshot.routes
        ],
        "dead_letters": [
            {
                "id": d.id,
                "route": d.route,
                "event_id": d.event_id,
                "kind": d.kind,
                "kb_uuid": d.kb_uuid,
                "job_uuid": d.job_uuid,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "created_at": _iso(d.created_at),
            }
            for d in snapshot.dead_letters
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

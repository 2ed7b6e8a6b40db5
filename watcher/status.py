"""`watcher status`: what the store knows, as a table for people or JSON for scripts. Pure.

Nothing here can hold a secret: the store keeps route names, never route URLs, and never
the token.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from watcher.edges.store_snapshot import KbSnapshot, StoreSnapshot
from watcher.render import format_duration


def state_word(kb: KbSnapshot) -> str:
    """One word for the latest job's state: stalled, pending, running, an outcome, or none."""
    if kb.job_uuid is None:
        return "no jobs"
    if kb.stalled is not None:
        return f"stalled ({kb.stalled.value})"
    if kb.outcome is not None:
        return kb.outcome.value
    status = (kb.status or kb.phase or "unknown").rsplit("_", 1)[-1].lower()
    return {"progress": "running", "running": "running", "pending": "pending"}.get(status, status)


def _progress(kb: KbSnapshot) -> str:
    if kb.total_datasources:
        return f"{kb.completed_datasources or 0}/{kb.total_datasources}"
    return "-"


def _age(kb: KbSnapshot, now: datetime) -> str:
    moment = kb.finished_at or kb.updated_at or kb.started_at or kb.created_at
    if moment is None:
        return "-"
    return format_duration(max(now - moment, timedelta(0))) + " ago"


def table(snapshot: StoreSnapshot, now: datetime) -> str:
    """A plain-text table of KBs, then the delivery backlog and dead letters."""
    rows = [("KNOWLEDGE BASE", "LATEST JOB", "STATE", "PROGRESS", "AGE")]
    for kb in snapshot.kbs:
        rows.append(
            (
                kb.name or kb.uuid,
                kb.job_uuid or "-",
                state_word(kb),
                _progress(kb),
                _age(kb, now),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    if len(rows) == 1:
        lines.append("(no knowledge base seen yet: run `watcher once` or `watcher run`)")
    lines.append("")
    lines.append(_deliveries(snapshot, now))
    for route in snapshot.routes:
        lines.append(f"  {route.route}: {route.pending + route.sending} pending, {route.dead} dead")
    for dead in snapshot.dead_letters:
        lines.append(
            f"  dead #{dead.id} {dead.route} {dead.kind} job {dead.job_uuid or '-'} after "
            f"{dead.attempts} attempts: {dead.last_error or 'unknown error'}"
        )
    last = snapshot.last_cycle_at
    lines.append(f"Last successful cycle: {_when(last, now)}")
    return "\n".join(lines)


def _deliveries(snapshot: StoreSnapshot, now: datetime) -> str:
    oldest = snapshot.oldest_undelivered_age(now)
    wait = f", oldest waiting {format_duration(timedelta(seconds=oldest))}" if oldest else ""
    return f"Deliveries: {snapshot.undelivered} pending, {snapshot.dead} dead{wait}"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f"{moment.isoformat(timespec='seconds')} ({format_duration(now - moment)} ago)"


def as_json(snapshot: StoreSnapshot, now: datetime) -> dict[str, Any]:
    """The same facts as a JSON-ready dict (stable keys for scripts)."""
    return {
        "at": now.isoformat(),
        "last_successful_cycle_at": _iso(snapshot.last_cycle_at),
        "knowledge_bases": [
            {
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
            }
            for kb in snapshot.kbs
        ],
        "deliveries": {
            "by_state": dict(snapshot.outbox_by_state),
            "oldest_undelivered_age_s": snapshot.oldest_undelivered_age(now),
            "routes": [
                {"route": r.route, "pending": r.pending + r.sending, "dead": r.dead}
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
        },
        "jobs_by_state": dict(snapshot.jobs_by_state),
        "events_by_kind": dict(snapshot.events_by_kind),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

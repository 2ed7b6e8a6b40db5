"""An event as a JSON document for machines: the body of a `format = "event"` route's webhook.

Pure. The shape follows the Standard Webhooks payload recommendation (`type`, `timestamp`,
`data`) and is versioned: `data.schema_version` is 1, and `schemas/event-v1.schema.json` at the
repository root is its JSON Schema (the tests validate every kind against it). Within one
version, fields are only ever added; a field is never renamed, retyped or dropped.

    type        "gradient_watcher.<event word>" (e.g. gradient_watcher.completed); the test
                message of `watcher test-notify` is gradient_watcher.test
    timestamp   when the watcher saw the event (its wall clock, RFC 3339, UTC)
    data        the event: its word, severity, headline, the knowledge base, the job as the
                API reported it (raw `phase`/`status` strings, counts as integers, the API's
                own timestamps), its data sources, the stall, and a `detail` sentence;
                `account` (the `[[accounts]]` name) when the config has several accounts

The body is serialised with sorted keys, no spaces and only ASCII (`\\uXXXX` escapes): the
bytes signed are the bytes sent, and no control or bidirectional character from outside the
watcher reaches a receiver raw. `webhook_id` gives each (event, route) message the stable id
that Standard Webhooks asks for: the same on every retry, never containing a `.`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from watcher.core.incident import IncidentNote
from watcher.core.model import DataSourceJob, Job
from watcher.core.render import headline, kb_link
from watcher.core.state import Transition

SCHEMA_VERSION = 1
TYPE_PREFIX = "gradient_watcher."
TEST_EVENT = "test"


def event_document(transition: Transition, dashboard: str) -> dict[str, Any]:
    """The version-1 document of one event (see the module docstring for the shape)."""
    t = transition
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": t.event_id,
        "event": t.kind.value,
        "severity": t.severity.value,
        "headline": headline(t),
        "detail": t.detail,
        "knowledge_base": _kb(t, dashboard),
        "job": _job(t.job) if t.job is not None else None,
        "stall": _stall(t),
        "corrects": t.corrects.value if t.corrects is not None else None,
        "route": t.route,
        "incident": _incident(t.incident),
    }
    if t.account is not None:  # several [[accounts]]: the one whose cycle saw the event
        data["account"] = t.account
    if t.silence_id is not None:  # `silence_ended`: the silence, and what it hid still open
        data["silence"] = {
            "id": t.silence_id,
            "still_open": [
                {
                    "uuid": p.kb_uuid,
                    "name": p.kb_name,
                    "problem": p.problem.value,
                    "job": p.job_uuid,
                    "failures": p.failures,
                    "since": _stamp(p.since) if p.since is not None else None,
                    "acknowledged_by": p.acked_by,
                    "acknowledged_at": _stamp(p.acked_at) if p.acked_at is not None else None,
                }
                for p in t.open_problems
            ],
        }
    return {"type": TYPE_PREFIX + t.kind.value, "timestamp": _stamp(t.at), "data": data}


def _incident(note: IncidentNote | None) -> dict[str, Any] | None:
    """The KB's incident as this event tells it: `id`, `failures` in a row `since` (RFC 3339,
    the API's clock when known), the `latest` failure's event word, `closed`, `duration_s`
    (how long it lasted on a closing event, how long it is open on a reminder or escalation),
    `reminder` (its number), `escalated_from` and `waited_s` (an escalation's route and wait)."""
    if note is None:
        return None
    return {
        "id": note.id,
        "failures": note.failures,
        "since": _stamp(note.since),
        "latest": note.last_kind.value,
        "closed": note.closed,
        "duration_s": note.duration.total_seconds() if note.duration is not None else None,
        "reminder": note.reminder,
        "escalated_from": note.route,
        "waited_s": note.waited.total_seconds() if note.waited is not None else None,
    }


def notify_test_document(now: datetime) -> dict[str, Any]:
    """The document `watcher test-notify` posts to a `format = "event"` route."""
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": f"test/{int(now.timestamp())}",
        "event": TEST_EVENT,
        "severity": "info",
        "headline": "test message from gradient-watcher",
        "detail": "If this arrived with a valid signature, the route works.",
        "knowledge_base": None,
        "job": None,
        "stall": None,
        "corrects": None,
        "route": None,
        "incident": None,
    }
    return {"type": TYPE_PREFIX + TEST_EVENT, "timestamp": _stamp(now), "data": data}


def document_text(document: dict[str, Any]) -> str:
    """The document as sent and signed: sorted keys, compact, ASCII only."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def webhook_id(event_id: str, route: str) -> str:
    """The Standard Webhooks message id of one event sent to one route: `msg_` and 32 hex
    digits of SHA-256 over both, the same for every retry and for no other message."""
    digest = hashlib.sha256(f"{route}\0{event_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def _kb(t: Transition, dashboard: str) -> dict[str, Any] | None:
    if t.kb_uuid is None:
        return None
    return {"uuid": t.kb_uuid, "name": t.kb_name, "control_panel": kb_link(dashboard, t.kb_uuid)}


def _stall(t: Transition) -> dict[str, Any] | None:
    if t.stall_reason is None:
        return None
    since = _stamp(t.stalled_since) if t.stalled_since is not None else None
    return {"reason": t.stall_reason.value, "last_moved_at": since}


def _job(job: Job) -> dict[str, Any]:
    outcome = job.outcome
    return {
        "uuid": job.uuid,
        "phase": job.phase_text,
        "status": job.status_text,
        "outcome": outcome.value if outcome is not None else None,
        "created_at": _api_stamp(job.created_at),
        "started_at": _api_stamp(job.started_at),
        "finished_at": _api_stamp(job.finished_at),
        "updated_at": _api_stamp(job.updated_at),
        "completed_datasources": job.completed_datasources,
        "total_datasources": job.total_datasources,
        "total_tokens": job.total_tokens if job.total_tokens is not None else job.tokens,
        "is_report_available": job.is_report_available,
        "item_counts": {
            "indexed": job.items_indexed,
            "failed": job.items_failed,
            "skipped": job.items_skipped,
        },
        "data_sources": [_source(ds) for ds in job.data_source_jobs],
    }


def _source(ds: DataSourceJob) -> dict[str, Any]:
    return {
        "data_source_uuid": ds.data_source_uuid,
        "status": ds.status_text,
        "indexed_item_count": ds.indexed_item_count,
        "failed_item_count": ds.failed_item_count,
        "skipped_item_count": ds.skipped_item_count,
        "removed_item_count": ds.removed_item_count,
        "indexed_file_count": ds.indexed_file_count,
        "total_file_count": ds.total_file_count,
        "total_bytes": ds.total_bytes,
        "total_bytes_indexed": ds.total_bytes_indexed,
        "error_msg": ds.error_msg,
        "error_details": ds.error_details,
    }


def _stamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _api_stamp(moment: datetime | None) -> str | None:
    return _stamp(moment) if moment is not None else None

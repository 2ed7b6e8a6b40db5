"""The JSON shapes of `/api/v1`, which the page's templates render too: one view, two formats.

Pure functions from `watcher.core.records` values to JSON-ready dicts. Every text that comes
from outside (names, errors, details, target answers) is made inert here
(`watcher.core.inert`): control and bidi characters become visible escapes in the page and
the API alike; the HTML templates escape it on top, and every response is redacted on its way
out (`watcher.edges.web.app`). Times are ISO-8601 in UTC; durations and ages are seconds.
Ages of the API's times are on the API's clock (`api_now`), ages of the watcher's own times on
the wall clock (`now`), never mixed.

Keys are stable: new keys may appear (a knowledge base's `incident` once the alert lifecycle
lands, a data source's `name` and a job's `report` once they are read), none is renamed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from watcher.core.browse import Standing, last_moved, point_state, standing
from watcher.core.cost import TOKENS_PER_PRICE_UNIT, ModelPrice
from watcher.core.incident import Incident
from watcher.core.inert import inert
from watcher.core.model import DataSourceJob, Job
from watcher.core.outbox import TargetResult
from watcher.core.records import (
    DeliveryRecord,
    EventRecord,
    JobPoint,
    JobRecord,
    KbRecord,
    OutboxCounts,
)
from watcher.core.state import JobState
from watcher.edges.web.host import WatcherFacts

Json = dict[str, Any]
API = "/api/v1"


def text(value: str | None) -> str | None:
    """Outside text made inert (None stays None)."""
    return None if value is None else inert(value)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds(), 3)


def age(moment: datetime | None, now: datetime) -> float | None:
    """Seconds since `moment` at `now` (never negative); both on one clock."""
    return None if moment is None else max(round((now - moment).total_seconds(), 3), 0.0)


def job_standing(state: JobState) -> Standing:
    """A job's state word, by the same rule as a knowledge base's."""
    return standing(KbRecord(state.kb_uuid, None, state.first_seen_at, latest=state))


def point_view(point: JobPoint, price: ModelPrice | None = None) -> Json:
    """One job of a sparkline or a chart; with its cost at `price` (the KB's model price as
    last read: a number in the price's unit, the API names no currency) once it finished."""
    cost = None
    if price is not None and point.tokens is not None and point.outcome is not None:
        cost = point.tokens * price.per_million / TOKENS_PER_PRICE_UNIT
    return {
        "uuid": point.uuid,
        "state": point_state(point),
        "outcome": point.outcome.value if point.outcome else None,
        "condition": point.condition.value,
        "created_at": iso(point.created_at),
        "started_at": iso(point.started_at),
        "finished_at": iso(point.finished_at),
        "duration_s": seconds(point.duration),
        "tokens": point.tokens,
        "cost": cost,
    }


def _duration(job: Job, api_now: datetime) -> float | None:
    """Started to finished, or to now while it runs (the API's clock)."""
    if job.started_at is None:
        return None
    end = job.finished_at or (None if job.is_terminal else api_now)
    return None if end is None else seconds(max(end - job.started_at, timedelta(0)))


def data_source_view(ds: DataSourceJob) -> Json:
    """One data source's part in a job (`name` arrives with the data-source reads)."""
    return {
        "uuid": ds.data_source_uuid,
        "name": None,
        "status": text(ds.status_text),
        "started_at": iso(ds.started_at),
        "completed_at": iso(ds.completed_at),
        "items": {
            "indexed": ds.indexed_item_count,
            "failed": ds.failed_item_count,
            "skipped": ds.skipped_item_count,
            "removed": ds.removed_item_count,
        },
        "files": {"indexed": ds.indexed_file_count, "total": ds.total_file_count},
        "bytes": {"indexed": ds.total_bytes_indexed, "total": ds.total_bytes},
        "error_msg": text(ds.error_msg),
        "error_details": text(ds.error_details),
    }


def job_view(state: JobState, api_now: datetime, *, detail: bool = False) -> Json:
    """A job as the watcher last saw it; with `detail`, its data sources too."""
    job = state.job
    tokens = job.total_tokens if job.total_tokens is not None else job.tokens
    view: Json = {
        "uuid": job.uuid,
        "kb_uuid": state.kb_uuid,
        "state": job_standing(state).value,
        "phase": text(job.phase_text),
        "status": text(job.status_text),
        "outcome": job.outcome.value if job.outcome else None,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "updated_at": iso(job.updated_at),
        "duration_s": _duration(job, api_now),
        "progress": {"completed": job.completed_datasources, "total": job.total_datasources},
        "tokens": tokens,
        "items": {
            "indexed": job.items_indexed,
            "failed": job.items_failed,
            "skipped": job.items_skipped,
        },
        "stalled": state.stalled.value if state.stalled else None,
        "stall_deadline": iso(state.deadline),
        "first_seen_at": iso(state.first_seen_at),
        "is_report_available": job.is_report_available,
        "links": {"page": f"/kb/{state.kb_uuid}/jobs/{job.uuid}", "self": f"{API}/jobs/{job.uuid}"},
    }
    if detail:
        view["data_sources"] = [data_source_view(ds) for ds in job.data_source_jobs]
        view["report"] = None  # a kept report, once the watcher keeps them
    return view


def kb_view(kb: KbRecord, api_now: datetime) -> Json:
    """A knowledge base with its latest job, its age and the outcomes of its last jobs."""
    moved = last_moved(kb)
    return {
        "uuid": kb.uuid,
        "name": text(kb.name),
        "label": text(kb.label),
        "state": standing(kb).value,
        "first_seen_at": iso(kb.first_seen_at),
        "last_moved_at": iso(moved),
        "age_s": age(moved, api_now),
        "latest_job": job_view(kb.latest, api_now) if kb.latest else None,
        # the last jobs' states, oldest first as drawn (each job's figures: .../history)
        "recent": [{"uuid": m.uuid, "state": m.state} for m in reversed(kb.recent)],
        "incident": incident_view(kb.incident) if kb.incident else None,
        "links": {"page": f"/kb/{kb.uuid}", "self": f"{API}/knowledge_bases/{kb.uuid}"},
    }


def incident_view(incident: Incident) -> Json:
    """A KB's open incident: failures in a row since when, the latest, who acknowledged it."""
    ack = incident.ack
    return {
        "id": incident.id,
        "failures": incident.failures,
        "since": iso(incident.since),
        "opened_at": iso(incident.opened_at),
        "latest": incident.last_kind.value,
        "latest_job": incident.last_job_uuid,
        "acknowledged_by": text(ack.by) if ack else None,
        "acknowledged_at": iso(ack.at) if ack else None,
        "ack_comment": text(ack.comment) if ack else None,
    }


def target_view(target: TargetResult) -> Json:
    """What one URL of a route answered (the URL privacy-masked by apprise)."""
    return {
        "index": target.index,
        "service": text(target.name),
        "url": text(target.url),
        "ok": target.ok,
        "cause": target.cause.value if target.cause else None,
        "status": target.status,
        "detail": text(target.detail) or None,
    }


def delivery_view(row: DeliveryRecord, now: datetime) -> Json:
    """An outbox row: its state, attempts, last error, ages (wall clock) and each target."""
    return {
        "id": row.id,
        "route": text(row.route),
        "state": row.state.value,
        "event_id": text(row.event_id),
        "kind": text(row.kind),
        "kb_uuid": row.kb_uuid,
        "kb_name": text(row.kb_name),
        "job_uuid": row.job_uuid,
        "attempts": row.attempts,
        "last_error": text(row.last_error),
        "created_at": iso(row.created_at),
        "age_s": age(row.created_at, now),
        "next_attempt_at": iso(row.next_attempt_at),
        "sent_at": iso(row.sent_at),
        "settled_at": iso(row.settled_at),
        "targets": [target_view(t) for t in row.targets],
        "links": {"retry": f"{API}/deliveries/{row.id}/retry"} if row.state.value == "dead" else {},
    }


def event_view(event: EventRecord, now: datetime) -> Json:
    """An event and its delivery to each route."""
    return {
        "event_id": text(event.event_id),
        "kind": text(event.kind),
        "at": iso(event.at),
        "kb_uuid": event.kb_uuid,
        "job_uuid": event.job_uuid,
        "detail": text(event.detail),
        "stall_reason": event.stall_reason.value if event.stall_reason else None,
        "deliveries": [delivery_view(d, now) for d in event.deliveries],
    }


def job_record_view(record: JobRecord, now: datetime, api_now: datetime) -> Json:
    """A job in detail: data sources, the events it raised and where each went."""
    view = job_view(record.state, api_now, detail=True)
    view["kb_name"] = text(record.kb_name)
    view["events"] = [event_view(e, now) for e in record.events]
    return view


def counts_view(counts: OutboxCounts, now: datetime) -> Json:
    """Outbox rows by state and by route, and how long the oldest undelivered has waited."""
    return {
        "by_state": {state.value: n for state, n in counts.by_state.items()},
        "by_route": {
            text(route): {state.value: n for state, n in states.items()}
            for route, states in counts.by_route.items()
        },
        "undelivered": counts.undelivered,
        "oldest_undelivered_age_s": age(counts.oldest_undelivered_at, now),
    }


def facts_view(facts: WatcherFacts) -> Json:
    """The watcher itself."""
    budget = facts.budget
    return {
        "version": facts.version,
        "now": iso(facts.now),
        "api_now": iso(facts.api_now),
        "health": {
            "live": {"ok": facts.live.ok, "reason": text(facts.live.reason)},
            "ready": {"ok": facts.ready.ok, "reason": text(facts.ready.reason)},
        },
        "poll": {"interval_s": seconds(facts.poll_interval), "reason": facts.poll_reason},
        "last_cycle": {
            "ok": facts.last_cycle_ok,
            "error": text(facts.last_cycle_error),
            "last_successful_at": iso(facts.last_cycle_at),
            "last_successful_age_s": age(facts.last_cycle_at, facts.now),
        },
        "api": {
            "ok": facts.api_failing_since is None,
            "failing_since": iso(facts.api_failing_since),
            "error": text(facts.api_error),
        },
        "budget": {
            "per_minute": budget.per_minute,
            "hourly_limit": budget.limit,
            "hourly_remaining": budget.remaining,
            "requests_sent": budget.requests_sent,
        },
        "retention_s": seconds(facts.retention),
        "standby": text(facts.standby),
        "setup": [inert(line) for line in facts.setup],
        "listen": facts.listen,
        "config": inert(facts.config, newlines=True),
    }


def page_view(items: Iterable[Json], next_cursor: str | None, base: str) -> Json:
    """A page of a list: its items and the link to the next page (None: the last)."""
    listed = list(items)
    sep = "&" if "?" in base else "?"
    return {
        "items": listed,
        "next": None if next_cursor is None else f"{base}{sep}cursor={next_cursor}",
        "next_cursor": next_cursor,
    }


def summary(kbs: Sequence[KbRecord]) -> Json:
    """How many knowledge bases stand where (every standing, 0 included)."""
    counts = {s.value: 0 for s in Standing}
    for kb in kbs:
        counts[standing(kb).value] += 1
    counts["problems"] = sum(1 for kb in kbs if standing(kb).is_problem)
    counts["total"] = len(kbs)
    return counts

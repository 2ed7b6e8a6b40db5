"""Cost and time in `watcher status`: each KB's latest job, its cost once it finished (at its
model's price as last read) or its ETA while it runs (on the API's clock). Pure.

A job of the snapshot carries no per-file counts, so its ETA here is measured on done data
sources (`watcher.core.cost.eta`); an alert measures it on files when it has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from watcher.core.cost import ModelPrice, eta, job_cost
from watcher.core.inert import inert
from watcher.core.model import Job, Phase, Status
from watcher.core.snapshot import KbSnapshot, StoreSnapshot


def _job(kb: KbSnapshot) -> Job | None:
    """The latest job as far as the snapshot tells it (unknown texts are not terminal)."""
    if kb.job_uuid is None:
        return None
    phases, statuses = {p.value for p in Phase}, {s.value for s in Status}
    phase = Phase(kb.phase) if kb.phase in phases else Phase.UNKNOWN
    status = Status(kb.status) if kb.status in statuses else Status.UNKNOWN
    return Job(
        uuid=kb.job_uuid,
        knowledge_base_uuid=kb.uuid,
        phase=phase,
        status=status,
        started_at=kb.started_at,
        completed_datasources=kb.completed_datasources,
        total_datasources=kb.total_datasources,
        total_tokens=kb.total_tokens,
        tokens=kb.tokens,
    )


def cost_and_time(
    kb: KbSnapshot, prices: Mapping[str, ModelPrice], api_now: datetime | None
) -> dict[str, Any] | None:
    """`{"cost": ..., "cost_text": ...}` for a finished job with a price, `{"eta_s": ...,
    "eta_text": ...}` for a running one when the API's clock is known; else None."""
    job = _job(kb)
    if job is None:
        return None
    if job.is_terminal:
        cost = job_cost(job, prices.get(kb.uuid))
        if cost is None:
            return None
        return {"cost": cost.amount, "per_million": cost.per_million, "cost_text": cost.text()}
    if api_now is None or not job.is_running:
        return None
    found = eta(job, api_now)
    seconds = found.remaining.total_seconds() if found.remaining is not None else None
    return {"eta_s": seconds, "eta_text": found.text()}


def lines(
    snapshot: StoreSnapshot, prices: Mapping[str, ModelPrice], api_now: datetime | None
) -> list[str]:
    """`Cost and time:` and one line per KB that has something to say (none: no lines)."""
    said = []
    for kb in snapshot.kbs:
        found = cost_and_time(kb, prices, api_now)
        if found is not None:
            text = found.get("cost_text") or found.get("eta_text")
            said.append(inert(f"  {kb.name or kb.uuid}: {text}"))
    return ["", "Cost and time (latest jobs):", *said] if said else []


def as_json(
    snapshot: StoreSnapshot, prices: Mapping[str, ModelPrice], api_now: datetime | None
) -> dict[str, Any]:
    """KB uuid -> its latest job's cost or ETA, for `watcher status --json`."""
    found = {kb.uuid: cost_and_time(kb, prices, api_now) for kb in snapshot.kbs}
    return {uuid: value for uuid, value in found.items() if value is not None}

"""Costs on a cycle's transitions, and the `cost_spike` events they reveal. Pure.

Each terminal transition (completed, no_changes, partial, failed, cancelled) of a job whose
KB's embedding model has a known price gets the job's cost (`watcher.core.cost.job_cost`). A
priced cost is added to the KB's recent costs (oldest first, the last `KEEP_COSTS`, one per
job); compared with those before it, a spike adds a `cost_spike` transition for the job
(event id `job/cost_spike`, so a replayed cycle never alerts twice).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace

from watcher.core.cost import ModelPrice, SpikeRule, job_cost, spike
from watcher.core.model import EventKind
from watcher.core.state import Delivery, Transition

COSTS_KEY = "recent_costs"
KEEP_COSTS = 20
Recent = Mapping[str, tuple[tuple[str, float], ...]]  # KB uuid -> (job uuid, amount), oldest first


def annotate(
    transitions: Sequence[Transition],
    prices: Mapping[str, ModelPrice],
    recent: Recent,
    rule: SpikeRule,
) -> tuple[tuple[Transition, ...], dict[str, tuple[tuple[str, float], ...]]]:
    """The transitions with costs (and `cost_spike`s after their outcomes), and the KBs'
    recent costs after them. `prices` maps a KB uuid to its model's price."""
    costs = {kb: tuple(rows) for kb, rows in recent.items()}
    out: list[Transition] = []
    for t in transitions:
        price = prices.get(t.kb_uuid or "")
        cost = job_cost(t.job, price) if t.kind.is_terminal and t.job is not None else None
        kb, job = t.kb_uuid, t.job
        if cost is None or kb is None or job is None:
            out.append(t)
            continue
        out.append(t := replace(t, cost=cost))
        before = costs.get(kb, ())
        if any(seen == job.uuid for seen, _ in before):
            continue  # a corrected outcome: counted once
        found = spike(cost.amount, [amount for _, amount in before], rule)
        if found is not None:
            out.append(_spike_transition(t, job.uuid, found.text(), found.ratio))
        costs[kb] = (*before, (job.uuid, cost.amount))[-KEEP_COSTS:]
    return tuple(out), costs


def _spike_transition(t: Transition, job_uuid: str, detail: str, ratio: float) -> Transition:
    """The `cost_spike` of the job of outcome `t`."""
    return replace(
        t,
        event_id=f"{job_uuid}/cost_spike",
        kind=EventKind.COST_SPIKE,
        detail=detail,
        spike_ratio=ratio,
        stall_reason=None,
        stalled_since=None,
        corrects=None,
    )


def lowest_factor(default: float | None, by_route: Mapping[str, float]) -> float | None:
    """The factor `cost_spike` is detected at: the lowest of `[cost]`'s and the routes' own
    (None: no spike detected at all)."""
    factors = [f for f in (default, *by_route.values()) if f is not None]
    return min(factors) if factors else None


def keep_spikes(
    deliveries: Sequence[Delivery], transitions: Sequence[Transition], by_route: Mapping[str, float]
) -> tuple[Delivery, ...]:
    """`deliveries` without the `cost_spike`s a route's own `cost_spike_factor` is not
    exceeded for (a route without one hears every spike detected)."""
    ratios = {t.event_id: t.spike_ratio for t in transitions if t.kind is EventKind.COST_SPIKE}
    return tuple(
        d
        for d in deliveries
        if d.event_id not in ratios
        or d.route not in by_route
        or (ratios[d.event_id] or 0) > by_route[d.route]
    )


def encode_recent(recent: Recent) -> str:
    """The meta value under `COSTS_KEY`."""
    return json.dumps({kb: [list(row) for row in rows] for kb, rows in recent.items()})


def decode_recent(value: str | None) -> dict[str, tuple[tuple[str, float], ...]]:
    """The recent costs from the meta value (an unreadable value reads as none)."""
    try:
        data = json.loads(value) if value else {}
        return {
            str(kb): tuple((str(job), float(amount)) for job, amount in rows)
            for kb, rows in data.items()
        }
    except (ValueError, TypeError, AttributeError):
        return {}

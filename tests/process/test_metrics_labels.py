"""The metrics say what the product sees: `/metrics` scraped from a real `watcher run` while
one job runs and another waits, and the label values it emits compared with the enums the
store's snapshot and `watcher status` use."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from tests.process.conftest import (
    Route,
    Service,
    config_text,
    http_get,
    manual_simulator,
    metrics_url,
    scenario,
)
from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryOutcome, DeliveryState
from watcher.core.state import JobCondition
from watcher.edges.metrics import CycleOutcome

KBS = [("alpha", "alpha-docs"), ("beta", "beta-docs")]
TIMELINE = [
    # Running since before the watcher started, for a long while.
    {"at": -5, "start_job": {"kb": "alpha", "id": "a1", "pending": 1, "run": 3600}},
    # Waiting for good.
    {"at": -5, "start_job": {"kb": "beta", "id": "b1", "pending": None}},
]


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of `/metrics`, by name and label set."""
    status, body = http_get(url)
    assert status == 200
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def test_jobs_are_counted_as_running_and_pending_and_the_budget_is_exported(
    service: Service,
) -> None:
    sim = manual_simulator(scenario(KBS, TIMELINE))
    receiver = service.receiver()
    text = config_text(
        base_url=service.serve(sim),
        state=service.state,
        routes=[Route("ops", (receiver.url_json(),))],
        listen="127.0.0.1:0",
    )
    service.write_config(text)
    daemon = service.run_daemon()
    daemon.wait_for_log("cycle_finished", count=2)

    metrics = scrape(metrics_url(daemon, "/metrics"))
    status = json.loads(service.cli("status", "--json").stdout)

    jobs = {
        dict(labels)["state"]: value for labels, value in metrics["gradient_watcher_jobs"].items()
    }
    assert jobs == {"pending": 1, "running": 1, "stalled": 0, "unknown": 0, "done": 0}
    # The same words, the same counts, in `watcher status`.
    assert status["jobs_by_state"] == jobs
    assert {kb["state"] for kb in status["knowledge_bases"]} == {"pending", "running"}
    assert metrics["gradient_watcher_api_budget_per_minute"] == {(): 250.0}
    started = metrics["gradient_watcher_events_total"][(("kind", "started"),)]
    assert started == 2


def test_every_closed_label_set_is_exactly_its_enum(service: Service) -> None:
    sim = manual_simulator(scenario(KBS, TIMELINE))
    receiver = service.receiver()
    text = config_text(
        base_url=service.serve(sim),
        state=service.state,
        routes=[Route("ops", (receiver.url_json(),))],
        listen="127.0.0.1:0",
    )
    service.write_config(text)
    daemon = service.run_daemon()
    daemon.wait_for_log("alert_delivered")
    daemon.wait_for_log("cycle_finished", count=2)

    metrics = scrape(metrics_url(daemon, "/metrics"))

    def values(name: str, label: str) -> set[str]:
        return {dict(labels)[label] for labels in metrics[name]}

    assert values("gradient_watcher_jobs", "state") == {c.value for c in JobCondition}
    assert values("gradient_watcher_outbox_depth", "state") == {s.value for s in DeliveryState}
    assert values("gradient_watcher_events_total", "kind") == {k.value for k in EventKind}
    assert values("gradient_watcher_cycles_total", "outcome") == {o.value for o in CycleOutcome}
    # every route's every outcome, at 0 until it happens: a rate of failures is 0, not absent
    assert values("gradient_watcher_deliveries_total", "outcome") == {
        o.value for o in DeliveryOutcome
    }
    assert (
        metrics["gradient_watcher_deliveries_total"][(("outcome", "dead"), ("route", "ops"))] == 0
    )
    assert (
        metrics["gradient_watcher_deliveries_total"][(("outcome", "sent"), ("route", "ops"))] >= 1
    )

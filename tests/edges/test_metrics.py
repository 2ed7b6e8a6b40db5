"""Metrics: each watcher's own registry, rendered in the exposition format with the right values."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from watcher.edges.metrics import Metrics, endpoint_label

P = "gradient_watcher_"


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse `render()` into {(sample name, sorted labels): value}."""
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics)[(P + name, tuple(sorted(labels.items())))]


def test_cycles_are_counted_by_outcome_and_success_stamps_the_time() -> None:
    m = Metrics()
    m.observe_cycle(True, 1.5, now=1_700_000_000.0)
    m.observe_cycle(True, 0.5, now=1_700_000_060.0)
    m.observe_cycle(False, 3.0, now=1_700_000_120.0)

    assert value(m, "cycles_total", outcome="ok") == 2
    assert value(m, "cycles_total", outcome="error") == 1
    assert value(m, "cycle_duration_seconds_count") == 3
    assert value(m, "cycle_duration_seconds_sum") == pytest.approx(5.0)
    assert value(m, "cycle_duration_seconds_bucket", le="1.0") == 1
    assert value(m, "last_successful_cycle_timestamp_seconds") == 1_700_000_060.0


def test_api_requests_are_counted_by_endpoint_template_and_status() -> None:
    m = Metrics()
    kb = "/v2/gen-ai/knowledge_bases/9f3c1a2b-0000-4000-8000-123456789abc/indexing_jobs"
    m.observe_api(kb + "?page=2", 200, 0.2)
    m.observe_api(kb, 429, 0.1)
    m.observe_api("list_knowledge_bases", "timeout", 30.0)

    template = "/v2/gen-ai/knowledge_bases/{uuid}/indexing_jobs"
    assert value(m, "api_requests_total", endpoint=template, status="200") == 1
    assert value(m, "api_requests_total", endpoint=template, status="429") == 1
    assert value(m, "api_requests_total", endpoint="list_knowledge_bases", status="timeout") == 1
    assert value(m, "api_request_duration_seconds_count", endpoint=template) == 2


def test_plain_gauges_hold_the_last_value_set() -> None:
    m = Metrics()
    m.set_ratelimit_remaining(4321)
    m.set_api_budget_per_minute(40)
    m.set_poll_interval(60)
    m.set_api_up(True)
    assert value(m, "api_ratelimit_remaining") == 4321
    assert value(m, "api_budget_per_minute") == 40
    assert value(m, "poll_interval_seconds") == 60
    assert value(m, "api_up") == 1
    m.set_api_up(False)
    assert value(m, "api_up") == 0


def test_events_and_deliveries_are_counted_by_label() -> None:
    m = Metrics()
    m.count_events(["failed", "stalled", "failed"])
    m.count_delivery("ops", "sent")
    m.count_delivery("ops", "failed")
    m.count_delivery("pager", "dead")

    assert value(m, "events_total", kind="failed") == 2
    assert value(m, "events_total", kind="stalled") == 1
    assert value(m, "events_total", kind="completed") == 0  # known kinds export from the start
    assert value(m, "deliveries_total", route="ops", outcome="sent") == 1
    assert value(m, "deliveries_total", route="ops", outcome="failed") == 1
    assert value(m, "deliveries_total", route="pager", outcome="dead") == 1


@pytest.mark.parametrize(
    ("route", "outcome"),
    [
        # An apprise URL must never become a label value.
        ("slack://T1/B2/C3", "sent"),
        # Outcomes are a closed set.
        ("ops", "bounced"),
    ],
)
def test_count_delivery_refuses_urls_and_unknown_outcomes(route: str, outcome: str) -> None:
    m = Metrics()
    with pytest.raises(ValueError):
        m.count_delivery(route, outcome)
    assert "slack://" not in m.render().decode()


def test_store_gauges_are_set_and_states_that_vanish_drop_to_zero() -> None:
    m = Metrics()
    m.set_store_gauges({"running": 2, "stalled": 1}, {"pending": 3, "dead": 1}, 95.0, 1)
    assert value(m, "jobs", state="running") == 2
    assert value(m, "jobs", state="stalled") == 1
    assert value(m, "jobs", state="pending") == 0
    assert value(m, "outbox_depth", state="pending") == 3
    assert value(m, "oldest_undelivered_age_seconds") == 95.0
    assert value(m, "dead_letters") == 1

    m.set_store_gauges({"done": 3}, {}, None, 0)
    assert value(m, "jobs", state="running") == 0
    assert value(m, "jobs", state="done") == 3
    assert value(m, "outbox_depth", state="pending") == 0
    assert value(m, "oldest_undelivered_age_seconds") == 0
    assert value(m, "dead_letters") == 0


def test_store_gauges_set_again_with_equal_counts_stay_right_and_a_change_still_shows() -> None:
    """A quiet cycle sets the same counts again (the per-state series are then left as they
    are); a count given as 0 equals one left out, and the age and dead letters always move."""
    m = Metrics()
    m.set_store_gauges({"running": 2}, {"pending": 3}, 10.0, 0)
    m.set_store_gauges({"running": 2, "done": 0}, {"pending": 3}, 40.0, 1)
    assert value(m, "jobs", state="running") == 2
    assert value(m, "jobs", state="done") == 0
    assert value(m, "outbox_depth", state="pending") == 3
    assert value(m, "oldest_undelivered_age_seconds") == 40.0
    assert value(m, "dead_letters") == 1

    m.set_store_gauges({"running": 1}, {"pending": 3}, 50.0, 1)
    assert value(m, "jobs", state="running") == 1
    assert value(m, "outbox_depth", state="pending") == 3


def test_two_instances_do_not_share_values_and_export_no_created_series() -> None:
    a, b = Metrics(), Metrics()
    a.observe_cycle(True, 1.0, now=10.0)
    assert value(a, "cycles_total", outcome="ok") == 1
    assert value(b, "cycles_total", outcome="ok") == 0
    assert "_created" not in a.render().decode()


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        # A uuid in the path folds into a template so label cardinality stays bounded.
        (
            "/v2/gen-ai/indexing_jobs/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "/v2/gen-ai/indexing_jobs/{uuid}",
        ),
        # A query string never reaches a label.
        ("/v2/gen-ai/knowledge_bases?page=3&per_page=100", "/v2/gen-ai/knowledge_bases"),
        # A name passes through untouched.
        ("get_job", "get_job"),
    ],
)
def test_endpoint_label_folds_uuids_and_drops_query_strings(endpoint: str, expected: str) -> None:
    assert endpoint_label(endpoint) == expected

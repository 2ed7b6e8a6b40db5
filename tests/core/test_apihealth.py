"""Self-alerting: a revoked token or a dead API does not go unnoticed, and recovery is said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watcher.apihealth import ApiHealth, api_health
from watcher.model import EventKind

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
AFTER = timedelta(minutes=10)


def test_a_short_outage_is_not_alerted() -> None:
    health, found = api_health(ApiHealth(), "HTTP 503", NOW, AFTER)
    assert found == ()
    health, found = api_health(health, "HTTP 503", NOW + timedelta(minutes=9), AFTER)
    assert found == ()
    health, found = api_health(health, None, NOW + timedelta(minutes=10), AFTER)
    assert found == ()
    assert health == ApiHealth()


def test_an_outage_longer_than_the_limit_is_alerted_once_then_recovered_once() -> None:
    health, _ = api_health(ApiHealth(), "HTTP 401 unauthorized", NOW, AFTER)
    health, found = api_health(health, "HTTP 401 unauthorized", NOW + AFTER, AFTER)
    assert [t.kind for t in found] == [EventKind.API_UNREACHABLE]
    assert found[0].detail is not None and "401" in found[0].detail
    health, again = api_health(health, "HTTP 401 unauthorized", NOW + 2 * AFTER, AFTER)
    assert again == ()
    health, back = api_health(health, None, NOW + 3 * AFTER, AFTER)
    assert [t.kind for t in back] == [EventKind.API_RECOVERED]
    assert health == ApiHealth()


def test_event_ids_are_tied_to_the_outage_so_a_replay_is_idempotent() -> None:
    health, _ = api_health(ApiHealth(), "x", NOW, AFTER)
    _, first = api_health(health, "x", NOW + AFTER, AFTER)
    _, replay = api_health(health, "x", NOW + AFTER + timedelta(seconds=5), AFTER)
    assert first[0].event_id == replay[0].event_id

"""Self-alerting: a revoked token or a dead API does not go unnoticed, and recovery is said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.apihealth import ApiHealth, api_health
from watcher.core.clocks import Elapsed, Instant
from watcher.core.model import EventKind

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NOW = Instant.aligned(T0)
AFTER = timedelta(minutes=10)


def at(delta: timedelta, wall_step: timedelta = timedelta(0)) -> Instant:
    """`delta` after NOW on every clock, the wall clock also stepped by `wall_step`."""
    return Instant(T0 + delta + wall_step, T0 + delta, NOW.elapsed.minus(-delta))


def test_a_short_outage_is_not_alerted() -> None:
    health, found = api_health(ApiHealth(), "HTTP 503", NOW, AFTER)
    assert found == ()
    health, found = api_health(health, "HTTP 503", at(timedelta(minutes=9)), AFTER)
    assert found == ()
    health, found = api_health(health, None, at(timedelta(minutes=10)), AFTER)
    assert found == ()
    assert health == ApiHealth()


def test_an_outage_longer_than_the_limit_is_alerted_once_then_recovered_once() -> None:
    health, _ = api_health(ApiHealth(), "HTTP 401 unauthorized", NOW, AFTER)
    health, found = api_health(health, "HTTP 401 unauthorized", at(AFTER), AFTER)
    assert [t.kind for t in found] == [EventKind.API_UNREACHABLE]
    assert found[0].detail is not None and "401" in found[0].detail
    health, again = api_health(health, "HTTP 401 unauthorized", at(2 * AFTER), AFTER)
    assert again == ()
    health, back = api_health(health, None, at(3 * AFTER), AFTER)
    assert [t.kind for t in back] == [EventKind.API_RECOVERED]
    assert health == ApiHealth()


def test_event_ids_are_tied_to_the_outage_so_a_replay_is_idempotent() -> None:
    health, _ = api_health(ApiHealth(), "x", NOW, AFTER)
    _, first = api_health(health, "x", at(AFTER), AFTER)
    _, replay = api_health(health, "x", at(AFTER + timedelta(seconds=5)), AFTER)
    assert first[0].event_id == replay[0].event_id


@pytest.mark.parametrize(
    ("wall_step", "lasted", "alerted"),
    [
        # the wall clock jumps an hour ahead a minute into an outage: no early alert
        (timedelta(hours=1), timedelta(minutes=1), False),
        # it steps an hour back: the alert still comes when the outage has lasted `after`
        (timedelta(hours=-1), AFTER, True),
    ],
)
def test_how_long_the_api_failed_is_measured_on_the_elapsed_clock(
    wall_step: timedelta, lasted: timedelta, alerted: bool
) -> None:
    health, _ = api_health(ApiHealth(), "HTTP 503", NOW, AFTER)
    _, found = api_health(health, "HTTP 503", at(lasted, wall_step), AFTER)
    assert bool(found) is alerted


def test_an_outage_recorded_in_another_boot_is_measured_again_from_now() -> None:
    health, _ = api_health(ApiHealth(), "HTTP 503", NOW, AFTER)
    rebooted = Instant(T0 + 2 * AFTER, T0 + 2 * AFTER, Elapsed(30.0, "next-boot"))
    health, found = api_health(health, "HTTP 503", rebooted, AFTER)
    assert found == ()
    assert health.failing_since == T0  # the outage keeps its name
    later = Instant(
        T0 + 3 * AFTER, T0 + 3 * AFTER, Elapsed(30.0 + AFTER.total_seconds(), "next-boot")
    )
    _, found = api_health(health, "HTTP 503", later, AFTER)
    assert [t.event_id for t in found] == [f"api/api_unreachable/{T0.isoformat()}"]

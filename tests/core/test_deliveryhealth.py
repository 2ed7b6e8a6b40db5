"""Self-alerting about delivery: a route whose alerts keep failing is news, told once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.clocks import Elapsed
from watcher.core.deliveryhealth import DeliveryHealth, RouteRound, delivery_health
from watcher.core.model import EventKind
from watcher.core.outbox import FailureCause, TargetResult

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BOOTED = Elapsed(5000.0, "boot-1")  # NOW on the elapsed clock
AFTER = timedelta(minutes=10)
SMTP_535 = TargetResult(
    "E-Mail",
    "mailto://127.0.0.1:2525",
    False,
    "permanent: credentials refused: check the user, password or token in the URL (SMTP 535)",
    0,
    FailureCause.CREDENTIALS,
    535,
)
FAILED = RouteRound("mail", tried=1, delivered=0, failures=(SMTP_535,))
GOOD = RouteRound("mail", tried=2, delivered=2)
IDLE = RouteRound("mail", tried=0, delivered=0)


def fold(rounds: list[tuple[float, RouteRound]]) -> tuple[DeliveryHealth, list[EventKind]]:
    """Fold rounds (minutes after NOW) from a healthy start; the kinds of events recorded."""
    health, kinds = DeliveryHealth(), []
    for minutes, seen in rounds:
        health, news = delivery_health(health, seen, *at(timedelta(minutes=minutes)), AFTER)
        kinds += [t.kind for t in news]
    return health, kinds


def at(delta: timedelta, wall_step: timedelta = timedelta(0)) -> tuple[datetime, Elapsed]:
    """`delta` after NOW on the wall clock (stepped by `wall_step`) and the elapsed clock."""
    return NOW + delta + wall_step, BOOTED.minus(-delta)


@pytest.mark.parametrize(
    ("rounds", "kinds"),
    [
        # a short failure is not news
        ([(0, FAILED), (5, FAILED), (6, GOOD)], []),
        # failing for the whole threshold: told once, then recovered once
        ([(0, FAILED), (10, FAILED), (20, FAILED), (21, GOOD)], ["failing", "recovered"]),
        # a round with nothing to send says nothing either way
        ([(0, FAILED), (10, IDLE), (12, FAILED), (30, IDLE)], ["failing"]),
        # a row given up is final: told at once
        ([(0, RouteRound("mail", 1, 0, dead=1, failures=(SMTP_535,)))], ["failing"]),
        # one failure among deliveries still counts as failing (a URL of the route is down)
        ([(0, RouteRound("mail", 3, 2, failures=(SMTP_535,))), (11, FAILED)], ["failing"]),
    ],
)
def test_a_route_that_keeps_failing_is_told_once_and_its_recovery_once(
    rounds: list[tuple[float, RouteRound]], kinds: list[str]
) -> None:
    _, found = fold(rounds)
    assert [k.value.removeprefix("delivery_") for k in found] == kinds


def test_the_event_names_the_route_the_target_and_the_cause_but_no_secret() -> None:
    health, _ = delivery_health(DeliveryHealth(), FAILED, *at(timedelta(0)), AFTER)
    _, [event] = delivery_health(health, FAILED, *at(AFTER), AFTER)
    assert event.kind is EventKind.DELIVERY_FAILING and event.route == "mail"
    assert event.detail is not None
    assert "route 'mail'" in event.detail and "10 min" in event.detail
    assert "E-Mail mailto://127.0.0.1:2525" in event.detail and "SMTP 535" in event.detail
    assert event.event_id == f"delivery/mail/delivery_failing/{NOW.isoformat()}"


STEPS = [
    timedelta(hours=-1),
    timedelta(seconds=-60),
    timedelta(0),
    timedelta(seconds=60),
    timedelta(hours=1),
    timedelta(days=2),
]


@pytest.mark.parametrize("step", STEPS, ids=lambda step: f"wall{step.total_seconds():+g}s")
@pytest.mark.parametrize(
    ("lasted", "alerted"),
    [
        # a minute short of the threshold: not yet news, however far the wall clock jumped
        (AFTER - timedelta(minutes=1), False),
        # the whole threshold: news, even when the wall clock went back meanwhile
        (AFTER, True),
        # long past it: news
        (3 * AFTER, True),
    ],
    ids=["short", "threshold", "long"],
)
def test_how_long_a_route_has_failed_is_measured_on_the_elapsed_clock_whatever_the_wall_does(
    step: timedelta, lasted: timedelta, alerted: bool
) -> None:
    health, first = delivery_health(DeliveryHealth(), FAILED, *at(timedelta(0)), AFTER)
    # the wall clock is stepped by `step` between the first failure and this round
    _, found = delivery_health(health, FAILED, *at(lasted, step), AFTER)
    assert first == ()
    assert [t.kind for t in found] == ([EventKind.DELIVERY_FAILING] if alerted else [])
    if alerted:  # the outage keeps its wall-clock name, and the text its measured length
        assert found[0].event_id == f"delivery/mail/delivery_failing/{NOW.isoformat()}"
        assert found[0].detail is not None
        assert f"{int(lasted.total_seconds() // 60)} min" in found[0].detail


def test_an_outage_first_seen_in_another_boot_is_measured_again_from_this_boots_first_failure() -> (
    None
):
    health, _ = delivery_health(DeliveryHealth(), FAILED, *at(timedelta(0)), AFTER)
    # rebooted: 20 minutes later on the wall clock, 30 s into a new boot: not yet news
    rebooted = Elapsed(30.0, "boot-2")
    health, found = delivery_health(health, FAILED, NOW + 2 * AFTER, rebooted, AFTER)
    assert found == () and health.failing_since == NOW and health.failing_for == rebooted
    # the threshold after the first failure of this boot: news, under the outage's first name
    later = rebooted.minus(-AFTER)
    _, found = delivery_health(health, FAILED, NOW + 3 * AFTER, later, AFTER)
    assert [t.event_id for t in found] == [f"delivery/mail/delivery_failing/{NOW.isoformat()}"]


def test_a_stored_outage_without_an_elapsed_reading_is_measured_from_now() -> None:
    stored = DeliveryHealth(failing_since=NOW - timedelta(days=1), last_error="x")
    health, found = delivery_health(stored, FAILED, *at(timedelta(0)), AFTER)
    assert found == () and health.failing_for == BOOTED

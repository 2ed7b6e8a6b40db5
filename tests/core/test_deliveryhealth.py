"""Self-alerting about delivery: a route whose alerts keep failing is news, told once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.deliveryhealth import DeliveryHealth, RouteRound, delivery_health
from watcher.core.model import EventKind
from watcher.core.outbox import FailureCause, TargetResult

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
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
        health, news = delivery_health(health, seen, NOW + timedelta(minutes=minutes), AFTER)
        kinds += [t.kind for t in news]
    return health, kinds


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
    health, _ = delivery_health(DeliveryHealth(), FAILED, NOW, AFTER)
    _, [event] = delivery_health(health, FAILED, NOW + AFTER, AFTER)
    assert event.kind is EventKind.DELIVERY_FAILING and event.route == "mail"
    assert event.detail is not None
    assert "route 'mail'" in event.detail and "10 min" in event.detail
    assert "E-Mail mailto://127.0.0.1:2525" in event.detail and "SMTP 535" in event.detail
    assert event.event_id == f"delivery/mail/delivery_failing/{NOW.isoformat()}"

"""Routing, storm control and what happens to an outbox row after each attempt."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.decide import (
    RetryPolicy,
    RouteRule,
    SettleReason,
    backoff,
    failed_targets,
    hold,
    plan,
    route,
    settle,
)
from watcher.model import EventKind, Job, Severity
from watcher.state import (
    DeliveryState,
    OutboxItem,
    SendResult,
    Settlement,
    TargetResult,
    Transition,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
E = EventKind
POLICY = RetryPolicy(
    base=timedelta(seconds=30), maximum=timedelta(minutes=30), dead_after=timedelta(hours=24)
)


def transition(
    kind: EventKind, kb: str | None = "kb-1", name: str = "docs", n: int = 1
) -> Transition:
    job = Job(uuid=f"job-{n}", knowledge_base_uuid=kb) if kb else None
    return Transition(
        event_id=f"job-{n}/{kind.value}", kind=kind, at=NOW, kb_uuid=kb, kb_name=name, job=job
    )


OPS = RouteRule("ops", frozenset({E.FAILED, E.PARTIAL, E.API_UNREACHABLE}))
DOCS_ONLY = RouteRule("docs-team", frozenset({E.COMPLETED, E.FAILED}), frozenset({"docs"}))
BY_UUID = RouteRule("uuid-team", frozenset({E.FAILED}), frozenset({"kb-2"}))


@pytest.mark.parametrize(
    ("t", "expected_routes"),
    [
        # a failure goes to every route that asked for failures and watches that KB
        (transition(E.FAILED), ["ops", "docs-team"]),
        # a route filtering by KB name does not get other KBs' events
        (transition(E.FAILED, kb="kb-2", name="other"), ["ops", "uuid-team"]),
        # nobody asked for started
        (transition(E.STARTED), []),
        (transition(E.COMPLETED), ["docs-team"]),
        # API events have no KB: the KB filter does not apply to them
        (transition(E.API_UNREACHABLE, kb=None), ["ops"]),
    ],
)
def test_each_event_goes_to_exactly_the_routes_that_asked_for_it(
    t: Transition, expected_routes: list[str]
) -> None:
    deliveries = route([t], [OPS, DOCS_ONLY, BY_UUID])
    assert [d.route for d in deliveries] == expected_routes
    assert all(d.event_id == t.event_id for d in deliveries)


def item(
    n: int,
    route_name: str = "ops",
    cycle: str = "c1",
    attempts: int = 0,
    age: timedelta = timedelta(0),
) -> OutboxItem:
    return OutboxItem(
        id=n,
        route=route_name,
        transition=transition(E.FAILED, n=n),
        cycle_id=cycle,
        created_at=NOW - age,
        attempts=attempts,
    )


def test_rows_up_to_the_threshold_are_sent_one_message_each() -> None:
    sends = plan([item(1), item(2), item(3)], storm_threshold=3, dashboard="https://x")
    assert [len(s.items) for s in sends] == [1, 1, 1]


def test_more_rows_than_the_threshold_for_one_route_and_cycle_become_one_grouped_message() -> None:
    rows = [item(n) for n in range(1, 6)] + [item(9, route_name="mail")]
    sends = plan(rows, storm_threshold=3, dashboard="https://x")
    grouped = [s for s in sends if s.route == "ops"]
    assert len(grouped) == 1
    assert len(grouped[0].items) == 5
    assert "5 indexing events" in grouped[0].message.title
    for n in range(1, 6):
        assert f"job-{n}" in grouped[0].message.body
    assert grouped[0].message.severity is Severity.FAILURE
    assert [len(s.items) for s in sends if s.route == "mail"] == [1]


def test_rows_of_different_cycles_are_not_grouped_together() -> None:
    rows = [item(1, cycle="a"), item(2, cycle="a"), item(3, cycle="b"), item(4, cycle="b")]
    assert len(plan(rows, storm_threshold=2, dashboard="https://x")) == 4


OK = SendResult(ok=True, targets=(TargetResult("json", "json://127.0.0.1/", True),))
DOWN = SendResult(ok=False, error="connection refused")
REJECTED = SendResult(ok=False, permanent=True, error="HTTP 404 from receiver")


@pytest.mark.parametrize(
    ("result", "attempts", "age", "state", "reason"),
    [
        # success: sent
        (OK, 0, timedelta(0), DeliveryState.SENT, SettleReason.DELIVERED),
        # a retryable failure is retried later
        (DOWN, 0, timedelta(0), DeliveryState.PENDING, SettleReason.RETRY),
        # after the bound (24 h) the row is dead-lettered
        (DOWN, 40, timedelta(hours=24), DeliveryState.DEAD, SettleReason.EXPIRED),
        (DOWN, 40, timedelta(hours=23, minutes=59), DeliveryState.PENDING, SettleReason.RETRY),
        # a permanent failure dead-letters sooner: after its third attempt
        (REJECTED, 0, timedelta(0), DeliveryState.PENDING, SettleReason.RETRY),
        (REJECTED, 2, timedelta(0), DeliveryState.DEAD, SettleReason.PERMANENT_FAILURE),
    ],
)
def test_settlement_after_an_attempt(
    result: SendResult, attempts: int, age: timedelta, state: DeliveryState, reason: SettleReason
) -> None:
    row = item(1, attempts=attempts, age=age)
    [(settlement, why)] = settle(plan([row], 5, "https://x")[0], result, NOW, POLICY)
    assert (settlement.state, why) == (state, reason)
    assert settlement.attempts == attempts + 1
    if state is DeliveryState.PENDING:
        assert settlement.next_attempt_at is not None and settlement.next_attempt_at > NOW
        assert settlement.error == result.error
    else:
        assert settlement.next_attempt_at is None


def test_a_grouped_send_settles_every_row_it_carried() -> None:
    rows = [item(n) for n in range(1, 5)]
    [send] = plan(rows, storm_threshold=2, dashboard="https://x")
    settlements = settle(send, OK, NOW, POLICY)
    assert sorted(s.outbox_id for s, _ in settlements) == [1, 2, 3, 4]
    assert {s.state for s, _ in settlements} == {DeliveryState.SENT}


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [
        (1, 15, 30),
        (2, 30, 60),
        (3, 60, 120),
        # capped at the maximum
        (20, 900, 1800),
    ],
)
def test_backoff_grows_exponentially_with_jitter_and_a_cap(
    attempts: int, low: int, high: int
) -> None:
    for spread in (0.5, 0.75, 1.0):
        delay = backoff(attempts, POLICY, spread).total_seconds()
        assert low <= delay <= high


def test_a_retry_skips_the_urls_an_earlier_attempt_reached_and_keeps_them_delivered() -> None:
    row = replace(item(1, attempts=1), delivered=frozenset({0}))
    [send] = plan([row], storm_threshold=5, dashboard="https://x")
    assert send.skip == {0}
    down = SendResult(ok=False, error="refused", targets=(TargetResult("b", "b://", False, "", 1),))
    [(settlement, _)] = settle(send, down, NOW, POLICY)
    assert {(t.index, t.ok) for t in settlement.targets} == {(0, True), (1, False)}


def test_rows_that_reached_different_urls_are_not_grouped_together() -> None:
    rows = [item(n) for n in range(1, 4)] + [
        replace(item(n), delivered=frozenset({1})) for n in range(4, 7)
    ]
    sends = plan(rows, storm_threshold=2, dashboard="https://x")
    assert sorted((len(s.items), tuple(s.skip)) for s in sends) == [(3, ()), (3, (1,))]


def test_a_held_send_stays_pending_unspent_with_what_it_reached() -> None:
    row = item(1, attempts=2)
    [send] = plan([row], storm_threshold=5, dashboard="https://x")
    failure = Settlement(
        outbox_id=9,
        state=DeliveryState.PENDING,
        at=NOW,
        attempts=1,
        next_attempt_at=NOW + timedelta(minutes=1),
        error="refused",
    )
    reached = SendResult(ok=True, targets=(TargetResult("a", "a://", True, "", 0),))
    [(settlement, reason)] = hold(send, reached, failure)
    assert reason is SettleReason.HELD
    assert settlement.state is DeliveryState.PENDING
    assert settlement.attempts == 2
    assert settlement.next_attempt_at == failure.next_attempt_at
    assert [(t.index, t.ok) for t in settlement.targets] == [(0, True)]


@pytest.mark.parametrize(
    ("targets", "down"),
    [
        # per-URL failures name the URLs that are down
        ((TargetResult("a", "", True, "", 0), TargetResult("b", "", False, "", 1)), {1}),
        # a failure without per-URL detail means the whole route failed
        ((), set()),
        ((TargetResult("a", "", False, "", None),), set()),
    ],
)
def test_failed_targets_names_the_urls_that_are_down(
    targets: tuple[TargetResult, ...], down: set[int]
) -> None:
    assert failed_targets(SendResult(ok=False, targets=targets)) == down

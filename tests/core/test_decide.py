"""Routing, storm control and what happens to an outbox row after each attempt."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.clocks import Elapsed
from watcher.core.decide import (
    SHORTEST_BODY,
    RetryPolicy,
    RouteRule,
    Verdict,
    backoff,
    budget_caps,
    failed_targets,
    hold,
    route,
    settle,
    verdict,
)
from watcher.core.model import EventKind, Job, Severity
from watcher.core.outbox import (
    DeliveryState,
    FailureCause,
    FailureKind,
    OutboxItem,
    SendResult,
    Settlement,
    SettleReason,
    TargetResult,
)
from watcher.core.plan import plan
from watcher.core.state import Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ELAPSED = Elapsed(200_000.0, "boot-1")  # NOW on the elapsed clock (two days after boot)
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


def test_rows_due_together_are_grouped_whatever_poll_produced_them() -> None:
    """A backlog after an outage (12 rows from 8 polls) is one message, not a burst of 12."""
    rows = [item(n, cycle=f"poll-{n % 8}") for n in range(1, 13)]
    [send] = plan(rows, storm_threshold=5, dashboard="https://x")
    assert len(send.items) == 12
    assert "12 indexing events" in send.message.title


OK = SendResult(ok=True, targets=(TargetResult("json", "json://127.0.0.1/", True),))
DOWN = SendResult(ok=False, error="connection refused")
REJECTED = SendResult(ok=False, failure=FailureKind.PERMANENT, error="HTTP 404 from receiver")


@pytest.mark.parametrize(
    ("result", "attempts", "failing", "state", "reason"),
    [
        # success: sent
        (OK, 0, None, DeliveryState.SENT, SettleReason.DELIVERED),
        # a retryable failure is retried later
        (DOWN, 0, None, DeliveryState.PENDING, SettleReason.RETRY),
        # failing for the bound (24 h since its first failure): the row is dead-lettered
        (DOWN, 40, timedelta(hours=24), DeliveryState.DEAD, SettleReason.EXPIRED),
        (DOWN, 40, timedelta(hours=23, minutes=59), DeliveryState.PENDING, SettleReason.RETRY),
        # a permanent failure dead-letters sooner: after its third attempt
        (REJECTED, 0, None, DeliveryState.PENDING, SettleReason.RETRY),
        (REJECTED, 2, None, DeliveryState.DEAD, SettleReason.PERMANENT_FAILURE),
    ],
)
def test_settlement_after_an_attempt(
    result: SendResult,
    attempts: int,
    failing: timedelta | None,
    state: DeliveryState,
    reason: SettleReason,
) -> None:
    row = item(1, attempts=attempts)
    if failing is not None:
        row = replace(row, failing_for=ELAPSED.minus(failing))
    send = plan([row], 5, "https://x")[0]
    [(settlement, why)] = settle(send, result, NOW, POLICY, elapsed=ELAPSED)
    assert (settlement.state, why) == (state, reason)
    assert settlement.attempts == attempts + 1
    if state is DeliveryState.PENDING:
        assert settlement.next_attempt_at is not None and settlement.next_attempt_at > NOW
        assert settlement.error == result.error
    else:
        assert settlement.next_attempt_at is None


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
    ("failing", "state"),
    [
        # first failed a minute ago: retried, however far the wall clock jumped since
        (timedelta(minutes=1), DeliveryState.PENDING),
        # failing for a minute short of `dead_after` (24 h): still retried
        (timedelta(hours=23, minutes=59), DeliveryState.PENDING),
        # failing for `dead_after`: given up, even when the wall clock went back meanwhile
        (timedelta(hours=24), DeliveryState.DEAD),
    ],
    ids=["1min", "23h59", "24h"],
)
def test_dead_after_is_measured_from_the_first_failure_on_the_elapsed_clock_whatever_the_wall_does(
    step: timedelta, failing: timedelta, state: DeliveryState
) -> None:
    # the row was recorded and first failed `failing` ago; the wall clock was stepped by `step`
    row = replace(item(1, attempts=5, age=failing + step), failing_for=ELAPSED.minus(failing))
    [(settlement, _)] = settle(plan([row], 5, "https://x")[0], DOWN, NOW, POLICY, elapsed=ELAPSED)
    assert settlement.state is state
    if state is DeliveryState.PENDING:  # the first failure is kept for the next attempt
        assert settlement.failing_for == ELAPSED.minus(failing)


@pytest.mark.parametrize(
    "first",
    [
        # the row has not failed before: this failure is its first
        None,
        # its first failure was read in another boot (a reboot since): measured again from now
        Elapsed(90_000.0, "boot-0"),
    ],
)
def test_a_row_whose_first_failure_cannot_be_measured_here_starts_its_dead_after_now(
    first: Elapsed | None,
) -> None:
    # recorded three days ago on the wall clock (or the wall clock stepped three days ahead)
    row = replace(item(1, attempts=9, age=timedelta(days=3)), failing_for=first)
    [(settlement, reason)] = settle(
        plan([row], 5, "https://x")[0], DOWN, NOW, POLICY, elapsed=ELAPSED
    )
    assert (settlement.state, reason) == (DeliveryState.PENDING, SettleReason.RETRY)
    assert settlement.failing_for == ELAPSED


def test_a_sent_row_keeps_no_failure_reading() -> None:
    row = replace(item(1, attempts=3), failing_for=ELAPSED.minus(timedelta(hours=1)))
    [(settlement, _)] = settle(plan([row], 5, "https://x")[0], OK, NOW, POLICY, elapsed=ELAPSED)
    assert settlement.state is DeliveryState.SENT and settlement.failing_for is None


def test_a_grouped_send_settles_every_row_it_carried() -> None:
    rows = [item(n) for n in range(1, 5)]
    [send] = plan(rows, storm_threshold=2, dashboard="https://x")
    settlements = settle(send, OK, NOW, POLICY, elapsed=ELAPSED)
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
    [(settlement, _)] = settle(send, down, NOW, POLICY, elapsed=ELAPSED)
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


# --- a stalled job that ends: one message for the outcome ---------------------------------


def story(*kinds: EventKind) -> list[Transition]:
    """The transitions one cycle produced for job-1 (recovered and its outcome together)."""
    return [transition(kind) for kind in kinds]


EVERYTHING = RouteRule("all", frozenset(E))
OUTCOMES = RouteRule("outcomes", frozenset({E.COMPLETED, E.FAILED, E.RECOVERED}))
STALLS_ONLY = RouteRule("stalls", frozenset({E.STALLED, E.RECOVERED}))
FAILURES = RouteRule("failures", frozenset({E.FAILED, E.RECOVERED}))


@pytest.mark.parametrize(
    ("transitions", "rule", "expected"),
    [
        # the outcome tells the whole story to a route that asked for it: no `recovered`
        (story(E.RECOVERED, E.COMPLETED), EVERYTHING, ["completed"]),
        (story(E.RECOVERED, E.COMPLETED), OUTCOMES, ["completed"]),
        # a route that asked for `recovered` but not for this outcome gets `recovered` alone
        (story(E.RECOVERED, E.COMPLETED), STALLS_ONLY, ["recovered"]),
        (story(E.RECOVERED, E.COMPLETED), FAILURES, ["recovered"]),
        (story(E.RECOVERED, E.FAILED), FAILURES, ["failed"]),
        # moving again while still running: `recovered` alone, as before
        (story(E.RECOVERED), EVERYTHING, ["recovered"]),
        # another job's outcome does not swallow this job's `recovered`
        (
            [transition(E.RECOVERED, n=1), transition(E.COMPLETED, n=2)],
            EVERYTHING,
            ["recovered", "completed"],
        ),
    ],
)
def test_a_stalled_job_that_ends_gives_one_message_for_its_outcome(
    transitions: list[Transition], rule: RouteRule, expected: list[str]
) -> None:
    rows = route(transitions, [rule])
    assert [d.event_id.split("/")[1] for d in rows] == expected


def test_delivery_news_about_a_route_goes_to_every_other_route_but_never_to_itself() -> None:
    failing = Transition(
        event_id="delivery/mail/delivery_failing/x",
        kind=E.DELIVERY_FAILING,
        at=NOW,
        route="mail",
    )
    rules = [
        RouteRule("mail", frozenset(E)),
        RouteRule("ops", frozenset(E), frozenset({"product-docs"})),  # KB filter: not applied
        RouteRule("quiet", frozenset({E.FAILED})),  # did not ask
    ]
    assert [d.route for d in route([failing], rules)] == ["ops"]


# --- what a result means, by cause ---------------------------------------------------------


def target(
    cause: FailureCause | None,
    ok: bool = False,
    status: int | None = None,
    sent: int | None = 2000,
    index: int = 0,
) -> TargetResult:
    return TargetResult("svc", "svc://", ok, "", index, cause, status, sent)


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        # a timeout or a 5xx may pass later
        ((target(FailureCause.TIMEOUT),), Verdict.RETRY),
        ((target(FailureCause.SERVER_ERROR, status=503),), Verdict.RETRY),
        ((target(FailureCause.BUSY),), Verdict.RETRY),
        # refused credentials (SMTP 535, HTTP 401/403) will be refused again
        ((target(FailureCause.CREDENTIALS, status=535),), Verdict.PERMANENT),
        ((target(FailureCause.CREDENTIALS, status=401),), Verdict.PERMANENT),
        # too large: shorter, at once
        ((target(FailureCause.TOO_LARGE, status=413),), Verdict.RESIZE),
        # a bare 400 of a long message may be about its size too
        ((target(FailureCause.REJECTED, status=400),), Verdict.RESIZE),
        # ...but not once the message is as short as an alert gets
        ((target(FailureCause.REJECTED, status=400, sent=SHORTEST_BODY),), Verdict.PERMANENT),
        ((target(FailureCause.TOO_LARGE, sent=SHORTEST_BODY),), Verdict.RETRY),
        # a 404 is not about size
        ((target(FailureCause.REJECTED, status=404),), Verdict.PERMANENT),
        # the worst target decides: one retryable failure beside a size refusal means retry
        ((target(FailureCause.TOO_LARGE), target(FailureCause.TIMEOUT, index=1)), Verdict.RETRY),
        (
            (target(FailureCause.TOO_LARGE), target(FailureCause.CREDENTIALS, index=1)),
            Verdict.RESIZE,
        ),
    ],
)
def test_a_result_is_judged_by_the_cause_of_each_failed_target(
    targets: tuple[TargetResult, ...], expected: Verdict
) -> None:
    assert verdict(SendResult(ok=False, error="x", targets=targets)) is expected


def test_a_size_refusal_is_never_final_the_row_goes_again_at_once_unspent() -> None:
    row = item(1, attempts=2)
    [send] = plan([row], 5, "https://x")
    too_large = SendResult(ok=False, error="400", targets=(target(FailureCause.TOO_LARGE),))
    [(settlement, reason)] = settle(send, too_large, NOW, POLICY, elapsed=ELAPSED)
    assert reason is SettleReason.RESIZED
    assert settlement.state is DeliveryState.PENDING
    assert settlement.attempts == 2
    assert settlement.next_attempt_at == NOW


@pytest.mark.parametrize(
    ("last", "caps"),
    [
        # refused for size: half of what was sent
        ((target(FailureCause.TOO_LARGE, sent=6000),), {0: 3000}),
        # never below the shortest body
        ((target(FailureCause.TOO_LARGE, sent=300),), {0: SHORTEST_BODY}),
        # failed for another reason: no cap (a grouped retry may be longer than one alert)
        ((target(FailureCause.TIMEOUT, sent=1500),), {}),
        # refused even at the shortest: it stays that short (the retries do not grow back)
        ((target(FailureCause.REJECTED, status=400, sent=240),), {0: 240}),
        # delivered: no cap
        ((target(None, ok=True, sent=9000),), {}),
    ],
)
def test_budget_caps_come_from_what_each_url_refused_last_time(
    last: tuple[TargetResult, ...], caps: dict[int, int]
) -> None:
    assert budget_caps([replace(item(1), last_targets=last)]) == caps


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        # a failure of the whole call (no target named) is judged by the notifier's summary
        (FailureKind.PERMANENT, Verdict.PERMANENT),
        (FailureKind.RETRYABLE, Verdict.RETRY),
        # a notifier that does not classify: a later try may pass
        (None, Verdict.RETRY),
    ],
)
def test_a_failure_naming_no_target_is_judged_by_the_notifiers_summary(
    failure: FailureKind | None, expected: Verdict
) -> None:
    assert verdict(SendResult(ok=False, failure=failure, error="x")) is expected

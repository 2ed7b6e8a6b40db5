"""One route's delivery round as a pure fold: (state, event) -> (state, actions).

The table reads as sentences: a run in some state meets an event, answers with actions (as
short words: `send 2 skipping 1`, `write 2,3 postponed`, `finish`) and ends in a new state.
Rows are numbered by outbox id; every route has one URL unless the row says two.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.clocks import Elapsed
from watcher.core.decide import RetryPolicy, settlement
from watcher.core.delivery import (
    Action,
    Began,
    Deferred,
    Event,
    Finished,
    RouteRun,
    SendNow,
    Sent,
    Write,
    fold,
    start,
)
from watcher.core.model import EventKind, Job, Severity
from watcher.core.outbox import (
    DeliveryState,
    FailureCause,
    Message,
    OutboxItem,
    Send,
    SendResult,
    SettleReason,
    TargetResult,
)
from watcher.core.state import Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ELAPSED = Elapsed(5000.0, "boot-1")  # NOW on the elapsed clock
SLOT = NOW + timedelta(seconds=3)  # a pace slot later than the round may wait
POLICY = RetryPolicy(base=timedelta(seconds=30))
RETRY_AT = NOW + timedelta(seconds=20)  # the setback's retry


def row(n: int, attempts: int = 0) -> OutboxItem:
    t = Transition(f"job-{n}/failed", EventKind.FAILED, NOW, "kb-1", "docs", Job(uuid=f"job-{n}"))
    return OutboxItem(n, "ops", t, "c", NOW, attempts=attempts)


def send(n: int, *, attempts: int = 0, skip: frozenset[int] = frozenset()) -> Send:
    message = Message("title", "body", Severity.FAILURE, "body", "body")
    return Send("ops", (row(n, attempts),), message, skip)


def given(
    *queue: int, urls: int = 1, down: frozenset[int] = frozenset(), setback: bool = False
) -> RouteRun:
    """A run with sends for rows `queue` still to go; `setback`: a retryable failure of row
    9 earlier this round, due again at `RETRY_AT`."""
    failure = settlement(row(9), DeliveryState.PENDING, NOW, attempts=1, due=RETRY_AT, error="down")
    run = start("ops", [send(n) for n in queue], urls, POLICY)
    return replace(run, down=down, setback=failure if setback else None)


def ok(*urls: int) -> SendResult:
    return SendResult(ok=True, targets=tuple(TargetResult("svc", "", True, "", i) for i in urls))


def failed(*urls: int, cause: FailureCause = FailureCause.CONNECTION) -> SendResult:
    targets = tuple(TargetResult("svc", "svc://", False, "", i, cause, None, 2000) for i in urls)
    return SendResult(ok=False, error="down", targets=targets)


WHOLE_ROUTE_DOWN = SendResult(ok=False, error="notifier error")  # names no URL
TOO_LARGE = failed(0, cause=FailureCause.TOO_LARGE)


def sent(n: int, result: SendResult, **changes: object) -> Sent:
    return Sent(send(n, **changes), result, NOW, ELAPSED)  # type: ignore[arg-type]


def said(actions: tuple[Action, ...]) -> list[str]:
    """The actions in short words."""
    words = []
    for action in actions:
        match action:
            case SendNow(s):
                ids = ",".join(str(i.id) for i in s.items)
                skipping = f" skipping {','.join(map(str, sorted(s.skip)))}" if s.skip else ""
                words.append(f"send {ids}{skipping}")
            case Write(settled):
                ids = ",".join(str(s.outbox_id) for s, _ in settled)
                reasons = sorted({reason.value for _, reason in settled})
                words.append(f"write {ids} {'/'.join(reasons)}")
            case Finished():
                words.append("finish")
    return words


def kept(run: RouteRun) -> dict[str, object]:
    """What the run keeps between events: the queue, the URLs down, and whether it had a
    setback."""
    queue = [item.id for s in run.queue for item in s.items]
    return {"queue": queue, "down": sorted(run.down), "setback": run.setback is not None}


def state(
    queue: list[int], down: list[int] | None = None, setback: bool = False
) -> dict[str, object]:
    return {"queue": queue, "down": down or [], "setback": setback}


@pytest.mark.parametrize(
    ("run", "event", "actions", "after"),
    [
        pytest.param(
            given(),
            Began(),
            ["finish"],
            state([]),
            id="a round with nothing to send finishes at once",
        ),
        pytest.param(
            given(1, 2, 3),
            Began(),
            ["send 1"],
            state([2, 3]),
            id="a round begins with its first send",
        ),
        pytest.param(
            given(2, 3),
            sent(1, ok(0)),
            ["write 1 delivered", "send 2"],
            state([3]),
            id="a delivered send is written as sent and the next send goes",
        ),
        pytest.param(
            given(),
            sent(3, ok(0)),
            ["write 3 delivered", "finish"],
            state([]),
            id="the last delivered send ends the round",
        ),
        pytest.param(
            given(2, 3),
            sent(1, WHOLE_ROUTE_DOWN),
            ["write 1 retry", "write 2,3 postponed", "finish"],
            state([], setback=True),
            id="a route failing as a whole postpones the rest of its queue to that retry",
        ),
        pytest.param(
            given(2, 3, urls=2),
            sent(1, failed(1)),
            ["write 1 retry", "send 2 skipping 1"],
            state([3], down=[1], setback=True),
            id="a URL that fails is left out of the next sends, which still go to the others",
        ),
        pytest.param(
            given(3, urls=2, down=frozenset({1}), setback=True),
            sent(2, ok(0), skip=frozenset({1})),
            ["write 2 held", "send 3 skipping 1"],
            state([], down=[1], setback=True),
            id="a send that reached every URL still up is held until the setback's retry",
        ),
        pytest.param(
            given(2, 3, urls=2),
            sent(1, failed(0, 1)),
            ["write 1 retry", "write 2 held", "write 3 held", "finish"],
            state([], down=[0, 1], setback=True),
            id="with every URL down the rest is held without being sent",
        ),
        pytest.param(
            given(3, urls=2, down=frozenset({1}), setback=True),
            sent(2, failed(0), skip=frozenset({1})),
            ["write 2 retry", "write 3 held", "finish"],
            state([], down=[0, 1], setback=True),
            id="a later failure of another URL is settled by its own result and takes it out",
        ),
        pytest.param(
            given(3, urls=2, down=frozenset({1}), setback=True),
            sent(2, WHOLE_ROUTE_DOWN, skip=frozenset({1})),
            ["write 2 held", "send 3 skipping 1"],
            state([], down=[1], setback=True),
            id="a failure naming no URL after a setback holds the send without spending it",
        ),
        pytest.param(
            given(2),
            sent(1, failed(0, cause=FailureCause.CREDENTIALS)),
            ["write 1 retry", "send 2"],
            state([]),
            id="a permanent refusal is retried later and holds nothing else back",
        ),
        pytest.param(
            given(),
            sent(1, failed(0, cause=FailureCause.CREDENTIALS), attempts=2),
            ["write 1 permanent_failure", "finish"],
            state([]),
            id="a permanent refusal on the row's last attempt dead-letters it",
        ),
        pytest.param(
            given(2),
            sent(1, TOO_LARGE),
            ["write 1 resized", "send 2"],
            state([]),
            id="a size refusal goes again at once, shorter, and the next send goes",
        ),
        pytest.param(
            given(3),
            Deferred(send(2), NOW, SLOT),
            ["write 2,3 postponed", "finish"],
            state([]),
            id="a send the pace would hold too long waits with the rest for its slot",
        ),
    ],
)
def test_one_routes_round_answers_each_event_with_its_actions(
    run: RouteRun, event: Event, actions: list[str], after: dict[str, object]
) -> None:
    run, answer = fold(run, event)
    assert said(answer) == actions
    assert kept(run) == after


# --- what the written rows say ----------------------------------------------------------------


def settled_by(answer: tuple[Action, ...]) -> dict[int, tuple[DeliveryState, int, object]]:
    """Each written row's state, attempts and when it is due."""
    return {
        s.outbox_id: (s.state, s.attempts, s.next_attempt_at)
        for action in answer
        if isinstance(action, Write)
        for s, _ in action.settled
    }


def test_postponed_rows_wait_for_the_setbacks_retry_without_spending_an_attempt() -> None:
    run = replace(given(), queue=(send(2, attempts=4),))
    _, answer = fold(run, sent(1, WHOLE_ROUTE_DOWN))
    rows = settled_by(answer)
    retry_at = rows[1][2]
    assert rows[1][:2] == (DeliveryState.PENDING, 1)
    assert rows[2] == (DeliveryState.PENDING, 4, retry_at)


def test_held_rows_keep_what_they_reached_and_wait_for_the_setbacks_retry() -> None:
    run = given(urls=2, down=frozenset({1}), setback=True)
    _, [write, _] = fold(run, sent(2, ok(0), skip=frozenset({1})))
    assert isinstance(write, Write)
    [(held, reason)] = write.settled
    assert reason is SettleReason.HELD
    assert (held.attempts, held.next_attempt_at, held.error) == (0, RETRY_AT, "down")
    assert [(t.index, t.ok) for t in held.targets] == [(0, True)]


def test_deferred_rows_are_due_at_their_pace_slot() -> None:
    _, answer = fold(given(3), Deferred(send(2), NOW, SLOT))
    assert settled_by(answer) == {
        2: (DeliveryState.PENDING, 0, SLOT),
        3: (DeliveryState.PENDING, 0, SLOT),
    }


def test_the_write_after_a_send_names_the_attempt_it_settles_and_no_other_does() -> None:
    """So the shell logs each attempt once, with its result."""
    event = sent(1, WHOLE_ROUTE_DOWN)
    _, answer = fold(given(2), event)
    writes = [a for a in answer if isinstance(a, Write)]
    assert [w.answers for w in writes] == [event, None]


# --- a whole round --------------------------------------------------------------------------


def drive(run: RouteRun, results: list[SendResult]) -> tuple[RouteRun, list[str], int]:
    """Run the fold to the end, answering each send with the next result."""
    reasons: list[str] = []
    sends = 0
    run, answer = fold(run, Began())
    while True:
        event: Event | None = None
        for action in answer:
            match action:
                case Write(settled):
                    reasons += [reason.value for _, reason in settled]
                case SendNow(s):
                    sends += 1
                    event = Sent(s, results.pop(0), NOW, ELAPSED)
                case Finished():
                    return run, reasons, sends
        assert event is not None
        run, answer = fold(run, event)


@pytest.mark.parametrize(
    ("results", "urls", "reasons", "sends"),
    [
        # all good: three sends, three deliveries
        ([ok(0), ok(0), ok(0)], 1, ["delivered"] * 3, 3),
        # the route fails as a whole: the rest waits for that backoff, unsent and unspent
        ([WHOLE_ROUTE_DOWN], 1, ["retry", "postponed", "postponed"], 1),
        # one URL of two down: the others still go to the healthy URL, held for the down one
        ([failed(1), ok(0), ok(0)], 2, ["retry", "held", "held"], 3),
        # every URL down at once: nothing left to try, no send at all
        ([failed(0, 1)], 2, ["retry", "held", "held"], 1),
        # a permanent refusal does not stop the others
        (
            [failed(0, cause=FailureCause.CREDENTIALS), ok(0), ok(0)],
            1,
            ["retry", "delivered", "delivered"],
            3,
        ),
    ],
)
def test_a_whole_round_step_by_step(
    results: list[SendResult], urls: int, reasons: list[str], sends: int
) -> None:
    run, got, count = drive(given(1, 2, 3, urls=urls), list(results))
    assert got == reasons
    assert count == sends == run.tried


def test_a_round_remembers_what_failed_for_the_routes_delivery_health() -> None:
    run, _, _ = drive(given(1, 2), [failed(0, cause=FailureCause.TIMEOUT)])
    assert (run.tried, run.delivered) == (1, 0)
    assert [t.cause for t in run.failures] == [FailureCause.TIMEOUT]


def test_a_route_failing_as_a_whole_counts_as_one_failure_named_for_the_route() -> None:
    run, _, _ = drive(given(1, 2), [WHOLE_ROUTE_DOWN])
    assert [(t.name, t.url, t.detail) for t in run.failures] == [("route", "ops", "notifier error")]


def test_a_row_given_up_counts_as_dead_and_a_size_refusal_marks_the_round_resized() -> None:
    credentials = failed(0, cause=FailureCause.CREDENTIALS)
    run, _ = fold(given(2), sent(1, credentials, attempts=2))
    run, _ = fold(run, sent(2, TOO_LARGE))
    assert (run.dead, run.resized) == (1, True)
    assert run.reasons == (SettleReason.PERMANENT_FAILURE, SettleReason.RESIZED)

"""One route's delivery as a pure fold: planning with budgets, the steps, pacing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.decide import RetryPolicy
from watcher.core.delivery import (
    Finished,
    RouteRun,
    SendNow,
    Write,
    after_send,
    next_step,
    pace_wait,
    plan,
    start,
)
from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Status
from watcher.core.outbox import (
    Budget,
    DeliveryState,
    FailureCause,
    OutboxItem,
    Send,
    SendResult,
    SettleReason,
    TargetResult,
)
from watcher.core.state import Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base=timedelta(seconds=30))
DISCORD = Budget(body=2000, title=250, title_in_body=True)
EMAIL = Budget(body=32768, title=250)


def partial_job(sources: int, error_chars: int = 200) -> Job:
    """A partial job with `sources` data sources, every third failed with a long error."""
    found = tuple(
        DataSourceJob(
            data_source_uuid=f"ds-{n:03d}",
            status=DataSourceStatus.FAILED if n % 3 == 0 else DataSourceStatus.UPDATED,
            indexed_item_count=10,
            error_msg="crawl_failed" if n % 3 == 0 else None,
            error_details=("x" * error_chars) if n % 3 == 0 else None,
        )
        for n in range(sources)
    )
    return Job(
        uuid="job-1",
        knowledge_base_uuid="kb-1",
        phase=Phase.SUCCEEDED,
        status=Status.PARTIAL,
        data_source_jobs=found,
    )


def item(n: int, job: Job | None = None, **changes: object) -> OutboxItem:
    kind = EventKind.PARTIAL if job is not None else EventKind.FAILED
    t = Transition(
        event_id=f"job-{n}/{kind.value}",
        kind=kind,
        at=NOW,
        kb_uuid="kb-1",
        kb_name="docs",
        job=job or Job(uuid=f"job-{n}"),
    )
    row = OutboxItem(id=n, route="ops", transition=t, cycle_id="c", created_at=NOW)
    return replace(row, **changes)  # type: ignore[arg-type]


def test_each_url_gets_the_alert_rendered_within_its_services_limits() -> None:
    """24 sources with 200-character errors render to far more than Discord's 2,000."""
    [send] = plan([item(1, partial_job(24))], 5, "https://x", {"ops": (DISCORD, EMAIL)})
    discord, email = send.message_for(0), send.message_for(1)
    assert len(discord.title) + 2 + len(discord.body) <= 2000
    assert len(email.body) > 2000  # the mail takes the whole list
    assert email.body.count("- `ds-") == 24
    assert "… and" in discord.body and "more data sources" in discord.body


def test_a_url_that_refused_for_size_gets_a_shorter_rendering_next_time() -> None:
    refused = TargetResult("JSON", "json://", False, "", 0, FailureCause.TOO_LARGE, 400, 3000)
    row = item(1, partial_job(60), last_targets=(refused,))
    [send] = plan([row], 5, "https://x", {"ops": (Budget(body=32768),)})
    assert len(send.message_for(0).body) <= 1500


def test_rows_that_reached_a_url_before_are_not_rendered_for_it_again() -> None:
    row = item(1, partial_job(3), delivered=frozenset({0}))
    [send] = plan([row], 5, "https://x", {"ops": (DISCORD, EMAIL)})
    assert [index for index, _ in send.fitted] == [1]


# --- the fold ---------------------------------------------------------------------------


def sends(n: int) -> list[Send]:
    return plan([item(k) for k in range(1, n + 1)], 50, "https://x")


def failed(*indexes: int, cause: FailureCause = FailureCause.CONNECTION) -> SendResult:
    targets = tuple(TargetResult("svc", "svc://", False, "", i, cause) for i in indexes)
    return SendResult(ok=False, error="down", targets=targets)


def ok(*indexes: int) -> SendResult:
    return SendResult(ok=True, targets=tuple(TargetResult("svc", "", True, "", i) for i in indexes))


def drive(run: RouteRun, results: list[SendResult]) -> tuple[RouteRun, list[SettleReason], int]:
    """Run the fold to the end, answering each send with the next result."""
    reasons: list[SettleReason] = []
    sent = 0
    while True:
        run, step = next_step(run)
        match step:
            case Finished():
                return run, reasons, sent
            case Write(settled):
                reasons += [reason for _, reason in settled]
            case SendNow(send):
                sent += 1
                run, settled = after_send(run, send, results.pop(0), NOW, POLICY)
                reasons += [reason for _, reason in settled]


@pytest.mark.parametrize(
    ("results", "urls", "reasons", "sent"),
    [
        # all good: three sends, three deliveries
        ([ok(0), ok(0), ok(0)], 1, ["delivered"] * 3, 3),
        # the route fails as a whole: the rest waits for that backoff, unsent and unspent
        ([failed()], 1, ["retry", "postponed", "postponed"], 1),
        # one URL of two down: the others still go to the healthy URL, held for the down one
        ([failed(1), ok(0), ok(0)], 2, ["retry", "held", "held"], 3),
        # every URL down one by one: nothing left to try, no send at all
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
def test_one_routes_round_step_by_step(
    results: list[SendResult], urls: int, reasons: list[str], sent: int
) -> None:
    run, got, count = drive(start("ops", sends(3), urls), list(results))
    assert [r.value for r in got] == reasons
    assert count == sent
    assert run.tried == sent


def test_a_round_remembers_what_failed_for_the_routes_delivery_health() -> None:
    run, _, _ = drive(start("ops", sends(2), 1), [failed(0, cause=FailureCause.TIMEOUT)])
    assert (run.tried, run.delivered) == (1, 0)
    assert [t.cause for t in run.failures] == [FailureCause.TIMEOUT]


def test_a_permanent_failure_after_its_last_attempt_counts_as_given_up() -> None:
    rows = [item(1, attempts=2)]
    run, reasons, _ = drive(
        start("ops", plan(rows, 5, "x"), 1), [failed(0, cause=FailureCause.CREDENTIALS)]
    )
    assert reasons == [SettleReason.PERMANENT_FAILURE]
    assert run.dead == 1


def test_a_size_refusal_marks_the_round_for_another_shorter_try() -> None:
    too_large = failed(0, cause=FailureCause.TOO_LARGE)
    too_large = replace(too_large, targets=(replace(too_large.targets[0], sent_chars=5000),))
    run, reasons, _ = drive(start("ops", sends(1), 1), [too_large])
    assert reasons == [SettleReason.RESIZED] and run.resized
    settled_state = after_send(start("ops", sends(1), 1), sends(1)[0], too_large, NOW, POLICY)[1]
    assert settled_state[0][0].state is DeliveryState.PENDING


# --- pacing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "skip", "now", "interval", "wait"),
    [
        # first message to the URL: no wait
        ({}, set(), 100.0, 1.0, 0.0),
        # 0.25 s after the last one: wait the rest of the second
        ({0: 99.75}, set(), 100.0, 1.0, 0.75),
        # long ago: no wait
        ({0: 10.0}, set(), 100.0, 1.0, 0.0),
        # the busiest URL of the send decides
        ({0: 99.0, 1: 99.5}, set(), 100.0, 1.0, 0.5),
        # a URL the send skips does not hold it back
        ({0: 99.0, 1: 99.9}, {1}, 100.0, 1.0, 0.0),
        # pacing off
        ({0: 99.9}, set(), 100.0, 0.0, 0.0),
    ],
)
def test_messages_to_one_url_are_spaced_by_the_send_interval(
    last: dict[int, float], skip: set[int], now: float, interval: float, wait: float
) -> None:
    send = replace(sends(1)[0], skip=frozenset(skip))
    assert pace_wait(last, send, 2, now, interval) == pytest.approx(wait)

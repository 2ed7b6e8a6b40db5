"""Quiet hours at delivery, table-driven: which claimed rows are held and until when, and
what a released batch still tells."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.clocks import Elapsed
from watcher.core.decide import RetryPolicy, settle
from watcher.core.model import EventKind, Job
from watcher.core.outbox import DeliveryState, FailureKind, OutboxItem, Send, SendResult
from watcher.core.quiet import hold, render_released, settle_held
from watcher.core.state import StallReason, Transition
from watcher.core.windows import TimeInterval, TimeRange, TimeWindow

NOW = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # Tuesday
ELAPSED = Elapsed(400_000.0, "boot-1")  # NOW on the elapsed clock
E = EventKind
NIGHTS = TimeWindow("nights", (TimeInterval(times=(TimeRange(22 * 60, 6 * 60),)),))
LUNCH = TimeWindow("lunch", (TimeInterval(times=(TimeRange(12 * 60, 13 * 60),)),))


def t(kind: EventKind, job: str | None = "j1", minutes: int = 0, **fields: object) -> Transition:
    return Transition(
        event_id=f"{job}/{kind}/{minutes}",
        kind=kind,
        at=NOW + timedelta(minutes=minutes),
        kb_uuid="kb" if job else None,
        kb_name="docs" if job else None,
        job=Job(uuid=job) if job else None,
        **fields,  # type: ignore[arg-type]
    )


def item(route: str, n: int = 1) -> OutboxItem:
    return OutboxItem(n, route, t(E.FAILED), "c", NOW - timedelta(minutes=5))


@pytest.mark.parametrize(
    ("mutes", "route", "until", "window"),
    [
        # a route in its window: held until 06:00 the next morning, by that window
        ({"ops": (NIGHTS,)}, "ops", datetime(2026, 12, 2, 6, 0, tzinfo=UTC), "nights"),
        # a route outside its only window: goes now
        ({"ops": (LUNCH,)}, "ops", None, None),
        # another route's window does not hold this one
        ({"pager": (NIGHTS,)}, "ops", None, None),
        # of two windows, the one holding now names the hold
        ({"ops": (LUNCH, NIGHTS)}, "ops", datetime(2026, 12, 2, 6, 0, tzinfo=UTC), "nights"),
    ],
)
def test_a_row_due_in_its_routes_window_is_held_until_the_window_ends(
    mutes: dict[str, tuple[TimeWindow, ...]],
    route: str,
    until: datetime | None,
    window: str | None,
) -> None:
    free, held = hold([item(route)], mutes, NOW)
    if until is None:
        assert (len(free), held) == (1, [])
        return
    (settled,) = held
    assert free == []
    assert (settled.state, settled.next_attempt_at, settled.held_by) == (
        DeliveryState.PENDING,
        until,
        window,
    )
    assert settled.attempts == 0  # no attempt spent
    assert settled.error is not None and f"quiet hours {window!r}" in settled.error


@pytest.mark.parametrize(
    ("batch", "told", "resolved"),
    [
        # a job that stalled then completed: its outcome alone (said to follow a stall)
        ([t(E.STALLED), t(E.COMPLETED, minutes=9)], [E.COMPLETED], []),
        # started, then failed: the failure alone
        ([t(E.STARTED), t(E.FAILED, minutes=3)], [E.FAILED], []),
        # stalled and moving again, still running: one resolved line
        ([t(E.STALLED), t(E.RECOVERED, minutes=9)], [], [(E.STALLED, E.RECOVERED)]),
        # stalled, still stalled: told
        ([t(E.STALLED)], [E.STALLED], []),
        # the API unreachable then back: resolved
        (
            [t(E.API_UNREACHABLE, None), t(E.API_RECOVERED, None, 30)],
            [],
            [(E.API_UNREACHABLE, E.API_RECOVERED)],
        ),
        # the API unreachable still: told
        ([t(E.API_UNREACHABLE, None)], [E.API_UNREACHABLE], []),
        # two jobs: each keeps its own story
        ([t(E.STARTED, "a"), t(E.STARTED, "b"), t(E.FAILED, "b", 5)], [E.STARTED, E.FAILED], []),
    ],
)
def test_a_released_batch_leaves_out_what_resolved_meanwhile(
    batch: list[Transition],
    told: list[EventKind],
    resolved: list[tuple[EventKind, EventKind]],
) -> None:
    released = settle_held(batch)
    assert [x.kind for x in released.told] == told
    assert [(a.kind, b.kind) for a, b in released.resolved] == resolved


def test_the_outcome_of_a_job_that_stalled_while_held_says_so_in_the_released_message() -> None:
    batch = [
        t(E.STALLED, stall_reason=StallReason.NO_PROGRESS),
        t(E.RECOVERED, minutes=5, stall_reason=StallReason.NO_PROGRESS),
        t(E.COMPLETED, minutes=9),
    ]
    message = render_released(batch, "nights")
    assert message.title == "✅ Quiet hours nights over: 1 indexing event"
    assert "completed after a stall" in message.body
    assert "stalled" not in message.body.replace("after a stall", "")


@pytest.mark.parametrize(
    ("held", "state"),
    [
        # failing before a night's hold, failing again at its first try after: the hold
        # restarted its count, so it is retried, not given up
        (True, DeliveryState.PENDING),
        # never held, failing for two days: given up after delivery.dead_after (a day)
        (False, DeliveryState.DEAD),
    ],
)
def test_dead_after_counts_again_from_the_first_failure_after_the_quiet_hours_that_held_a_row(
    held: bool, state: DeliveryState
) -> None:
    failing_since = ELAPSED.minus(timedelta(days=2))
    old = replace(item("ops"), created_at=NOW - timedelta(days=2), failing_for=failing_since)
    if held:  # held by the night's window, then released
        _, [kept] = hold([old], {"ops": (NIGHTS,)}, NOW - timedelta(hours=1))
        old = replace(old, failing_for=kept.failing_for, held_by=kept.held_by)
    send = Send("ops", (old,), render_released([old.transition], "weekends"))
    failed = SendResult(ok=False, error="HTTP 503", failure=FailureKind.RETRYABLE)
    policy = RetryPolicy(dead_after=timedelta(days=1))
    ((settled, _),) = settle(send, failed, NOW, policy, elapsed=ELAPSED)
    assert settled.state is state

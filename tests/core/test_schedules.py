"""Schedule and freshness rules, table-driven: (what is remembered, what is read, now on the
API's clock) -> expected events. The watcher's wall clock is NOW throughout; the API's clock
is NOW skewed by up to ±90 s, and only the API's clock may decide."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.clocks import Elapsed, Instant
from watcher.core.model import EventKind, Job, Phase, Status
from watcher.core.render import render
from watcher.core.schedules import (
    Freshness,
    KbWatch,
    Schedule,
    ScheduleRules,
    derived_window,
    judge,
    quiet_until,
    read_schedule,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KB = "kb-1"
E = EventKind
GRACE = timedelta(minutes=30)
RULES = ScheduleRules(grace=GRACE)
SKEW = timedelta(seconds=90)


def at(api_skew: timedelta = timedelta(0)) -> Instant:
    """NOW on the wall clock; the API's clock `api_skew` off it."""
    return Instant(wall=NOW, api=NOW + api_skew, elapsed=Elapsed(1000.0, "boot"))


def on(run: datetime = NOW, **fields: object) -> Schedule:
    """An active daily schedule whose next run is `run`."""
    return replace(Schedule(uuid="s-1", is_active=True, next_run_at=run), **fields)  # type: ignore[arg-type]


def watch(**fields: object) -> KbWatch:
    return replace(KbWatch(kb_uuid=KB, since=NOW - timedelta(hours=1)), **fields)  # type: ignore[arg-type]


def job(created: datetime, outcome: str = "completed", finished: datetime | None = None) -> Job:
    states = {
        "completed": (Phase.SUCCEEDED, Status.COMPLETED),
        "no_changes": (Phase.SUCCEEDED, Status.NO_CHANGES),
        "failed": (Phase.FAILED, Status.FAILED),
        "running": (Phase.RUNNING, Status.IN_PROGRESS),
    }
    phase, status = states[outcome]
    end = finished or (created + timedelta(minutes=5) if outcome != "running" else None)
    return Job(
        uuid=f"job-{created:%H%M%S}-{outcome}",
        knowledge_base_uuid=KB,
        phase=phase,
        status=status,
        created_at=created,
        finished_at=end,
    )


RUN = NOW - GRACE - timedelta(minutes=1)  # a run whose grace ended a minute ago
EDGE = NOW - GRACE  # a run whose grace ends exactly at NOW (wall)

# schedule_missed: (remembered, jobs seen this cycle, the API's skew) -> events
MISSED_CASES = [
    pytest.param(
        watch(due_run=RUN, schedule=on(RUN)),
        [],
        timedelta(0),
        [E.SCHEDULE_MISSED],
        id="grace passed with no new job: missed",
    ),
    pytest.param(
        watch(due_run=RUN, schedule=on(RUN)),
        [job(RUN + timedelta(seconds=5))],
        timedelta(0),
        [],
        id="a job created just after the run keeps it",
    ),
    pytest.param(
        watch(due_run=RUN, schedule=on(RUN)),
        [job(RUN - timedelta(seconds=30))],
        timedelta(0),
        [],
        id="a job created 30 s early (within EARLY) keeps it",
    ),
    pytest.param(
        watch(due_run=RUN, schedule=on(RUN)),
        [job(RUN - timedelta(hours=3))],
        timedelta(0),
        [E.SCHEDULE_MISSED],
        id="a job from hours before the run does not keep it",
    ),
    pytest.param(
        watch(due_run=RUN, schedule=on(RUN), last_created=RUN + timedelta(minutes=2)),
        [],
        timedelta(0),
        [],
        id="a job remembered from an earlier cycle keeps it",
    ),
    pytest.param(
        watch(due_run=EDGE + timedelta(seconds=60), schedule=on()),
        [],
        SKEW,
        [E.SCHEDULE_MISSED],
        id="API clock 90 s ahead: its grace ended 30 s ago on DigitalOcean's clock",
    ),
    pytest.param(
        watch(due_run=EDGE - timedelta(seconds=60), schedule=on()),
        [],
        -SKEW,
        [],
        id="API clock 90 s behind: 30 s of grace left on DigitalOcean's clock",
    ),
    pytest.param(
        watch(due_run=NOW + timedelta(hours=1), schedule=on()),
        [],
        timedelta(0),
        [],
        id="a run still ahead: nothing to judge",
    ),
    pytest.param(
        watch(due_run=None, schedule=on(RUN, is_active=False)),
        [],
        timedelta(0),
        [],
        id="nothing waited for (schedule off): no event",
    ),
    pytest.param(
        watch(due_run=RUN, settled_run=None, schedule=on(RUN)),
        [job(RUN + timedelta(minutes=1), "running")],
        timedelta(0),
        [],
        id="a scheduled job still running keeps the run",
    ),
]


@pytest.mark.parametrize(("remembered", "jobs", "skew", "expected"), MISSED_CASES)
def test_a_scheduled_run_is_missed_only_when_its_grace_passed_on_the_apis_clock(
    remembered: KbWatch, jobs: list[Job], skew: timedelta, expected: list[EventKind]
) -> None:
    after, events = judge(remembered, jobs, at(skew), RULES, "docs")
    assert [e.kind for e in events] == expected
    if remembered.due_run is not None and (events or after.settled_run):
        assert after.settled_run == remembered.due_run  # judged once, never again
        _, repeat = judge(after, [], at(skew + timedelta(hours=1)), RULES, "docs")
        assert not {e.event_id for e in repeat} & {e.event_id for e in events}


def test_a_missed_run_is_one_event_named_after_the_run_and_moves_on_to_the_next() -> None:
    nxt = RUN + timedelta(days=1)
    after, events = judge(watch(due_run=RUN, schedule=on(nxt)), [], at(), RULES, "docs")
    (event,) = events
    assert event.event_id == f"kb/{KB}/schedule_missed/{RUN.isoformat()}"
    assert event.api_at == NOW and event.kb_name == "docs"
    assert after.due_run == nxt and after.settled_run == RUN
    text = render(event).text
    assert "scheduled indexing did not run" in render(event).title
    assert "started no indexing job within 30 min" in text


# schedule reads: (remembered schedule, read) -> events, and the run waited for afterwards
READ_CASES = [
    pytest.param(
        on(NOW),
        on(NOW, is_active=False),
        [E.SCHEDULE_DISABLED],
        None,
        id="turned off: schedule_disabled, nothing waited for",
    ),
    pytest.param(on(NOW), None, [E.SCHEDULE_DISABLED], None, id="gone (404): schedule_disabled"),
    pytest.param(
        on(NOW),
        on(NOW, deleted_at=NOW),
        [E.SCHEDULE_DISABLED],
        None,
        id="soft-deleted: schedule_disabled",
    ),
    pytest.param(
        None,
        on(NOW, is_active=False),
        [],
        None,
        id="off when first read: no event (first sight records, no storm)",
    ),
    pytest.param(
        on(NOW, is_active=False),
        on(NOW, is_active=False),
        [],
        None,
        id="still off: no second event",
    ),
    pytest.param(None, on(NOW), [], NOW, id="first read of an active schedule: its run waited"),
    pytest.param(
        on(NOW, is_active=False),
        on(NOW),
        [],
        NOW,
        id="turned back on: no event, its run waited for",
    ),
    pytest.param(
        on(NOW),
        on(NOW, is_active=None),
        [],
        NOW,
        id="is_active missing counts as on (every field may be missing)",
    ),
]


@pytest.mark.parametrize(("before", "read", "expected", "due"), READ_CASES)
def test_a_schedule_turned_off_is_alerted_once(
    before: Schedule | None, read: Schedule | None, expected: list[EventKind], due: datetime | None
) -> None:
    after, events = read_schedule(watch(schedule=before), read, at(SKEW), "docs")
    assert [e.kind for e in events] == expected
    assert after.due_run == due
    assert after.read_at == NOW + SKEW  # the API's clock: another process reads at its turn


def test_a_read_after_the_run_passed_does_not_hide_the_run_waited_for() -> None:
    """The hourly read may come after the run: next_run_at is then tomorrow's."""
    remembered = watch(due_run=RUN, schedule=on(RUN))
    after, _ = read_schedule(remembered, on(RUN + timedelta(days=1)), at(), "docs")
    assert after.due_run == RUN
    _, events = judge(after, [], at(), RULES, "docs")
    assert [e.kind for e in events] == [E.SCHEDULE_MISSED]


HOUR = timedelta(hours=1)
FRESH_26H = ScheduleRules(grace=GRACE, freshness=Freshness(default=timedelta(hours=26)))

# freshness: (remembered, jobs seen, rules, the API's skew) -> events
FRESH_CASES = [
    pytest.param(
        watch(last_success=NOW - 27 * HOUR),
        [],
        FRESH_26H,
        timedelta(0),
        [E.STALE],
        id="last success 27 h ago with fresh_within 26h: stale",
    ),
    pytest.param(
        watch(last_success=NOW - 25 * HOUR),
        [],
        FRESH_26H,
        timedelta(0),
        [],
        id="last success 25 h ago: fresh enough",
    ),
    pytest.param(
        watch(last_success=NOW - 26 * HOUR - timedelta(seconds=60)),
        [],
        FRESH_26H,
        -SKEW,
        [],
        id="API clock 90 s behind: 30 s within the window on its clock",
    ),
    pytest.param(
        watch(last_success=NOW - 26 * HOUR + timedelta(seconds=60)),
        [],
        FRESH_26H,
        SKEW,
        [E.STALE],
        id="API clock 90 s ahead: 30 s past the window on its clock",
    ),
    pytest.param(
        watch(last_success=NOW - 27 * HOUR, stale_from=NOW - 27 * HOUR),
        [],
        FRESH_26H,
        timedelta(0),
        [],
        id="already stale: no second event",
    ),
    pytest.param(
        watch(last_success=NOW - 27 * HOUR, stale_from=NOW - 27 * HOUR),
        [job(NOW - 10 * timedelta(minutes=1))],
        FRESH_26H,
        timedelta(0),
        [E.FRESH],
        id="stale, then a completed job: fresh",
    ),
    pytest.param(
        watch(last_success=NOW - 27 * HOUR, stale_from=NOW - 27 * HOUR),
        [job(NOW - 10 * timedelta(minutes=1), "no_changes")],
        FRESH_26H,
        timedelta(0),
        [E.FRESH],
        id="stale, then a no_changes job: fresh",
    ),
    pytest.param(
        watch(last_success=NOW - 27 * HOUR, stale_from=NOW - 27 * HOUR),
        [job(NOW - 10 * timedelta(minutes=1), "failed")],
        FRESH_26H,
        timedelta(0),
        [],
        id="stale, then a failed job: still stale",
    ),
    pytest.param(
        watch(last_success=NOW - 40 * HOUR),
        [job(NOW - 2 * HOUR, "failed")],
        FRESH_26H,
        timedelta(0),
        [E.STALE],
        id="a failed job does not make a KB fresh",
    ),
    pytest.param(
        watch(last_success=NOW - 40 * HOUR),
        [job(NOW - 2 * HOUR)],
        FRESH_26H,
        timedelta(0),
        [],
        id="a completed job seen this cycle keeps it fresh",
    ),
    pytest.param(
        watch(since=NOW - 30 * HOUR),
        [],
        FRESH_26H,
        timedelta(0),
        [E.STALE],
        id="no success known, watched for 30 h: stale",
    ),
    pytest.param(
        watch(since=NOW - HOUR),
        [],
        FRESH_26H,
        timedelta(0),
        [],
        id="no success known, watched for an hour: not yet (no false alert at start)",
    ),
    pytest.param(
        watch(last_success=NOW - 27 * HOUR, schedule=on()),
        [],
        RULES,
        timedelta(0),
        [E.STALE],
        id="no fresh_within: derived from a daily schedule (26 h)",
    ),
    pytest.param(
        watch(last_success=NOW - 27 * HOUR),
        [],
        RULES,
        timedelta(0),
        [],
        id="no fresh_within and no schedule: not judged",
    ),
    pytest.param(
        watch(last_success=NOW - 27 * HOUR, schedule=on(is_active=False)),
        [],
        RULES,
        timedelta(0),
        [],
        id="no fresh_within and the schedule off: not judged",
    ),
    pytest.param(
        watch(last_success=NOW - 27 * HOUR),
        [],
        ScheduleRules(freshness=Freshness(default=timedelta(hours=26), by_kb={KB: 48 * HOUR})),
        timedelta(0),
        [],
        id="the KB's own fresh_within (48h) over the default",
    ),
]


@pytest.mark.parametrize(("remembered", "jobs", "rules", "skew", "expected"), FRESH_CASES)
def test_a_kb_is_stale_without_a_successful_job_within_its_window_and_fresh_after_one(
    remembered: KbWatch,
    jobs: list[Job],
    rules: ScheduleRules,
    skew: timedelta,
    expected: list[EventKind],
) -> None:
    _, events = judge(remembered, jobs, at(skew), rules, "docs")
    assert [e.kind for e in events] == expected


def test_stale_and_fresh_are_a_pair_named_after_the_moment_freshness_ran_out() -> None:
    since = NOW - 27 * HOUR
    stale_watch, (stale,) = judge(watch(last_success=since), [], at(), FRESH_26H, "docs")
    assert stale.event_id == f"kb/{KB}/stale/{since.isoformat()}"
    assert "it should be fresh within 26 h" in render(stale).text
    _, (fresh,) = judge(stale_watch, [job(NOW - HOUR)], at(), FRESH_26H, "docs")
    assert fresh.event_id == f"kb/{KB}/fresh/{since.isoformat()}"
    assert "fresh again" in render(fresh).title


@pytest.mark.parametrize(
    ("days", "window"),
    [
        ((), timedelta(hours=26)),  # every day
        ((0, 1, 2, 3, 4, 5, 6), timedelta(hours=26)),  # every day, named
        ((1, 3, 5), timedelta(hours=74)),  # Friday to Monday: 3 days
        ((1,), timedelta(days=7, hours=2)),  # weekly
        ((7, 0), timedelta(days=7, hours=2)),  # 7 and 0 are both Sunday
    ],
)
def test_the_derived_window_is_the_longest_gap_between_scheduled_days_plus_two_hours(
    days: tuple[int, ...], window: timedelta
) -> None:
    assert derived_window(days) == window


def test_what_is_remembered_survives_its_json() -> None:
    remembered = watch(
        schedule=on(RUN, days=(1, 3), time="03:00:00", updated_at=NOW),
        due_run=RUN,
        settled_run=RUN - timedelta(days=1),
        last_created=NOW,
        last_success=NOW,
        stale_from=NOW,
        read_at=NOW,
    )
    assert KbWatch.decode(remembered.encode()) == remembered


HOUR = timedelta(hours=1)
FRESH_2H = ScheduleRules(grace=GRACE, freshness=Freshness(default=2 * HOUR))


@pytest.mark.parametrize(
    ("remembered", "rules", "until"),
    [
        # nothing waited for, no window: only a new job can change it
        (watch(), RULES, None),
        # a run waited for: its grace's end
        (watch(due_run=NOW + HOUR), RULES, NOW + HOUR + GRACE),
        # a window: its end after the last success (or the start of watching)
        (watch(last_success=NOW - HOUR), FRESH_2H, NOW + HOUR),
        (watch(), FRESH_2H, NOW + HOUR),
        # both: the earlier
        (watch(due_run=NOW, last_success=NOW - HOUR), FRESH_2H, NOW + GRACE),
        # already stale: only the run's grace (fresh again needs a new job)
        (watch(stale_from=NOW - 2 * HOUR, due_run=NOW), FRESH_2H, NOW + GRACE),
    ],
)
def test_a_watch_left_unchanged_stays_so_until_its_next_deadline_on_the_apis_clock(
    remembered: KbWatch, rules: ScheduleRules, until: datetime | None
) -> None:
    """Judged again with the same jobs at `until` it is unchanged; a second later it moves."""
    assert quiet_until(remembered, rules) == until
    if until is None:
        assert judge(remembered, [], at(timedelta(days=30)), rules) == (remembered, ())
        return
    assert judge(remembered, [], at(until - NOW), rules) == (remembered, ())
    moved, _ = judge(remembered, [], at(until - NOW + timedelta(seconds=1)), rules)
    assert moved != remembered

"""The extra reads' planner, table-driven: (candidates, room, bucket, now) -> reads, reason."""

from __future__ import annotations

from datetime import timedelta

import pytest

from watcher.core.extras import (
    BURST_MINUTES,
    Bucket,
    Candidate,
    PlanReason,
    Priority,
    ReadSpec,
    Room,
    Scope,
    due,
    plan,
    share_per_hour,
)

NOW = 100_000.0  # elapsed seconds of one boot
HOUR = timedelta(hours=1)
DB = ReadSpec("database", Scope.KB, timedelta(minutes=30), Priority.NORMAL)
SOURCES = ReadSpec("data_sources", Scope.KB, timedelta(days=1), Priority.HIGH, on_new_job=True)
AGENTS = ReadSpec("agents", Scope.ACCOUNT, HOUR, Priority.LOW, cost=2)
REPORT = ReadSpec("report", Scope.KB, HOUR, Priority.HIGH, cost=2)
FULL = Bucket(1_000.0, NOW)  # more tokens than any case needs
ROOMY = Room(per_hour=360)


def c(spec: ReadSpec, target: str = "kb-1", ago: float | None = None, **kw: object) -> Candidate:
    """A candidate last read `ago` seconds before NOW (None: never)."""
    return Candidate(spec, target, None if ago is None else NOW - ago, **kw)  # type: ignore[arg-type]


def names(candidates: tuple[Candidate, ...] | list[Candidate]) -> list[str]:
    return [f"{x.spec.name}:{x.target}" for x in candidates]


@pytest.mark.parametrize(
    ("max_per_minute", "share", "expected"),
    [
        (60, 0.10, 360),  # the default: 10 % of 3,600 an hour
        (250, 0.10, 1_500),  # the API's burst limit as the ceiling
        (60, 0.0, 0),  # turned off
        (1, 0.5, 30),  # the smallest ceiling, the largest share
    ],
)
def test_the_share_is_a_fraction_of_the_watchers_own_hourly_ceiling(
    max_per_minute: int, share: float, expected: int
) -> None:
    assert share_per_hour(max_per_minute, share) == expected


DUE_CASES = [
    # never read: due
    ([c(DB)], ["database:kb-1"]),
    # read 10 minutes ago, cadence 30 minutes: not due
    ([c(DB, ago=600)], []),
    # read 31 minutes ago: due
    ([c(DB, ago=1_860)], ["database:kb-1"]),
    # read a minute ago but its trigger fired (a new job started): due
    ([c(SOURCES, ago=60, triggered=True)], ["data_sources:kb-1"]),
    # priority first: the HIGH read before the NORMAL one listed first
    ([c(DB), c(SOURCES)], ["data_sources:kb-1", "database:kb-1"]),
    # within a priority, the longest overdue first
    ([c(DB, "a", ago=1_900), c(DB, "b", ago=7_200)], ["database:b", "database:a"]),
    # a LOW read that waited five cadences beats a NORMAL one just due (nothing starves)
    ([c(DB, "a", ago=1_860), c(AGENTS, "", ago=6 * 3_600)], ["agents:", "database:a"]),
    # but a NORMAL read overdue by one cadence beats a LOW one overdue by one of its own
    ([c(DB, "a", ago=3_600), c(AGENTS, "", ago=2 * 3_600)], ["database:a", "agents:"]),
]


@pytest.mark.parametrize(("candidates", "expected"), DUE_CASES)
def test_due_reads_come_in_priority_order_then_longest_overdue(
    candidates: list[Candidate], expected: list[str]
) -> None:
    assert names(due(candidates, NOW)) == expected


PLAN_CASES = [
    # nothing due: nothing read
    ([c(DB, ago=60)], ROOMY, FULL, [], PlanReason.NONE_DUE),
    # everything due fits
    ([c(DB, "a"), c(DB, "b")], ROOMY, FULL, ["database:a", "database:b"], PlanReason.ALL_DUE),
    # the API says the token runs low: the extra reads are the first to go, all of them
    ([c(SOURCES)], Room(360, tight=True), FULL, [], PlanReason.TIGHT),
    # the hourly share is spent (359 of 360, and the next read costs 2)
    ([c(AGENTS, "")], Room(360, spent_hour=359), FULL, [], PlanReason.SHARE_SPENT),
    # the bucket holds 1.5 tokens: one read of 1 now, the second waits (spread over the hour)
    ([c(DB, "a"), c(DB, "b")], ROOMY, Bucket(1.5, NOW), ["database:a"], PlanReason.SHARE_SPENT),
    # the sliding minute keeps the next poll's cost free: 12 left, the poll takes 11
    (
        [c(DB, "a"), c(DB, "b")],
        Room(360, minute_left=12, poll_cost=11),
        FULL,
        ["database:a"],
        PlanReason.MINUTE_FULL,
    ),
    # when short, the HIGH read goes and the LOW one waits
    (
        [c(AGENTS, ""), c(SOURCES)],
        ROOMY,
        Bucket(1.0, NOW),
        ["data_sources:kb-1"],
        PlanReason.SHARE_SPENT,
    ),
    # a cheaper, less important read never overtakes a waiting more important one
    ([c(DB), c(REPORT)], Room(360, spent_hour=359), FULL, [], PlanReason.SHARE_SPENT),
]


@pytest.mark.parametrize(("candidates", "room", "bucket", "reads", "reason"), PLAN_CASES)
def test_the_plan_stays_inside_the_share_the_bucket_and_the_minute(
    candidates: list[Candidate],
    room: Room,
    bucket: Bucket,
    reads: list[str],
    reason: PlanReason,
) -> None:
    made = plan(candidates, room, bucket, NOW)
    assert (names(made.reads), made.reason) == (reads, reason)
    assert made.waiting == len(due(candidates, NOW)) - len(reads) or reason is PlanReason.NONE_DUE


BUCKET_CASES = [
    # a fresh bucket starts full: five minutes' worth of 360 an hour
    (Bucket(), 360, 360 * BURST_MINUTES / 60),
    # empty, a minute later: a minute's worth (6 of 360 an hour)
    (Bucket(0.0, NOW - 60), 360, 6.0),
    # never more than five minutes' worth, however long it rested
    (Bucket(0.0, NOW - 86_400), 360, 30.0),
    # a share of 0 never refills
    (Bucket(0.0, NOW - 3_600), 0, 0.0),
]


@pytest.mark.parametrize(("bucket", "per_hour", "tokens"), BUCKET_CASES)
def test_the_bucket_spreads_the_share_over_the_hour(
    bucket: Bucket, per_hour: int, tokens: float
) -> None:
    assert bucket.refilled(NOW, per_hour).tokens == pytest.approx(tokens)


def test_an_hour_of_cycles_never_spends_more_than_the_share() -> None:
    """A thousand KBs' database reads due every minute for two hours: each sliding hour holds
    at most the share, and the reads are spread (no minute holds more than the burst)."""
    candidates = [c(DB, f"kb-{n}") for n in range(1_000)]
    bucket, spent = Bucket(), []
    for minute in range(120):
        now = NOW + minute * 60
        hour = sum(n for at, n in spent if at > now - 3_600)
        made = plan(candidates, Room(360, spent_hour=hour), bucket, now)
        bucket = made.bucket
        spent.append((now, len(made.reads)))
        read = {x.target for x in made.reads}
        candidates = [replace_last(x, now) if x.target in read else x for x in candidates]
    for minute in range(120):
        window = [n for at, n in spent if NOW + minute * 60 - 3_600 < at <= NOW + minute * 60]
        assert sum(window) <= 360
    assert max(n for _, n in spent) <= 30
    assert sum(n for _, n in spent[60:]) >= 300  # and it does spend what it may


def replace_last(candidate: Candidate, now: float) -> Candidate:
    return Candidate(candidate.spec, candidate.target, now)

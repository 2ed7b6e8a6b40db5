"""The extra reads' planner, table-driven: (candidates, room, bucket, now) -> reads, reason."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from watcher.core.clocks import Elapsed
from watcher.core.extras import (
    BURST_MINUTES,
    Bucket,
    Candidate,
    Charge,
    PlanReason,
    Priority,
    ReadSpec,
    Room,
    Scope,
    admit,
    due,
    plan,
    schedule_candidates,
    share_per_hour,
    targets_of,
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
    # 10,000 KBs: a poll of 50 every 15 s is 200 of the 240 a minute, and the share's reads
    # take at most half of the 40 left; 19 extra requests went in the last minute: the one
    # request left is all they may take, however much room the client's minute has just now
    # (before the next three polls come)
    (
        [c(DB, "a"), c(DB, "b")],
        Room(360, minute_left=190, poll_cost=50, ceiling=240, minute_polls=200, extra_minute=19),
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


def test_extra_reads_never_take_a_later_polls_room_in_the_sliding_minute() -> None:
    """10,000 KBs on the default ceiling (240 a wall minute at the bench's 4x): a poll of 50
    requests every 15 s, 20,000 reads due. Each poll is sent at once; the client's sliding
    minute must always have room for it. Before the minute's polls were counted, the first
    cycle's extra reads took 120 of the minute, and the third poll waited 33 s for room."""
    ceiling, cost, every = 240, 50, 15.0
    candidates = [c(DB, f"kb-{n}") for n in range(20_000)]
    bucket = Bucket()
    sent: list[tuple[float, int, str]] = []  # (time, requests, "poll" or "extra")
    for k in range(40):
        now = NOW + k * every

        def in_minute(kind: str | None = None, at: float = now) -> int:
            return sum(n for t, n, w in sent if at - 60 < t <= at and kind in (None, w))

        assert in_minute() + cost <= ceiling, f"poll {k} finds no room"
        sent.append((now, cost, "poll"))
        room = Room(
            10_000,
            minute_left=ceiling - in_minute(),
            poll_cost=cost,
            ceiling=ceiling,
            minute_polls=math.ceil(60 / every) * cost,
            extra_minute=in_minute("extra"),
        )
        made = plan(candidates, room, bucket, now)
        bucket = made.bucket
        sent.append((now + 0.5, len(made.reads), "extra"))
        read = {x.target for x in made.reads}
        candidates = [replace_last(x, now) if x.target in read else x for x in candidates]
    extra = sum(n for _, n, w in sent if w == "extra")
    assert extra >= 0.75 * (ceiling - 4 * cost) / 2 * 10  # and most of their half of the 40


def replace_last(candidate: Candidate, now: float) -> Candidate:
    return Candidate(candidate.spec, candidate.target, now)


# --- issue 17 item 9: every extra read inside the one budget ----------------------------

SCHEDULE = ReadSpec("schedule", Scope.KB, HOUR, Priority.NORMAL)
EMPTY = Bucket(0.0, NOW)
MINUTE, ALL = PlanReason.MINUTE_FULL, PlanReason.ALL_DUE

ADMIT_CASES = [
    # a read of the share, with room everywhere: it goes
    (Charge.SHARE, 1, ROOMY, FULL, PlanReason.ALL_DUE),
    # the API's remaining rate limit under the reserve: no kind goes, not even the floor
    (Charge.SHARE, 1, Room(360, tight=True), FULL, PlanReason.TIGHT),
    (Charge.FLOOR, 2, Room(360, tight=True), FULL, PlanReason.TIGHT),
    (Charge.REPORT, 1, Room(360, tight=True), FULL, PlanReason.TIGHT),
    # the minute holds 6 more, the next poll needs 5: a read of 2 would take the poll's room
    (Charge.SHARE, 2, Room(360, minute_left=6, poll_cost=5), FULL, PlanReason.MINUTE_FULL),
    (Charge.FLOOR, 2, Room(360, minute_left=6, poll_cost=5), FULL, PlanReason.MINUTE_FULL),
    (Charge.REPORT, 2, Room(360, minute_left=6, poll_cost=5), FULL, PlanReason.MINUTE_FULL),
    (Charge.SHARE, 1, Room(360, minute_left=6, poll_cost=5), FULL, PlanReason.ALL_DUE),
    # the minute's polls at the pace in force take 222 of 240 and extra reads sent 17: a
    # report of 2 would take a later poll's room (a report waits too: the polling goes first)
    (Charge.REPORT, 2, Room(360, ceiling=240, minute_polls=222, extra_minute=17), FULL, MINUTE),
    (Charge.FLOOR, 1, Room(360, ceiling=240, minute_polls=222, extra_minute=17), FULL, ALL),
    # the polls leave 40, extra reads sent 25: a report still goes, a read of the share does
    # not (it takes at most half of the 40: the other half is the reports')
    (Charge.REPORT, 2, Room(360, ceiling=240, minute_polls=200, extra_minute=25), FULL, ALL),
    (Charge.SHARE, 1, Room(360, ceiling=240, minute_polls=200, extra_minute=25), FULL, MINUTE),
    # the share spent (or the bucket empty): the share's reads wait...
    (Charge.SHARE, 1, Room(360, spent_hour=360), FULL, PlanReason.SHARE_SPENT),
    (Charge.SHARE, 1, ROOMY, EMPTY, PlanReason.SHARE_SPENT),
    # ...and at share 0 too, but the prices' floor and a report an alert waits for still go
    (Charge.SHARE, 1, Room(0), EMPTY, PlanReason.SHARE_SPENT),
    (Charge.FLOOR, 2, Room(0), EMPTY, PlanReason.ALL_DUE),
    (Charge.REPORT, 1, Room(360, spent_hour=360), EMPTY, PlanReason.ALL_DUE),
]


@pytest.mark.parametrize(("charge", "cost", "room", "bucket", "expected"), ADMIT_CASES)
def test_one_read_waits_for_the_reserve_and_the_polls_room_and_the_share_as_charged(
    charge: Charge, cost: int, room: Room, bucket: Bucket, expected: PlanReason
) -> None:
    assert admit(charge, cost, room, bucket) is expected


def test_schedules_never_read_go_first_then_the_oldest_read() -> None:
    last = {"b": Elapsed(NOW - 7_200, "boot"), "c": Elapsed(NOW - 4_000, "boot")}
    last |= {"d": Elapsed(NOW - 600, "boot"), "e": Elapsed(NOW - 9_000, "other boot")}
    now = Elapsed(NOW, "boot")
    mine = schedule_candidates(SCHEDULE, ["b", "c", "d", "a", "e"], last, now)
    chosen = plan(mine, ROOMY, FULL, NOW)
    # a never read, e read on another boot (never on this one), then b (2 h), c (67 min);
    # d was read 10 minutes ago: not due
    assert targets_of(chosen, "schedule") == ("a", "e", "b", "c")


def test_the_schedules_taken_are_the_ones_the_shares_plan_would_make_beside_the_others() -> None:
    """Four requests of room: the never-read data sources (HIGH) go before the schedules,
    and of the schedules the longest unread go first; the planner's other reads are made
    later (after the poll), the schedules now."""
    now = Elapsed(NOW, "boot")
    last = {f"kb-{i}": Elapsed(NOW - 3_600 - 60 * i, "boot") for i in range(5)}
    mine = schedule_candidates(SCHEDULE, sorted(last), last, now)
    others = [c(SOURCES, "kb-9"), c(DB, "kb-9", ago=600)]
    chosen = plan(mine + others, Room(360, minute_left=4), FULL, NOW)
    assert names(chosen.reads)[0] == "data_sources:kb-9"
    assert targets_of(chosen, "schedule") == ("kb-4", "kb-3", "kb-2")


def test_schedules_at_share_zero_are_never_due_to_be_read() -> None:
    mine = schedule_candidates(SCHEDULE, ["a", "b"], {}, Elapsed(NOW, "boot"))
    assert targets_of(plan(mine, Room(0), Bucket(), NOW), "schedule") == ()


def test_hourly_schedules_of_many_kbs_stay_inside_the_share_with_the_other_reads() -> None:
    """Hourly schedules for 200 KBs want 200 requests an hour, more than a share of 72 (the
    1,000 KBs of a 360 share, scaled down); with the databases' and the sources' reads, that
    share is what all of them get together in any sliding hour, and over six hours every
    kind gets its turn (none starves the others)."""
    share, kbs = 72, [f"kb-{i}" for i in range(200)]
    last: dict[tuple[str, str], float] = {}
    bucket, spent = Bucket(), []
    made: dict[str, int] = {}
    for minute in range(360):
        now = NOW + 60 * minute
        cands = [
            Candidate(spec, kb, last.get((spec.name, kb)))
            for spec in (SCHEDULE, SOURCES, DB)  # the cycle's order: schedules, then the others
            for kb in kbs
        ]
        hour = sum(n for t, n in spent if t > now - 3_600)
        chosen = plan(cands, Room(share, spent_hour=hour), bucket, now)
        bucket = chosen.bucket
        for read in chosen.reads:
            last[(read.spec.name, read.target)] = now
            made[read.spec.name] = made.get(read.spec.name, 0) + read.requests
            spent.append((now, read.requests))
        assert sum(n for t, n in spent if t > now - 3_600) <= share
    assert made["data_sources"] == 200 and made["schedule"] >= 200 and made["database"] > 0


def test_a_plan_over_thousands_due_chooses_what_the_whole_order_would() -> None:
    """The plan orders only the few reads that can fit (each costs at least one request):
    what it chooses is exactly the longest prefix of the full order (`due`) that fits, ties
    kept in the candidates' order, at every allowance."""
    specs = [DB, SOURCES, AGENTS, REPORT]
    candidates = [
        c(specs[i % 4], f"kb-{i % 997}", None if i % 11 == 0 else float((i * 7919) % 20_000))
        for i in range(4_000)
    ]
    order = due(candidates, NOW)
    assert len(order) > 1_000  # thousands due: the case the shortcut is for
    for tokens in (0.0, 0.5, 1.0, 2.0, 3.5, 17.0, 30.0):  # 30: the bucket's cap at 360/h
        made = plan(candidates, ROOMY, Bucket(tokens, NOW), NOW)
        fits, left = [], tokens
        for x in order:
            if x.requests > left:
                break
            fits.append(x)
            left -= x.requests
        assert names(made.reads) == names(fits)
        assert made.waiting == len(order) - len(fits)

"""Quiet or full: `verdict`'s reasons, table-driven; the stall deadlines agree with
`stall_due` on every clock; a digest's next slot."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.clocks import Elapsed, Instant
from watcher.core.digest import DigestSchedule, Period, due, next_slot
from watcher.core.model import Job, KnowledgeBase, Phase, Status
from watcher.core.nextdue import (
    Deadline,
    DueKind,
    Full,
    SafetyNet,
    Settled,
    Verdict,
    stall_deadlines,
    verdict,
)
from watcher.core.stall import stall_due
from watcher.core.state import JobState, Policy, Sighting

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
BOOT = "b"
KBS = (KnowledgeBase(uuid="kb-1", name="docs"),)
SECOND = timedelta(seconds=1)


def at(after: timedelta, *, api: timedelta = timedelta(0), boot: str = BOOT) -> Instant:
    """`after` past NOW on every clock; DigitalOcean's off by `api`."""
    elapsed = Elapsed(1000 + after.total_seconds(), boot)
    return Instant(wall=NOW + after, api=NOW + after + api, elapsed=elapsed)


def stepped(*, wall: timedelta = timedelta(0), api: timedelta = timedelta(0)) -> Instant:
    """A minute past NOW on the elapsed clock; the wall's and DigitalOcean's stepped by
    `wall` and `api` since NOW."""
    later = LATER
    return replace(later, wall=later.wall + wall, api=later.api + api)


def settled(*deadlines: Deadline, quiet: int = 0) -> Settled:
    return Settled(KBS, (7, 0), at(timedelta(0)), deadlines, quiet)


def clocked() -> Settled:
    """Settled while a job's deadline for people is held."""
    return replace(settled(), clocked=True)


LATER = at(timedelta(minutes=1))


@pytest.mark.parametrize(
    ("last", "account", "version", "now", "room", "expected"),
    [
        # nothing settled: the first cycle, or the last one moved
        (None, KBS, (7, 0), LATER, True, Verdict(Full.UNSETTLED)),
        # the same list, the same store, nothing due: quiet
        (settled(), KBS, (7, 0), LATER, True, Verdict(None)),
        # an equal list made of other objects is the same list
        (settled(), (replace(KBS[0]),), (7, 0), LATER, True, Verdict(None)),
        # one KB's value differs
        (settled(), (replace(KBS[0], name="x"),), (7, 0), LATER, True, Verdict(Full.LISTED)),
        # another connection committed; a store that cannot tell
        (settled(), KBS, (8, 0), LATER, True, Verdict(Full.WRITTEN)),
        (settled(), KBS, None, LATER, True, Verdict(Full.WRITTEN)),
        # the wall clock went back
        (settled(), KBS, (7, 0), at(-SECOND), True, Verdict(Full.WALL_STEPPED)),
        # while a job's deadline for people is held: the wall clock stepped against the
        # elapsed clock, forward, or back by less than the time since; under two seconds it
        # did not step
        (clocked(), KBS, (7, 0), stepped(wall=2 * SECOND), True, Verdict(Full.WALL_STEPPED)),
        (clocked(), KBS, (7, 0), stepped(wall=-2 * SECOND), True, Verdict(Full.WALL_STEPPED)),
        (clocked(), KBS, (7, 0), stepped(wall=SECOND * 1.9), True, Verdict(None)),
        # DigitalOcean's clock stepped against the elapsed clock, either way
        (clocked(), KBS, (7, 0), stepped(api=timedelta(minutes=1)), True,
         Verdict(Full.API_STEPPED)),
        (clocked(), KBS, (7, 0), stepped(api=-2 * SECOND), True, Verdict(Full.API_STEPPED)),
        (clocked(), KBS, (7, 0), stepped(api=SECOND * 1.9), True, Verdict(None)),
        # no deadline for people held: a step moves nothing a full cycle would write
        (settled(), KBS, (7, 0), stepped(wall=timedelta(hours=1)), True, Verdict(None)),
        (settled(), KBS, (7, 0), stepped(api=timedelta(minutes=1)), True, Verdict(None)),
        # the safety net: the 20th cycle, or 10 minutes on the elapsed clock
        (settled(quiet=19), KBS, (7, 0), LATER, True, Verdict(Full.SAFETY_NET)),
        (settled(), KBS, (7, 0), at(timedelta(minutes=10)), True, Verdict(Full.SAFETY_NET)),
        # an elapsed reading of another boot: the safety net (nothing can be compared)
        (settled(), KBS, (7, 0), at(SECOND, boot="c"), True, Verdict(Full.SAFETY_NET)),
        # each clock's deadline, just before and at its moment
        (
            settled(Deadline(DueKind.STALL, api=NOW + timedelta(seconds=60))),
            KBS, (7, 0), at(timedelta(seconds=59)), True, Verdict(None),
        ),
        (
            settled(Deadline(DueKind.STALL, api=NOW + timedelta(seconds=60))),
            KBS, (7, 0), at(timedelta(seconds=59), api=SECOND), True,
            Verdict(Full.DUE, DueKind.STALL),
        ),
        (
            settled(Deadline(DueKind.REMINDER, elapsed=Elapsed(1030, BOOT))),
            KBS, (7, 0), at(timedelta(seconds=30)), True, Verdict(Full.DUE, DueKind.REMINDER),
        ),
        (
            settled(Deadline(DueKind.DIGEST, wall=NOW + timedelta(seconds=30))),
            KBS, (7, 0), at(timedelta(seconds=29)), True, Verdict(None),
        ),
        # no moment: the subsystem may have work now
        (settled(Deadline(DueKind.DELIVERY)), KBS, (7, 0), LATER, True,
         Verdict(Full.DUE, DueKind.DELIVERY)),
        # an extra read due counts only while the budget has room for one
        (
            settled(Deadline(DueKind.EXTRA_READS, elapsed=Elapsed(1000, BOOT), needs_room=True)),
            KBS, (7, 0), LATER, False, Verdict(None),
        ),
        (
            settled(Deadline(DueKind.EXTRA_READS, elapsed=Elapsed(1000, BOOT), needs_room=True)),
            KBS, (7, 0), LATER, True, Verdict(Full.DUE, DueKind.EXTRA_READS),
        ),
    ],
)  # fmt: skip
def test_verdict(
    last: Settled | None,
    account: tuple[KnowledgeBase, ...],
    version: tuple[int, int] | None,
    now: Instant,
    room: bool,
    expected: Verdict,
) -> None:
    assert verdict(last, account, version, now, room=room, net=SafetyNet()) == expected


POLICY = Policy(
    pending_after=timedelta(minutes=20),
    no_progress_after=timedelta(minutes=30),
    max_runtime=timedelta(hours=6),
)


def job_state(phase: Phase, status: Status, **times: datetime | None) -> JobState:
    job = Job(uuid="j", knowledge_base_uuid="kb-1", phase=phase, status=status, **times)  # type: ignore[arg-type]
    start = at(timedelta(0)).elapsed
    sighting = Sighting(first=start, moved=start.minus(timedelta(minutes=5)))
    return JobState(job, "kb-1", NOW, NOW, sighting=sighting)


STATES = [
    job_state(Phase.PENDING, Status.PENDING, created_at=NOW - timedelta(minutes=3)),
    job_state(Phase.PENDING, Status.PENDING),  # no created_at: the sightings stand in
    job_state(Phase.RUNNING, Status.IN_PROGRESS, created_at=NOW - timedelta(hours=5, minutes=50)),
    job_state(Phase.RUNNING, Status.IN_PROGRESS, started_at=NOW - timedelta(minutes=1)),
    job_state(Phase.RUNNING, Status.IN_PROGRESS),
    job_state(Phase.SUCCEEDED, Status.COMPLETED),
]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("api", [timedelta(0), timedelta(minutes=7), -timedelta(minutes=4)])
def test_a_stall_deadline_comes_exactly_when_stall_due_says_a_rule_fires(
    state: JobState, api: timedelta
) -> None:
    for minutes in range(0, 60 * 7, 1):
        now = at(timedelta(minutes=minutes), api=api)
        fires = stall_due(state, now, POLICY)
        came = any(d.due(now) for d in stall_deadlines(state, POLICY))
        assert came == (fires is not None and fires[0] <= timedelta(0)), (minutes, fires)


@pytest.mark.parametrize(
    "schedule",
    [
        DigestSchedule(Period.DAILY, 9 * 60),
        DigestSchedule(Period.WEEKLY, 17 * 60 + 30, weekday=4),
    ],
)
def test_a_digest_is_due_from_its_next_slot_on_and_not_before(schedule: DigestSchedule) -> None:
    mark = None
    now = NOW
    for _ in range(3):
        found = due(schedule, now, mark)
        mark = found.until if found is not None else mark
        slot = next_slot(schedule, now)
        assert due(schedule, slot - SECOND, mark) is None
        assert due(schedule, slot, mark) is not None
        now = slot

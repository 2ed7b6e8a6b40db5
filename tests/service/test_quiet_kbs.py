"""A KB judged unchanged (the same remembered watch, the very same jobs) is not judged again
until its next deadline on the API's clock: freshness running out and a scheduled run's
grace passing are still alerted with no byte of the API's answer changed, and a new job
is judged at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watcher.core.clocks import Elapsed, Instant
from watcher.core.model import EventKind, Job, KnowledgeBase, Phase, Status
from watcher.core.schedules import Freshness, KbWatch, ScheduleRules
from watcher.service.kbwatch import Judged, KbWatcher, KbWatchSettings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KB = KnowledgeBase(uuid="kb-1", name="docs")
HOUR = timedelta(hours=1)


class NoMeta:
    """A store with nothing remembered (every KB starts afresh)."""

    async def get_meta(self, key: str) -> str | None:
        return None


def at(after: timedelta) -> Instant:
    return Instant(wall=NOW + after, api=NOW + after, elapsed=Elapsed(after.total_seconds(), "b"))


def done(finished: datetime) -> Job:
    return Job(
        uuid=f"job-{finished:%H%M}",
        knowledge_base_uuid=KB.uuid,
        phase=Phase.SUCCEEDED,
        status=Status.COMPLETED,
        created_at=finished - timedelta(minutes=5),
        finished_at=finished,
    )


async def cycle(watcher: KbWatcher, jobs: list[Job], after: timedelta) -> Judged:
    judged = await watcher.judge([KB], {KB.uuid: jobs}, at(after), until=0.0)
    watcher.committed(judged)
    return judged


def kinds(judged: Judged) -> list[EventKind]:
    return [t.kind for t in judged.transitions]


async def test_freshness_running_out_is_alerted_after_quiet_cycles_with_the_same_job() -> None:
    rules = ScheduleRules(freshness=Freshness(default=2 * HOUR))
    watcher = KbWatcher(None, NoMeta(), KbWatchSettings(rules=rules))  # type: ignore[arg-type]
    latest = [done(NOW - HOUR)]  # the same objects every cycle, as the page memo gives
    assert kinds(await cycle(watcher, latest, timedelta(0))) == []
    for minutes in range(1, 60, 10):
        assert kinds(await cycle(watcher, latest, timedelta(minutes=minutes))) == []
    assert watcher.quiet_skips > 0  # the quiet cycles were not judged again
    skipped = watcher.quiet_skips
    judged = await cycle(watcher, latest, HOUR + timedelta(seconds=1))  # 2 h since success
    assert kinds(judged) == [EventKind.STALE]
    assert watcher.quiet_skips == skipped
    assert kinds(await cycle(watcher, latest, 2 * HOUR)) == []  # stale once


async def test_a_new_job_is_judged_at_once_after_quiet_cycles() -> None:
    rules = ScheduleRules(freshness=Freshness(default=2 * HOUR))
    watcher = KbWatcher(None, NoMeta(), KbWatchSettings(rules=rules))  # type: ignore[arg-type]
    old = [done(NOW - 3 * HOUR)]
    assert kinds(await cycle(watcher, old, timedelta(0))) == [EventKind.STALE]
    for minutes in range(1, 30, 10):
        assert kinds(await cycle(watcher, old, timedelta(minutes=minutes))) == []
    assert watcher.quiet_skips > 0
    fresh = [done(NOW + timedelta(minutes=35))]
    assert kinds(await cycle(watcher, fresh, timedelta(minutes=40))) == [EventKind.FRESH]


async def test_a_scheduled_run_missed_is_alerted_after_quiet_cycles() -> None:
    """The run waited for (remembered from an earlier read) passes its grace with no job."""
    rules = ScheduleRules(grace=timedelta(minutes=30))
    watcher = KbWatcher(None, NoMeta(), KbWatchSettings(rules=rules))  # type: ignore[arg-type]
    waited = KbWatch(kb_uuid=KB.uuid, since=NOW - HOUR, due_run=NOW + timedelta(minutes=10))
    watcher.committed(Judged(watches={KB.uuid: waited}))
    latest = [done(NOW - HOUR)]
    for minutes in range(0, 40, 5):
        assert kinds(await cycle(watcher, latest, timedelta(minutes=minutes))) == []
    assert watcher.quiet_skips > 0
    judged = await cycle(watcher, latest, timedelta(minutes=40, seconds=1))
    assert kinds(judged) == [EventKind.SCHEDULE_MISSED]

"""Schedules and freshness of knowledge bases: `schedule_missed`, `schedule_disabled`,
`stale` and `fresh`. Pure.

Every time here is on DigitalOcean's clock (`Instant.api`): `next_run_at`, a job's
`created_at` and `finished_at` are its timestamps, and they are judged against the API's now,
never the watcher's wall clock (which may be minutes off).

The rules, per knowledge base (`KbWatch` is what is remembered between cycles):

- A read of the schedule (`read_schedule`) that finds it turned off (`is_active` false,
  `deleted_at` set, or no schedule any more) after it was on is `schedule_disabled`, once.
  Its `next_run_at` becomes the run the watcher waits for (`due_run`); an earlier run still
  waiting is judged first, so a read after the run passed never hides it.
- Each cycle (`judge`), the run waited for is kept when a job of the KB was created no
  earlier than `EARLY` before it; when `grace` has passed after it on the API's clock and no
  such job exists, it is `schedule_missed`, once per run.
- Freshness: the window is the KB's `fresh_within` when configured, else derived from an
  active schedule (`derived_window`: the longest gap between scheduled days plus
  `DERIVED_SLACK`), else none (not judged). When no completed or no_changes job finished
  within the window (counting from when the watcher began watching the KB, if it knows of
  none), the KB is `stale`, once; the first such job after that makes it `fresh`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from watcher.core.clocks import Instant
from watcher.core.model import EventKind, Job
from watcher.core.state import Transition

EARLY = timedelta(minutes=1)
"""A job created up to this long before a scheduled run counts as that run."""
DERIVED_SLACK = timedelta(hours=2)
"""Added to the longest gap between scheduled days for a derived `fresh_within`."""
DEFAULT_GRACE = timedelta(minutes=30)
_FRESH_OUTCOMES = frozenset({EventKind.COMPLETED, EventKind.NO_CHANGES})


@dataclass(frozen=True, slots=True)
class Schedule:
    """A knowledge base's indexing schedule (`apiScheduledIndexingInfo`); any field may be
    missing. `days` are cron days (0 or 7 Sunday, 1 Monday ...); times are the API's."""

    uuid: str | None = None
    is_active: bool | None = None
    next_run_at: datetime | None = None
    last_ran_at: datetime | None = None
    deleted_at: datetime | None = None
    updated_at: datetime | None = None
    time: str | None = None
    days: tuple[int, ...] = ()

    @property
    def active(self) -> bool:
        """On: not deleted and not marked inactive (a missing `is_active` counts as on)."""
        return self.deleted_at is None and self.is_active is not False


@dataclass(frozen=True, slots=True)
class Freshness:
    """`fresh_within` per KB uuid (`by_kb`), else `default` (None: derive from the schedule)."""

    default: timedelta | None = None
    by_kb: Mapping[str, timedelta] = field(default_factory=dict)

    def window(self, kb_uuid: str, schedule: Schedule | None) -> timedelta | None:
        """The KB's window: configured, else derived from an active schedule, else None."""
        configured = self.by_kb.get(kb_uuid, self.default)
        if configured is not None:
            return configured
        if schedule is not None and schedule.active:
            return derived_window(schedule.days)
        return None


def derived_window(days: Iterable[int]) -> timedelta:
    """The longest gap between scheduled days (every day when none are named) plus slack:
    daily runs give 26 h, Monday-Wednesday-Friday 74 h (Friday to Monday)."""
    week = sorted({day % 7 for day in days})
    if len(week) <= 1:
        gap = 7 if week else 1
    else:
        gap = max((b - a) % 7 or 7 for a, b in zip(week, week[1:] + week[:1], strict=True))
    return timedelta(days=gap) + DERIVED_SLACK


@dataclass(frozen=True, slots=True)
class KbWatch:
    """What the watcher remembers of one KB's schedule and freshness (API clock throughout).

    `schedule` is the last one read (None: none read, or the KB has none); `due_run` the
    scheduled run waited for; `settled_run` the last run judged (kept or missed);
    `last_created` the newest job creation seen; `last_success` the newest finish of a
    completed or no_changes job seen; `since` when the watcher began watching the KB;
    `stale_from` the moment the KB counted stale from, while it is stale and alerted;
    `read_at` when its schedule was last read (so another process reads it at its turn).
    """

    kb_uuid: str
    since: datetime
    schedule: Schedule | None = None
    due_run: datetime | None = None
    settled_run: datetime | None = None
    last_created: datetime | None = None
    last_success: datetime | None = None
    stale_from: datetime | None = None
    read_at: datetime | None = None

    def encode(self) -> str:
        """JSON, for the store's meta table."""
        return json.dumps(_plain(self), sort_keys=True)

    @classmethod
    def decode(cls, raw: str) -> KbWatch:
        """`encode`'s JSON back; raises ValueError on anything else."""
        data = json.loads(raw)
        try:
            sched = data.get("schedule")
            schedule = _decode_schedule(sched) if isinstance(sched, dict) else None
            times = {k: _time(data.get(k)) for k in _TIMES}
            return cls(kb_uuid=data["kb_uuid"], schedule=schedule, **times)  # type: ignore[arg-type]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"kb watch: {exc}") from exc


def _decode_schedule(data: dict[str, Any]) -> Schedule:
    return Schedule(
        uuid=data.get("uuid"),
        is_active=data.get("is_active"),
        next_run_at=_time(data.get("next_run_at")),
        last_ran_at=_time(data.get("last_ran_at")),
        deleted_at=_time(data.get("deleted_at")),
        updated_at=_time(data.get("updated_at")),
        time=data.get("time"),
        days=tuple(int(day) for day in data.get("days") or ()),
    )


_TIMES = (
    "since",
    "due_run",
    "settled_run",
    "last_created",
    "last_success",
    "stale_from",
    "read_at",
)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, KbWatch | Schedule):
        return {name: _plain(getattr(value, name)) for name in value.__slots__}
    return value


@dataclass(frozen=True, slots=True)
class ScheduleRules:
    """How schedules and freshness are judged: `grace` after a scheduled run, the windows."""

    grace: timedelta = DEFAULT_GRACE
    freshness: Freshness = field(default_factory=Freshness)


def read_schedule(
    watch: KbWatch, schedule: Schedule | None, now: Instant, kb_name: str | None = None
) -> tuple[KbWatch, tuple[Transition, ...]]:
    """Fold one read of the KB's schedule (None: it has none) into `watch`."""
    was_on = watch.schedule is not None and watch.schedule.active
    is_on = schedule is not None and schedule.active
    after = replace(watch, schedule=schedule, read_at=whole(now.api))
    if is_on and schedule is not None and schedule.next_run_at is not None:
        run = schedule.next_run_at
        waiting = watch.due_run is not None
        if not waiting and (watch.settled_run is None or run > watch.settled_run):
            after = replace(after, due_run=run)
    if not is_on:
        after = replace(after, due_run=None)
    if was_on and not is_on:
        changed = schedule.deleted_at or schedule.updated_at if schedule is not None else None
        when = whole(changed or now.api)
        text = (
            "Its indexing schedule was turned off: it will not be indexed automatically any more."
        )
        if schedule is not None and schedule.deleted_at is not None:
            text = "Its indexing schedule was deleted: it will not be indexed automatically."
        event = _event(EventKind.SCHEDULE_DISABLED, watch.kb_uuid, kb_name, when, now, text)
        return after, (event,)
    return after, ()


def judge(
    watch: KbWatch,
    jobs: Iterable[Job],
    now: Instant,
    rules: ScheduleRules,
    kb_name: str | None = None,
) -> tuple[KbWatch, tuple[Transition, ...]]:
    """One cycle's judgement of a KB: what its jobs (those seen this cycle) tell, the run
    waited for, and freshness. Returns the new watch and its transitions."""
    watch = _seen(watch, jobs)
    watch, missed = _judge_run(watch, now, rules.grace, kb_name)
    watch, freshness = _judge_freshness(watch, now, rules.freshness, kb_name)
    return watch, missed + freshness


def quiet_until(watch: KbWatch, rules: ScheduleRules) -> datetime | None:
    """For a watch `judge` just left unchanged: the API moment up to which judging it again
    with the same jobs leaves it unchanged too (the run waited for, plus its grace; the
    freshness window's end); None when no moment ever changes it (only a new job would)."""
    ends = []
    if watch.due_run is not None:
        ends.append(watch.due_run + rules.grace)
    if watch.stale_from is None:
        window = rules.freshness.window(watch.kb_uuid, watch.schedule)
        if window is not None:
            ends.append((watch.last_success or watch.since) + window)
    return min(ends) if ends else None


def _seen(watch: KbWatch, jobs: Iterable[Job]) -> KbWatch:
    created, success = watch.last_created, watch.last_success
    for job in jobs:
        if job.created_at is not None and (created is None or job.created_at > created):
            created = job.created_at
        end = job.finished_at or job.updated_at
        if job.outcome in _FRESH_OUTCOMES and end is not None:
            success = end if success is None or end > success else success
    if created == watch.last_created and success == watch.last_success:
        return watch  # the usual idle cycle: nothing to copy
    return replace(watch, last_created=created, last_success=success)


def _judge_run(
    watch: KbWatch, now: Instant, grace: timedelta, kb_name: str | None
) -> tuple[KbWatch, tuple[Transition, ...]]:
    run = watch.due_run
    if run is None:
        return watch, ()
    kept = watch.last_created is not None and watch.last_created >= run - EARLY
    if not kept and now.api <= run + grace:
        return watch, ()
    settled = replace(watch, settled_run=run, due_run=_next_run(watch.schedule, run))
    if kept:
        return settled, ()
    text = (
        f"The run scheduled for {run.isoformat(timespec='minutes')} (DigitalOcean's time) "
        f"started no indexing job within {_span(grace)}."
    )
    event = _event(EventKind.SCHEDULE_MISSED, watch.kb_uuid, kb_name, run, now, text)
    return settled, (event,)


def _next_run(schedule: Schedule | None, settled: datetime) -> datetime | None:
    """The next run to wait for once `settled` is judged: the last read's, if later."""
    if schedule is None or not schedule.active or schedule.next_run_at is None:
        return None
    return schedule.next_run_at if schedule.next_run_at > settled else None


def _judge_freshness(
    watch: KbWatch, now: Instant, freshness: Freshness, kb_name: str | None
) -> tuple[KbWatch, tuple[Transition, ...]]:
    window = freshness.window(watch.kb_uuid, watch.schedule)
    since = watch.last_success or watch.since
    if watch.stale_from is not None:
        if watch.last_success is not None and watch.last_success > watch.stale_from:
            text = f"A completed or no_changes job finished at {_iso(watch.last_success)}."
            event = _event(EventKind.FRESH, watch.kb_uuid, kb_name, watch.stale_from, now, text)
            return replace(watch, stale_from=None), (event,)
        if window is None:  # no longer judged (the schedule went, the config changed)
            return replace(watch, stale_from=None), ()
        return watch, ()
    if window is None or now.api - since <= window:
        return watch, ()
    if watch.last_success is None:
        what = f"since the watcher began watching it ({_iso(since)})"
    else:
        what = f"since {_iso(since)}, {_span(now.api - since)} ago"
    text = (
        f"No completed or no_changes indexing job finished {what}; "
        f"it should be fresh within {_span(window)}."
    )
    event = _event(EventKind.STALE, watch.kb_uuid, kb_name, since, now, text)
    return replace(watch, stale_from=since), (event,)


def _span(delta: timedelta) -> str:
    """A duration for people, to the minute: `26 h`, `30 min`, `1 h 5 min`."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes or not hours else []
    return " ".join(parts)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def whole(moment: datetime) -> datetime:
    """`moment` to the whole second (event ids name API times at its resolution)."""
    return moment.replace(microsecond=0)


def _event(
    kind: EventKind,
    kb_uuid: str,
    kb_name: str | None,
    about: datetime,
    now: Instant,
    detail: str,
) -> Transition:
    """An event about a KB; its id names the moment it is about, so it is recorded once."""
    return Transition(
        event_id=f"kb/{kb_uuid}/{kind.value}/{about.isoformat()}",
        kind=kind,
        at=now.wall,
        kb_uuid=kb_uuid,
        kb_name=kb_name,
        detail=detail,
        api_at=now.api,
    )

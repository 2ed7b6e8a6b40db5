"""The simulator: a world on a clock, a timeline, faults, a rate limiter and a request log.

`Simulator` is what tests hold. It is safe to use from a test thread while a server thread
answers requests: every state change and every read goes through one lock.

The API keeps its own clock, as DigitalOcean does: `now()` is the reference time of `clock`
plus `api_clock_offset` (seconds, ahead or behind), and everything the API says is on it:
every timestamp (whole seconds), every `Date` header, the timeline (`t0` is `now()` at
start). A test that runs the watcher on the reference clock (`clock.now()`) thus watches an
API whose clock is off by the offset.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from starlette.types import ASGIApp

from watcher.simulator.app import build_app
from watcher.simulator.backend import ServedRequest
from watcher.simulator.clock import Clock, ManualClock, RealClock
from watcher.simulator.faults import Fault, FaultBoard
from watcher.simulator.ratelimit import RateLimiter
from watcher.simulator.scenario import (
    CancelJob,
    ClearFaults,
    DeleteKb,
    DisableSchedule,
    Event,
    HideJob,
    InjectFault,
    Scenario,
    StartJob,
)
from watcher.simulator.world import KbBusy, NotCancellable, World

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """A lifecycle moment of a job: when it happened in simulated time and in wall time."""

    job_uuid: str
    kb_uuid: str
    kind: str
    at: datetime
    wall: float | None


@dataclass(frozen=True, slots=True)
class SkippedAction:
    """A timeline action that did not apply (a start on a busy KB, a cancel of a finished job)."""

    at: datetime
    action: str
    reason: str


class Simulator:
    """The simulated DigitalOcean GenAI API for one scenario, one token and one clock."""

    def __init__(
        self,
        scenario: Scenario,
        token: str = "sim-token",
        clock: Clock | None = None,
        *,
        per_hour: int = 5000,
        per_minute: int = 250,
        api_clock_offset: float = 0.0,
        scoped_tokens: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.scenario = scenario
        self.token = token
        self.scoped_tokens: Mapping[str, frozenset[str]] = dict(scoped_tokens or {})
        self.clock: Clock = clock if clock is not None else RealClock()
        self.api_clock_offset = timedelta(seconds=api_clock_offset)
        self.lock = threading.RLock()
        self.t0 = self.now()
        self.world = World(scenario, self.t0)
        self.board = FaultBoard()
        self.limiter = RateLimiter(per_hour, per_minute)
        self._timeline = sorted(scenario.timeline, key=lambda e: e.at)
        self._log: list[ServedRequest] = []
        self._skipped: list[SkippedAction] = []
        self._app: ASGIApp | None = None
        self.sync()

    @property
    def app(self) -> ASGIApp:
        """The ASGI application that serves this simulator."""
        if self._app is None:
            self._app = build_app(self)
        return self._app

    def now(self) -> datetime:
        """The API's clock: the reference clock plus `api_clock_offset`."""
        return self.clock.now() + self.api_clock_offset

    def sync(self) -> datetime:
        """Apply every timeline event that is due; return the current simulated time."""
        with self.lock:
            now = self.now()
            while self._timeline and self.t0 + timedelta(seconds=self._timeline[0].at) <= now:
                event = self._timeline.pop(0)
                self._apply(event, self.t0 + timedelta(seconds=event.at))
            return now

    def _apply(self, event: Event, at: datetime) -> None:
        match event.action:
            case StartJob(job=job):
                try:
                    self.world.start_job(job, at)
                except KbBusy as exc:
                    self._skipped.append(
                        SkippedAction(at, f"start_job {job.id or job.kb}", str(exc))
                    )
            case CancelJob(job_id=job_id):
                try:
                    self.world.cancel(self.world.job_keys[job_id], at)
                except (NotCancellable, LookupError) as exc:
                    self._skipped.append(SkippedAction(at, f"cancel_job {job_id}", str(exc)))
            case InjectFault(fault=fault, duration=duration):
                expires = None if duration is None else at + timedelta(seconds=duration)
                self.board.add(fault, expires)
            case ClearFaults():
                self.board.clear()
            case HideJob(job_id=job_id, duration=duration):
                until = None if duration is None else at + timedelta(seconds=duration)
                if job_id in self.world.job_keys:
                    self.world.hide_job(self.world.job_keys[job_id], at, until)
                else:
                    self._skipped.append(SkippedAction(at, f"hide_job {job_id}", "not started"))
            case DeleteKb(kb=key):
                self.world.delete_kb(key, at)
            case DisableSchedule(kb=key):
                self.world.disable_schedule(key, at)

    def advance(self, seconds: float) -> None:
        """Move a ManualClock forward; lifecycles and the timeline follow."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs a ManualClock; this simulator runs on real time")
        with self.lock:
            self.clock.advance(seconds)
        self.sync()

    def inject(self, fault: Fault, *, for_seconds: float | None = None) -> None:
        """Switch a fault on (for `for_seconds` of simulated time, or until cleared/used up)."""
        with self.lock:
            expires = None if for_seconds is None else self.now() + timedelta(seconds=for_seconds)
            self.board.add(fault, expires)

    def hide_job(self, job_id: str, *, for_seconds: float | None = None) -> None:
        """Make the scenario's job `job_id` vanish from every answer (for a while), from now."""
        with self.lock:
            now = self.sync()
            until = None if for_seconds is None else now + timedelta(seconds=for_seconds)
            self.world.hide_job(self.job_uuid(job_id), now, until)

    def delete_kb(self, key: str) -> None:
        """Delete the scenario's knowledge base `key` now: it and its jobs answer 404 from now."""
        with self.lock:
            self.world.delete_kb(key, self.sync())

    def disable_schedule(self, key: str) -> None:
        """Turn the schedule of the scenario's knowledge base `key` off now."""
        with self.lock:
            self.world.disable_schedule(key, self.sync())

    def clear_faults(self) -> None:
        with self.lock:
            self.board.clear()

    @property
    def faults(self) -> list[Fault]:
        with self.lock:
            return self.board.active

    def record(self, record: ServedRequest) -> None:
        with self.lock:
            self._log.append(record)

    @property
    def requests(self) -> list[ServedRequest]:
        """Every request received so far, oldest first."""
        with self.lock:
            return list(self._log)

    @property
    def skipped(self) -> list[SkippedAction]:
        with self.lock:
            return list(self._skipped)

    def transitions(self) -> list[TransitionRecord]:
        """Every job lifecycle moment reached so far, with when it became visible."""
        with self.lock:
            now = self.sync()
            return [
                TransitionRecord(
                    m.job_uuid,
                    m.kb_uuid,
                    m.moment.value,
                    m.at,
                    self.clock.wall_of(m.at - self.api_clock_offset),
                )
                for m in self.world.moments(now)
            ]

    def kb_uuid(self, key: str) -> str:
        """The uuid of the scenario's knowledge base `key`."""
        with self.lock:
            return self.world.kb_uuid(key)

    def job_uuid(self, job_id: str) -> str:
        """The uuid of the scenario's job `id` (once it has started)."""
        with self.lock:
            self.sync()
            if job_id not in self.world.job_keys:
                raise KeyError(f"job {job_id!r} is unknown or has not started yet")
            return self.world.job_keys[job_id]

    def read(self, view: Callable[[World, datetime], T]) -> T:
        """Run `view` over the world at the current time, under the lock."""
        with self.lock:
            return view(self.world, self.sync())

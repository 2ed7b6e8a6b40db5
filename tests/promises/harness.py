"""The rig the promise tests break things with: a simulator, the real runtime, real receivers.

`open_rig` serves a scenario on loopback with a `ManualClock`, opens the watcher with
`open_runtime` (a real SQLite file, the real httpx client, real apprise) pointed at it and at
a real webhook receiver, and gives the watcher a clock of its own (the simulator's plus an
offset the test can jump). `alerts_of` reads what the receiver got back into (job, event)
pairs; `lifecycle_alerts` says which of those the scenario's jobs owe.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from structlog.testing import capture_logs

from tests.clocks import elapsed_of
from tests.receivers import ReceivedRequest, WebhookReceiver
from watcher.config import Config
from watcher.core import status_view as status
from watcher.core.model import EventKind
from watcher.core.render import _HEADLINE, RECOVERED_BY_ENDING
from watcher.service.cycle import CycleReport
from watcher.service.runtime import Runtime, open_runtime
from watcher.simulator import ManualClock, Simulator
from watcher.simulator.loading import parse_scenario

# A recognisable fake DigitalOcean token: it must never show up in a log, an error or status.
TOKEN = "dop_v1_" + "5ec7e7" * 10 + "c0de"
_BY_HEADLINE = {headline: kind for kind, headline in _HEADLINE.items()}
_BY_HEADLINE[RECOVERED_BY_ENDING] = EventKind.RECOVERED
_JOB_LINE = re.compile(r"^- Job: `([^`]+)`", re.MULTILINE)
_TERMINAL_MOMENTS = {
    "completed": EventKind.COMPLETED,
    "no_changes": EventKind.NO_CHANGES,
    "partial": EventKind.PARTIAL,
    "failed": EventKind.FAILED,
    "cancelled": EventKind.CANCELLED,
}

Key = tuple[str | None, EventKind]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert a receiver got: which job (None for the API's own events) and which event."""

    job_uuid: str | None
    kind: EventKind
    title: str
    body: str

    @property
    def key(self) -> Key:
        return (self.job_uuid, self.kind)


def parse_alert(title: str, body: str) -> Alert:
    """The (job, event) an alert is about, read from its title and body as rendered."""
    headline = title.rsplit(": ", 1)[-1]
    kind = _BY_HEADLINE.get(headline)
    assert kind is not None, f"not an alert title: {title!r}"
    match = _JOB_LINE.search(body)
    return Alert(match.group(1) if match else None, kind, title, body)


def alerts_of(requests: Iterable[ReceivedRequest], path: str | None = None) -> list[Alert]:
    """The alerts among the receiver's requests (to `path` only, if given), oldest first."""
    found = []
    for request in requests:
        if path is not None and request.path != path:
            continue
        payload = request.json
        found.append(parse_alert(str(payload["title"]), str(payload["message"])))
    return found


def lifecycle_alerts(sim: Simulator, since: datetime) -> Counter[Key]:
    """`started` and the outcome of every job created at or after `since`, once each."""
    expected: Counter[Key] = Counter()
    moments = sim.transitions()
    created = {m.job_uuid: m.at for m in moments if m.kind == "created"}
    for moment in moments:
        if created[moment.job_uuid] < since:
            continue
        if moment.kind == "created":
            expected[(moment.job_uuid, EventKind.STARTED)] += 1
        elif moment.kind in _TERMINAL_MOMENTS:
            expected[(moment.job_uuid, _TERMINAL_MOMENTS[moment.kind])] += 1
    return expected


def job_scenario(
    kbs: Iterable[str], jobs: Iterable[Mapping[str, Any]], name: str = "promises"
) -> dict[str, Any]:
    """A scenario dict: two data sources and three old finished jobs per KB, then `jobs`."""
    return {
        "name": name,
        "knowledge_bases": [
            {
                "key": key,
                "name": f"{key}-kb",
                "data_sources": [{"key": "main", "items": 60}, {"key": "extra", "items": 30}],
                "history": [
                    {"ago": 3 * 86400, "run": 300, "outcome": "failed"},
                    {"ago": 2 * 86400, "run": 300, "outcome": "partial"},
                    {"ago": 86400, "run": 300, "outcome": "completed"},
                ],
            }
            for key in kbs
        ],
        "timeline": [{"at": job.get("at", 10), "start_job": _job(job)} for job in jobs],
    }


def _job(job: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k != "at"}


def rig_config(
    base_url: str,
    state: Path,
    routes: Mapping[str, Iterable[str] | tuple[Iterable[str], Iterable[str]]],
    **sections: Any,
) -> Config:
    """A config for the rig: fast timeouts, no storm grouping, every event to each route."""
    data: dict[str, Any] = {
        "api": {"base_url": base_url, "timeout": "0.5s", "max_requests_per_minute": 250},
        "state": {"path": str(state)},
        "stall": {"no_progress_after": "60s", "pending_after": "120s", "max_runtime": "6h"},
        "delivery": {
            "retry_base": "5s",
            "retry_max": "30s",
            "storm_threshold": 1000,
            "send_interval": "0s",
        },
        "alerts": {"api_unreachable_after": "10m"},
        "routes": [_route(name, spec) for name, spec in routes.items()],
    }
    for section, values in sections.items():
        merge = isinstance(values, Mapping)
        data[section] = {**data.get(section, {}), **values} if merge else values
    data["api"].setdefault("reserve", 0)
    return Config.from_mapping(data, token=TOKEN, token_source="test")


def _route(name: str, spec: Iterable[str] | tuple[Iterable[str], Iterable[str]]) -> dict[str, Any]:
    if isinstance(spec, tuple):
        urls, events = spec
        return {"name": name, "urls": list(urls), "events": list(events)}
    return {"name": name, "urls": list(spec), "events": ["*"]}


async def _no_wait(seconds: float) -> None:
    """The API client's retry sleep in tests: record nothing, wait for nothing."""


@dataclass
class Rig:
    """A running simulator and a watcher runtime on it; the watcher's clock can jump."""

    sim: Simulator
    runtime: Runtime
    receiver: WebhookReceiver
    logs: list[MutableMapping[str, Any]]
    offset: timedelta = timedelta(0)
    reports: list[CycleReport] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        """The watcher's wall clock: the reference time plus any jump the test made (the
        API's clock is the simulator's own, `sim.now()`, off by its `api_clock_offset`)."""
        return self.sim.clock.now() + self.offset

    async def cycle(self) -> CycleReport:
        """One cycle of the real runtime; it must never raise."""
        report = await self.runtime.cycle.run()
        self.reports.append(report)
        return report

    async def run(self, seconds: float, step: float = 5.0) -> None:
        """Advance the simulator `step` seconds at a time, one cycle after each step."""
        steps = round(seconds / step)
        for _ in range(steps):
            self.sim.advance(step)
            await self.cycle()

    def alerts(self, path: str | None = None) -> list[Alert]:
        return alerts_of(self.receiver.requests, path)

    def received(self, path: str | None = None) -> Counter[Key]:
        return Counter(alert.key for alert in self.alerts(path))

    async def status_json(self) -> dict[str, Any]:
        """What `watcher status --json` would print for this store now."""
        return status.as_json(await self.runtime.store.snapshot(self.now()), self.now())


@contextlib.asynccontextmanager
async def open_rig(
    scenario: Mapping[str, Any],
    tmp_path: Path,
    receiver: WebhookReceiver,
    *,
    routes: Mapping[str, Iterable[str] | tuple[Iterable[str], Iterable[str]]] | None = None,
    api_clock_offset: float = 0.0,
    **sections: Any,
) -> AsyncIterator[Rig]:
    """Serve `scenario`, open the watcher on it, yield the rig, close everything.

    The watcher's wall and elapsed clocks follow the simulator's reference clock (a suspend
    is `sim.advance` without a cycle; a wall-clock step is `rig.offset`); the API's clock is
    `api_clock_offset` seconds off it.
    """
    from watcher.simulator import serve

    sim = Simulator(
        parse_scenario(dict(scenario), "promises"),
        token=TOKEN,
        clock=ManualClock(),
        api_clock_offset=api_clock_offset,
    )
    async with serve(sim) as base_url:
        routes = routes or {"ops": [receiver.url_json("/ops")]}
        config = rig_config(base_url, tmp_path / "watcher.db", routes, **sections)
        holder: list[Rig] = []

        def clock() -> datetime:
            return holder[0].now() if holder else sim.clock.now()

        async def sleep(seconds: float) -> None:
            if holder:
                holder[0].waits.append(seconds)

        with capture_logs() as logs:
            runtime = await open_runtime(
                config,
                clock=clock,
                elapsed=lambda: elapsed_of(sim.clock.now()),
                api_sleep=sleep,
            )
            rig = Rig(sim, runtime, receiver, logs)
            holder.append(rig)
            try:
                yield rig
            finally:
                await runtime.close()
        structlog.contextvars.clear_contextvars()

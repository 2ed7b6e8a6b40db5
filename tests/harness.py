"""The one harness for in-process tests of the whole watcher: the simulated API on loopback,
the real runtime (a real SQLite file, the real httpx client, real apprise), real receivers,
and clocks the test drives.

The simulator sits on a `ManualClock`; the watcher's wall and elapsed clocks follow it, so a
test step is "advance the simulated world by N seconds, run one cycle, read what the receivers
got" (`Harness.step`, `Harness.run`). A suspend is `sim.advance` without a cycle; a step of the
watcher's own wall clock is `Harness.offset`; the API's clock is `api_clock_offset` seconds off
the reference (`Simulator.now`).

Two ways in, one harness:
- `open_harness(scenario, tmp_path, receiver)`: a context manager, the runtime open at once,
  every route pointed at `receiver` by default (the promise tests);
- the `make_harness` fixture of `tests/e2e/conftest.py`: several harnesses per test, each
  runtime started by its first cycle, so a test can change the config before it.

Configs start from one of two sets of sections, each for a kind of test: `COUNTING` (every
alert its own message, fast API timeouts: alerts are counted per job) and `REALISTIC` (the
default grouping and API timeout, short retries). Reading alerts back: `Alert` (any channel),
`alerts_of` (a webhook's requests), `Receivers` (a webhook, a Mattermost hook and an SMTP
server), `lifecycle_alerts` (what the scenario's jobs owe).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import structlog
from structlog.testing import capture_logs

from tests.clocks import elapsed_of
from tests.receivers import ReceivedRequest, SmtpReceiver, WebhookReceiver
from watcher.config import Config
from watcher.core import status_view
from watcher.core.model import EventKind
from watcher.service.cycle import CycleReport
from watcher.service.runtime import Runtime, open_runtime
from watcher.simulator import ManualClock, Simulator, serve
from watcher.simulator.loading import parse_scenario

# A recognisable fake DigitalOcean token: it must never show up in a log, an error or status.
TOKEN = "dop_v1_" + "5ec7e7" * 10 + "c0de"

# --- alerts as receivers get them ------------------------------------------------------------

# The headline each event kind carries at the end of an alert's title, written out here (not
# read from `watcher.core.render`) so that a changed title fails the tests that read it.
HEADLINES: dict[EventKind, str] = {
    EventKind.STARTED: "indexing started",
    EventKind.COMPLETED: "indexing completed",
    EventKind.NO_CHANGES: "indexing found no changes",
    EventKind.PARTIAL: "indexing partial (finished with gaps)",
    EventKind.FAILED: "indexing failed",
    EventKind.CANCELLED: "indexing cancelled",
    EventKind.STALLED: "indexing stalled",
    EventKind.RECOVERED: "indexing moving again",
    EventKind.API_UNREACHABLE: "DigitalOcean API unreachable",
    EventKind.API_RECOVERED: "DigitalOcean API reachable again",
    EventKind.DELIVERY_FAILING: "alerts not getting through",
    EventKind.DELIVERY_RECOVERED: "alerts getting through again",
    EventKind.KNOWLEDGE_BASE_MISSING: "knowledge base not found in the account",
    EventKind.KNOWLEDGE_BASE_FOUND: "knowledge base found again",
    EventKind.CORRECTED: "indexing outcome corrected",
    EventKind.DATABASE_UNHEALTHY: "knowledge base database not online",
    EventKind.DATABASE_RECOVERED: "knowledge base database online again",
    EventKind.SILENCE_ENDED: "silence ended, problems still open",
    EventKind.SCHEDULE_MISSED: "scheduled indexing did not run",
    EventKind.SCHEDULE_DISABLED: "scheduled indexing turned off",
    EventKind.STALE: "knowledge base stale (no successful indexing lately)",
    EventKind.FRESH: "knowledge base fresh again",
    EventKind.REMINDER: "incident still open (reminder)",
    EventKind.ESCALATED: "incident not acknowledged (escalated)",
    EventKind.COST_SPIKE: "indexing cost spike",
    EventKind.REMEDIATED: "stalled job remediated",
    EventKind.DIGEST: "indexing digest",
}
# `recovered` of a job that ended, sent alone to a route that did not ask for the outcome.
RECOVERED_BY_ENDING = "indexing finished after a stall"
GROUP = "group"  # the kind of a grouped alert (a storm digest), whose lines each tell one
_BY_HEADLINE = {headline: kind for kind, headline in HEADLINES.items()}
_BY_HEADLINE[RECOVERED_BY_ENDING] = EventKind.RECOVERED
_JOB_LINE = re.compile(r"^- Job: `([^`]+)`", re.MULTILINE)
# A grouped alert's title ends so, with its part when a size limit split it in several.
GROUP_TITLE = re.compile(r"indexing events?(?: \(part \d+ of \d+\))?$")
# A grouped alert's line, as markdown or as the plain text apprise makes of it for e-mail
# (which breaks the line around the code span): "- ❌ middle-kb job `f2b1…`: failed (…)";
# markdown escapes a kind's underscore ("no\_changes")
_GROUP_LINE = re.compile(
    r"^\s*[-•*]\s+\S+\s+(?P<subject>[^\r\n]+?) job\s+\S+\s*: (?P<kind>[a-z_\\]+)\b",
    re.MULTILINE,
)

Key = tuple[str | None, EventKind]  # (job uuid, or None for the API's own events; event)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as a receiver got it, whatever the channel: its title and its body."""

    title: str
    body: str

    @property
    def kind(self) -> EventKind | Literal["group"]:
        """The event the title's headline names (`GROUP` for a grouped alert)."""
        if GROUP_TITLE.search(self.title):
            return GROUP
        kind = _BY_HEADLINE.get(self.title.rsplit(": ", 1)[-1])
        if kind is None:
            raise AssertionError(f"alert title names no known event: {self.title!r}")
        return kind

    @property
    def subject(self) -> str:
        """The KB name (or `gradient-watcher`) the title starts with, after its icon."""
        return self.title.split(" ", 1)[1].rsplit(": ", 1)[0]

    @property
    def job_uuid(self) -> str | None:
        """The job the body names (a markdown body's `- Job:` line), None for none."""
        match = _JOB_LINE.search(self.body)
        return match.group(1) if match else None

    @property
    def key(self) -> Key:
        """(job, event): what the promise tests count."""
        kind = self.kind
        assert kind != GROUP, f"a grouped alert tells several events: {self.title!r}"
        return (self.job_uuid, EventKind(kind))

    def mentions(self, text: str) -> bool:
        return text in self.title or text in self.body

    def events(self) -> list[tuple[str, str]]:
        """(kind, subject) of every event the alert tells: one, or each line of a group."""
        if self.kind != GROUP:
            return [(self.kind, self.subject)]
        lines = _GROUP_LINE.finditer(self.body)
        return [(m["kind"].replace("\\", ""), m["subject"]) for m in lines]


def parse_alert(title: str, body: str) -> Alert:
    """The alert with this title and body; an AssertionError when the title is no alert's."""
    alert = Alert(title, body)
    _ = alert.kind
    return alert


def alerts_of(requests: Iterable[ReceivedRequest], path: str | None = None) -> list[Alert]:
    """The alerts among a JSON webhook's requests (to `path` only, if given), oldest first,
    whatever the webhook answered them."""
    return [
        parse_alert(str(request.json["title"]), str(request.json["message"]))
        for request in requests
        if path is None or request.path == path
    ]


HOOK, MAIL, CHAT = "hook", "mail", "chat"


@dataclass
class Receivers:
    """Three channels: a JSON webhook, a Mattermost hook (its own server), an SMTP server."""

    hook: WebhookReceiver
    chat: WebhookReceiver
    mail: SmtpReceiver

    def urls(self) -> dict[str, str]:
        return {HOOK: self.hook.url_json(), CHAT: self.chat.url_mattermost, MAIL: self.mail.url}

    def alerts(self, channel: str) -> list[Alert]:
        """Everything the channel took so far (answered 200, for the webhooks), oldest first."""
        if channel == HOOK:
            return alerts_of(r for r in self.hook.requests if r.answered == 200)
        if channel == CHAT:
            return [_chat_alert(r.json) for r in self.chat.requests if r.answered == 200]
        if channel == MAIL:
            return [parse_alert(m.subject, m.text) for m in self.mail.mails]
        raise KeyError(channel)

    def kinds(self, channel: str) -> list[EventKind | Literal["group"]]:
        return [alert.kind for alert in self.alerts(channel)]


def _chat_alert(payload: Mapping[str, Any]) -> Alert:
    """apprise's Mattermost payload is `{"text": "title\\r\\nbody"}` (markdown)."""
    title, _, body = str(payload["text"]).partition("\n")
    return parse_alert(title.strip().strip("*").strip(), body)


_TERMINAL_MOMENTS = {
    "completed": EventKind.COMPLETED,
    "no_changes": EventKind.NO_CHANGES,
    "partial": EventKind.PARTIAL,
    "failed": EventKind.FAILED,
    "cancelled": EventKind.CANCELLED,
}


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


# --- scenarios and configs ---------------------------------------------------------------------


def simulator(scenario: Mapping[str, Any], api_clock_offset: float = 0.0) -> Simulator:
    """A simulator on a manual clock for a scenario written inline as its JSON form."""
    return Simulator(
        parse_scenario(dict(scenario), "harness"),
        token=TOKEN,
        clock=ManualClock(),
        api_clock_offset=api_clock_offset,
    )


def job_scenario(
    kbs: Iterable[str], jobs: Iterable[Mapping[str, Any]], name: str = "promises"
) -> dict[str, Any]:
    """A scenario dict: two data sources and three old finished jobs per KB, then `jobs`
    (each started at its `at`, 10 s by default)."""
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
        "timeline": [
            {"at": job.get("at", 10), "start_job": {k: v for k, v in job.items() if k != "at"}}
            for job in jobs
        ],
    }


def route(
    name: str,
    urls: str | Sequence[str],
    events: Sequence[str] = ("*",),
    kbs: Sequence[str] = ("*",),
) -> dict[str, Any]:
    """One `[[routes]]` entry."""
    urls = [urls] if isinstance(urls, str) else list(urls)
    return {"name": name, "urls": urls, "events": list(events), "knowledge_bases": list(kbs)}


# Every alert is its own message (no grouping) and the API answers or fails fast: the promise
# tests count alerts per job, and drive faults that make the API slow.
COUNTING: dict[str, Any] = {
    "api": {"timeout": "0.5s", "max_requests_per_minute": 250, "reserve": 0},
    "stall": {"no_progress_after": "60s", "pending_after": "120s", "max_runtime": "6h"},
    "delivery": {
        "retry_base": "5s",
        "retry_max": "30s",
        "storm_threshold": 1000,
        "send_interval": "0s",
    },
    "alerts": {"api_unreachable_after": "10m"},
}
# The default grouping and API timeout, short retries, no pacing: the end-to-end tests see
# alerts as users get them, in fewer simulated minutes (`test_pacing` measures the pace).
REALISTIC: dict[str, Any] = {
    "api": {"max_requests_per_minute": 250, "reserve": 0},
    "stall": {"no_progress_after": "60s", "pending_after": "120s", "max_runtime": "1h"},
    "delivery": {"retry_base": "2s", "retry_max": "8s", "timeout": "5s", "send_interval": "0s"},
    "alerts": {"api_unreachable_after": "30s"},
}


def merged(base: Mapping[str, Any], sections: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `sections` over it: a table is merged key by key, anything else replaced."""
    data = {
        name: dict(value) if isinstance(value, Mapping) else value for name, value in base.items()
    }
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value} if isinstance(value, Mapping) else value
    return data


def watcher_config(
    base_url: str, state: Path, routes: Sequence[Mapping[str, Any]], sections: Mapping[str, Any]
) -> Config:
    """The config of a watcher on `base_url` with its store at `state`: `sections` over the
    API URL, the state path and the routes."""
    data = merged(
        {"api": {"base_url": base_url}, "state": {"path": str(state)}, "routes": list(routes)},
        sections,
    )
    return Config.from_mapping(data, token=TOKEN, token_source="test")


# --- the harness -------------------------------------------------------------------------------


@dataclass
class Harness:
    """A served simulator, the config of a watcher pointed at it, and that watcher's runtime."""

    sim: Simulator
    state_path: Path
    routes: list[dict[str, Any]]
    overrides: dict[str, Any]  # the config's sections (see `watcher_config`)
    receiver: WebhookReceiver | None = None  # the webhook `alerts` and `received` read
    base_url: str = ""
    runtime: Runtime | None = None
    offset: timedelta = timedelta(0)  # a step of the watcher's wall clock
    logs: list[MutableMapping[str, Any]] = field(default_factory=list)
    reports: list[CycleReport] = field(default_factory=list)
    api_waits: list[float] = field(default_factory=list)  # the API client's waits (s)
    _api_slept: float = 0.0  # their sum: how far the API client's clock ran ahead
    _server: contextlib.AbstractAsyncContextManager[str] | None = None
    _port: int = 0

    def now(self) -> datetime:
        """The watcher's wall clock: the reference time plus any step the test made (the
        API's clock is the simulator's own, `sim.now()`, off by its `api_clock_offset`)."""
        return self.sim.clock.now() + self.offset

    async def serve(self) -> None:
        """Serve the simulator (again on the same port, once it had one)."""
        assert self._server is None, "the simulated API is already served"
        self._server = serve(self.sim, self._port)
        self.base_url = await self._server.__aenter__()
        self._port = int(self.base_url.rsplit(":", 1)[1])

    async def unserve(self) -> None:
        """Stop the simulated API: the watcher now meets a refused connection."""
        if self._server is not None:
            server, self._server = self._server, None
            await server.__aexit__(None, None, None)

    def config(self) -> Config:
        return watcher_config(self.base_url, self.state_path, self.routes, self.overrides)

    async def _api_sleep(self, seconds: float) -> None:
        """The API client's waits (retries, its own rate budget): recorded, free in real
        time, and passed on its clock (`_api_monotonic`): a wait for the budget's sliding
        minute ends at once instead of spinning until a real minute has passed."""
        self.api_waits.append(seconds)
        self._api_slept += max(seconds, 0.0)
        await asyncio.sleep(0)

    def _api_monotonic(self) -> float:
        return time.monotonic() + self._api_slept

    async def start(self) -> Runtime:
        """Build a fresh runtime on the same state file (a process start)."""
        assert self.runtime is None, "the watcher is already running"
        self.runtime = await open_runtime(
            self.config(),
            clock=self.now,
            elapsed=lambda: elapsed_of(self.sim.clock.now()),
            api_sleep=self._api_sleep,
            api_monotonic=self._api_monotonic,
        )
        return self.runtime

    async def stop(self) -> None:
        """Close the runtime (the process exits)."""
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None

    async def restart(self) -> Runtime:
        await self.stop()
        return await self.start()

    async def cycle(self) -> CycleReport:
        """One poll cycle plus delivery of what is due, as `watcher once` runs it (the runtime
        starts first if it is not running); it must never raise."""
        runtime = self.runtime or await self.start()
        report = await runtime.cycle.run()
        self.reports.append(report)
        return report

    async def step(self, seconds: float) -> CycleReport:
        """Let `seconds` of simulated time pass, then run a cycle."""
        self.sim.advance(seconds)
        return await self.cycle()

    async def run(self, seconds: float, every: float = 5.0) -> list[CycleReport]:
        """Poll every `every` simulated seconds for `seconds`."""
        return [await self.step(every) for _ in range(round(seconds / every))]

    def requests_since(self, mark: int) -> list[str]:
        """`METHOD path` of every request the simulator saw after the first `mark` ones."""
        return [f"{r.method} {r.path}" for r in self.sim.requests[mark:]]

    def alerts(self, path: str | None = None) -> list[Alert]:
        """What the webhook `receiver` got (to `path` only, if given), oldest first."""
        assert self.receiver is not None, "this harness was given no webhook receiver"
        return alerts_of(self.receiver.requests, path)

    def received(self, path: str | None = None) -> Counter[Key]:
        return Counter(alert.key for alert in self.alerts(path))

    async def status_json(self) -> dict[str, Any]:
        """What `watcher status --json` would print for this store now."""
        assert self.runtime is not None, "the watcher is not running"
        snapshot = await self.runtime.store.snapshot(self.now())
        return status_view.as_json(snapshot, self.now())


@contextlib.asynccontextmanager
async def open_harness(
    scenario: Mapping[str, Any] | Simulator,
    tmp_path: Path,
    receiver: WebhookReceiver | None = None,
    *,
    routes: Sequence[Mapping[str, Any]] | None = None,
    api_clock_offset: float = 0.0,
    base: Mapping[str, Any] = COUNTING,
    start: bool = True,
    **sections: Any,
) -> AsyncIterator[Harness]:
    """Serve `scenario` (a simulator, or a scenario's JSON form), make a harness of a watcher
    on it (the runtime opened unless `start` is false), yield it, close everything.

    The config is `base` with `sections` over it; `routes` default to one route `ops` hearing
    every event at `receiver`'s `/ops`. Logs are captured in `Harness.logs` meanwhile.
    """
    sim = (
        scenario
        if isinstance(scenario, Simulator)
        else simulator(scenario, api_clock_offset=api_clock_offset)
    )
    if routes is None:
        assert receiver is not None, "give the routes, or a receiver for the default one"
        routes = [route("ops", receiver.url_json("/ops"))]
    harness = Harness(
        sim,
        tmp_path / "watcher.db",
        [dict(r) for r in routes],
        merged(base, sections),
        receiver,
    )
    with capture_logs() as logs:
        harness.logs = logs
        try:
            await harness.serve()
            if start:
                await harness.start()
            yield harness
        finally:
            await harness.stop()
            await harness.unserve()
    structlog.contextvars.clear_contextvars()

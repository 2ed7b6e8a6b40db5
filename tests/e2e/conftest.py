"""The end-to-end harness: the simulated API on loopback, the real runtime, real receivers.

Everything runs in the test's event loop and is driven by hand: the simulator sits on a
`ManualClock`, the watcher reads that same clock, so a test step is "advance the simulated
world by N seconds, run one cycle, read what the receivers got". Deliveries are real:
apprise posts to an HTTP webhook (`json://`), a Mattermost-style hook (`mmost://`, the
Slack-compatible shape) and an aiosmtpd server (`mailto://`), all on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.clocks import elapsed_of
from tests.receivers import SmtpReceiver, WebhookReceiver
from watcher.config import Config
from watcher.service.cycle import CycleReport
from watcher.service.runtime import Runtime, open_runtime
from watcher.simulator import ManualClock, Simulator, serve
from watcher.simulator.loading import parse_scenario

TOKEN = "dop_v1_" + "e2e0" * 16
HOOK, MAIL, CHAT = "hook", "mail", "chat"

# The headline each event kind carries in an alert title (see `watcher.core.render`).
HEADLINES = {
    "started": "indexing started",
    "completed": "indexing completed",
    "no_changes": "indexing found no changes",
    "partial": "indexing partial (finished with gaps)",
    "failed": "indexing failed",
    "cancelled": "indexing cancelled",
    "stalled": "indexing stalled",
    "recovered": "indexing moving again",
    "api_unreachable": "DigitalOcean API unreachable",
    "api_recovered": "DigitalOcean API reachable again",
    "knowledge_base_missing": "knowledge base not found in the account",
    "knowledge_base_found": "knowledge base found again",
}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as a receiver got it, whatever the channel."""

    title: str
    body: str

    @property
    def kind(self) -> str:
        """The event kind named by the title's headline ("group" for a storm digest)."""
        if self.title.endswith("indexing events"):
            return "group"
        if self.title.endswith(": indexing finished after a stall"):
            return "recovered"  # `recovered` of a job that ended, to a route without its outcome
        for kind, headline in HEADLINES.items():
            if self.title.endswith(f": {headline}"):
                return kind
        raise AssertionError(f"alert title names no known event: {self.title!r}")

    @property
    def subject(self) -> str:
        """The KB name (or `gradient-watcher`) the title starts with."""
        return self.title.split(" ", 1)[1].rsplit(": ", 1)[0]

    def mentions(self, text: str) -> bool:
        return text in self.title or text in self.body

    def events(self) -> list[tuple[str, str]]:
        """(kind, subject) of every event the alert tells: one, or each line of a group."""
        if self.kind != "group":
            return [(self.kind, self.subject)]
        return [(m["kind"], m["subject"]) for m in _GROUP_LINE.finditer(self.body)]


# A grouped alert's line, as markdown or as the plain text apprise makes of it for e-mail
# (which breaks the line around the code span): "- ❌ middle-kb job `f2b1…`: failed (…)"
_GROUP_LINE = re.compile(
    r"^\s*[-•*]\s+\S+\s+(?P<subject>[^\r\n]+?) job\s+\S+\s*: (?P<kind>[a-z_]+)\b",
    re.MULTILINE,
)


@dataclass
class Receivers:
    """The three channels: a JSON webhook, a Mattermost hook (own server), an SMTP server."""

    hook: WebhookReceiver
    chat: WebhookReceiver
    mail: SmtpReceiver

    def urls(self) -> dict[str, str]:
        return {HOOK: self.hook.url_json(), CHAT: self.chat.url_mattermost, MAIL: self.mail.url}

    def alerts(self, route: str) -> list[Alert]:
        """Everything the route's receiver took so far, oldest first."""
        if route == HOOK:
            return [_json_alert(r.json) for r in self.hook.requests if r.answered == 200]
        if route == CHAT:
            return [_chat_alert(r.json) for r in self.chat.requests if r.answered == 200]
        if route == MAIL:
            return [Alert(m.subject, m.text) for m in self.mail.mails]
        raise KeyError(route)

    def kinds(self, route: str) -> list[str]:
        return [alert.kind for alert in self.alerts(route)]


def _json_alert(payload: Mapping[str, Any]) -> Alert:
    return Alert(str(payload["title"]), str(payload["message"]))


def _chat_alert(payload: Mapping[str, Any]) -> Alert:
    """apprise's Mattermost payload is `{"text": "title\\r\\nbody"}` (markdown)."""
    text = str(payload["text"])
    title, _, body = text.partition("\n")
    return Alert(title.strip().strip("*").strip(), body)


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    hook, chat, mail = WebhookReceiver().start(), WebhookReceiver().start(), SmtpReceiver().start()
    try:
        yield Receivers(hook, chat, mail)
    finally:
        hook.stop()
        chat.stop()
        mail.stop()


def route(
    name: str, url: str, events: Sequence[str], kbs: Sequence[str] = ("*",)
) -> dict[str, Any]:
    return {"name": name, "urls": [url], "events": list(events), "knowledge_bases": list(kbs)}


@dataclass
class Harness:
    """A served simulator, the config of a watcher pointed at it, and that watcher's runtime."""

    sim: Simulator
    base_url: str
    state_path: Path
    routes: list[dict[str, Any]]
    overrides: dict[str, Any] = field(default_factory=dict)
    runtime: Runtime | None = None
    api_waits: list[float] = field(default_factory=list)
    reports: list[CycleReport] = field(default_factory=list)
    _server: contextlib.AbstractAsyncContextManager[str] | None = None
    _port: int = 0

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
        data: dict[str, Any] = {
            "api": {"base_url": self.base_url, "max_requests_per_minute": 250, "reserve": 0},
            "state": {"path": str(self.state_path)},
            "stall": {"no_progress_after": "60s", "pending_after": "120s", "max_runtime": "1h"},
            # No pacing: these tests count alerts, `test_pacing` measures the pace.
            "delivery": {
                "retry_base": "2s",
                "retry_max": "8s",
                "timeout": "5s",
                "send_interval": "0s",
            },
            "alerts": {"api_unreachable_after": "30s"},
            "routes": self.routes,
        }
        for section, values in self.overrides.items():
            merged = {**data.get(section, {}), **values} if isinstance(values, dict) else values
            data[section] = merged  # a table is merged, a table array replaced
        return Config.from_mapping(data, token=TOKEN, token_source="test")

    async def _api_sleep(self, seconds: float) -> None:
        """The API client's retry waits: recorded, and nearly free in real time."""
        self.api_waits.append(seconds)
        await asyncio.sleep(min(seconds, 0.01))

    async def start(self) -> Runtime:
        """Build a fresh runtime on the same state file (a process start)."""
        assert self.runtime is None, "the watcher is already running"
        self.runtime = await open_runtime(
            self.config(),
            clock=self.sim.clock.now,
            elapsed=lambda: elapsed_of(self.sim.clock.now()),
            api_sleep=self._api_sleep,
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
        """One poll cycle plus delivery of what is due, as `watcher once` runs it."""
        runtime = self.runtime or await self.start()
        report = await runtime.cycle.run()
        self.reports.append(report)
        return report

    async def step(self, seconds: float) -> CycleReport:
        """Let `seconds` of simulated time pass, then run a cycle."""
        self.sim.advance(seconds)
        return await self.cycle()

    async def run_for(self, seconds: float, every: float) -> list[CycleReport]:
        """Poll every `every` simulated seconds for `seconds`."""
        steps = round(seconds / every)
        return [await self.step(every) for _ in range(steps)]

    def requests_since(self, mark: int) -> list[str]:
        """`METHOD path` of every request the simulator saw after the first `mark` ones."""
        return [f"{r.method} {r.path}" for r in self.sim.requests[mark:]]


def scenario(data: Mapping[str, Any]) -> Simulator:
    """A simulator on a manual clock for a scenario written inline as its JSON form."""
    return Simulator(parse_scenario(dict(data), "e2e"), token=TOKEN, clock=ManualClock())


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """Make harnesses; every runtime closed and every simulator stopped when the test ends."""
    made: list[Harness] = []

    async def make(sim: Simulator, routes: list[dict[str, Any]], **overrides: Any) -> Harness:
        harness = Harness(sim, "", tmp_path / "watcher.db", routes, dict(overrides))
        made.append(harness)
        await harness.serve()
        return harness

    try:
        yield make
    finally:
        for harness in reversed(made):
            await harness.stop()
            await harness.unserve()

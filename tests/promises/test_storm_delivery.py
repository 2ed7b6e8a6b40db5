"""A storm reaches every receiver by name: 80 jobs on 80 knowledge bases finish in the same
poll, and each route hears every outcome, named (job and kind) exactly once, in messages
that each fit the service's size limit, split into `part k of N` (worst first) where one
message cannot name them all. The same for what quiet hours held, released in parts.

Delivered through apprise's real plugins to loopback receivers: one that behaves like
Discord (2,000 characters of `content`, title included; a longer one refused with 400, as
Discord does), and a Mattermost hook (apprise gives it 4,000) beside a plain JSON webhook on
the same route (so the parts fit the smaller of the two). Before the split, the storm's one
message named the worst ~9 events and ended `… and 71 more events`: those jobs reached
nobody by name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apprise.plugins.discord import NotifyDiscord

from tests.harness import (
    GROUP,
    REALISTIC,
    Harness,
    job_scenario,
    lifecycle_alerts,
    open_harness,
    parse_alert,
    route,
)
from tests.receivers import ReceivedRequest, WebhookReceiver
from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryState

JOBS = 80
FAILED, PARTIAL = "k000", ("k001", "k002")  # the worst, which part 1 must name
OUTCOMES = ("completed", "no_changes", "partial", "failed")
DISCORD_LIMIT = 2000  # Discord's documented limit on `content`, title and body together
MATTERMOST_LIMIT = 4000  # apprise's body_maxlen for Mattermost
# The extra reads (each KB's data sources, schedule, database) run as in production: the
# harness's API client waits for its own budget on a clock its waits move.
SECTIONS: dict[str, Any] = {"delivery": {"storm_threshold": 5}}


def storm_scenario() -> dict[str, Any]:
    """80 KBs, one job each: started at 10 s, all ended by 71 s (one poll sees them end)."""
    kbs = [f"k{n:03d}" for n in range(JOBS)]
    jobs = []
    for n, kb in enumerate(kbs):
        outcome = "failed" if kb == FAILED else "partial" if kb in PARTIAL else OUTCOMES[n % 2]
        jobs.append({"kb": kb, "id": f"{kb}-job", "pending": 1, "run": 60, "outcome": outcome})
    return job_scenario(kbs, jobs, name="storm")


@pytest.fixture
def discord() -> Iterator[WebhookReceiver]:
    """A receiver at apprise's Discord plugin, refusing (400) a `content` over 2,000."""
    receiver = WebhookReceiver().start()
    receiver.limit("content", DISCORD_LIMIT)
    original = NotifyDiscord.notify_url
    NotifyDiscord.notify_url = receiver.discord_base
    try:
        yield receiver
    finally:
        NotifyDiscord.notify_url = original
        receiver.stop()


@pytest.fixture
def chat() -> Iterator[WebhookReceiver]:
    """A Mattermost hook (`/hooks/<token>`) and a JSON webhook (`/alerts`) on one server."""
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


# --- what the receivers got -------------------------------------------------------------------

_PART = re.compile(r"\(part (\d+) of (\d+)\)$")
_COUNT = re.compile(r"(\d+) indexing events?\b")
# "- ❌ k000-kb job `uuid`: failed (…)": a grouped alert's line, markdown ("no\_changes")
_LINE = re.compile(r"^\s*[-•*]\s+(\S+)\s.*? job `([0-9a-f-]{36})`: ([a-z\\_]+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Got:
    """One message a receiver took: its title and body, as the service shows them."""

    title: str
    body: str
    size: int  # the characters the service counts against its limit

    @property
    def part(self) -> tuple[int, int] | None:
        """(k, N) of a `part k of N` title, None for a message in one piece."""
        match = _PART.search(self.title)
        return (int(match[1]), int(match[2])) if match else None

    @property
    def events(self) -> list[tuple[str, EventKind]]:
        """(job uuid, kind) of every line the message names."""
        return [(m[2], EventKind(m[3].replace("\\", ""))) for m in _LINE.finditer(self.body)]

    @property
    def icons(self) -> list[str]:
        return [m[1] for m in _LINE.finditer(self.body)]

    @property
    def count(self) -> int:
        """The event count the title states."""
        match = _COUNT.search(self.title)
        assert match, self.title
        return int(match[1])


def discord_messages(requests: Sequence[ReceivedRequest]) -> list[Got]:
    """Discord's `content` is the title, CR LF, then the body: 2,000 characters for both."""
    found = []
    for request in requests:
        content = str(request.json["content"])
        title, _, body = content.partition("\r\n")
        found.append(Got(title.strip(), body, len(content)))
    return found


def mattermost_messages(requests: Sequence[ReceivedRequest]) -> list[Got]:
    """Mattermost's `text` is the title (escaped for markdown), CR LF, then the body."""
    found = []
    for request in requests:
        text = str(request.json["text"])
        title, _, body = text.partition("\r\n")
        found.append(Got(title.strip().replace("\\", ""), body, len(text)))
    return found


def json_messages(requests: Sequence[ReceivedRequest]) -> list[Got]:
    return [
        Got(str(r.json["title"]), str(r.json["message"]), len(str(r.json["message"])))
        for r in requests
    ]


def to(receiver: WebhookReceiver, path: str) -> list[ReceivedRequest]:
    return [r for r in receiver.requests if r.path == path]


def assert_every_event_named_once_in_parts(
    got: Sequence[Got], owed: Counter[tuple[str, EventKind]], limit: int, label: str
) -> int:
    """`got` (one grouped alert, in order) names each owed (job, kind) exactly once, each
    message within `limit`, its parts labelled 1..N in order, worst first; returns N."""
    named = Counter(event for message in got for event in message.events)
    missing, extra = owed - named, named - owed
    assert not missing and not extra, (
        f"{label}: {sum(missing.values())} events never named, {sum(extra.values())} named "
        f"more than once or not owed, e.g. {sorted(missing)[:3]} {sorted(extra)[:3]}"
    )
    assert max(m.size for m in got) <= limit, f"{label}: {[m.size for m in got]}"
    assert all("more events" not in m.body and "more lines" not in m.body for m in got), label
    for message in got:
        assert message.count == len(message.events), (label, message.title)
    parts = [m.part for m in got]
    n = len(got)
    assert parts == [(k, n) for k in range(1, n + 1)], f"{label}: {parts}"
    icons = [icon for m in got for icon in m.icons]
    order = {"❌": 0, "⚠️": 1, "✅": 2, "ℹ️": 3}
    ranks = [order[icon] for icon in icons]
    assert ranks == sorted(ranks), f"{label}: not worst first across parts: {icons}"
    return n


async def finish_delivery(h: Harness) -> None:
    assert h.runtime is not None
    await h.runtime.cycle.dispatcher.drain()


async def outbox_states(h: Harness) -> dict[DeliveryState, int]:
    assert h.runtime is not None
    snapshot = await h.runtime.store.snapshot(h.now())
    return {state: n for state, n in snapshot.outbox_by_state.items() if n}


def outcomes_of(h: Harness, since: datetime) -> Counter[tuple[str, EventKind]]:
    owed = lifecycle_alerts(h.sim, since)
    return Counter({key: n for key, n in owed.items() if key[1] is not EventKind.STARTED})


def job_of(h: Harness, kb: str) -> str:
    return h.sim.job_uuid(f"{kb}-job")


# --- the storm ----------------------------------------------------------------------------------


async def test_a_storm_reaches_discord_and_mattermost_in_parts_that_name_every_job_once(
    tmp_path: Path, discord: WebhookReceiver, chat: WebhookReceiver
) -> None:
    routes = [
        route("discord", discord.url_discord, OUTCOMES),
        route("chat", [chat.url_mattermost, chat.url_json("/alerts")], OUTCOMES),
    ]
    async with open_harness(
        storm_scenario(), tmp_path, routes=routes, base=REALISTIC, **SECTIONS
    ) as h:
        since = h.now()
        await h.cycle()
        await h.step(60)  # t = 60: every job is running, none has ended
        await finish_delivery(h)
        assert discord.requests == [] and chat.requests == []
        await h.step(60)  # t = 120: all 80 ended since the last poll: the storm
        await finish_delivery(h)
        owed = outcomes_of(h, since)
        assert len(owed) == JOBS and {kind for _, kind in owed} == {
            EventKind(kind) for kind in OUTCOMES
        }
        await h.run(120, every=60)  # nothing more comes, nothing is sent twice
        await finish_delivery(h)

        assert all(r.answered == 200 for r in discord.requests), "Discord refused a message"
        assert all(r.answered == 200 for r in chat.requests)
        parts = {
            "discord": discord_messages(discord.requests),
            "mattermost": mattermost_messages(to(chat, f"/hooks/{chat.mattermost_token}")),
            "json": json_messages(to(chat, "/alerts")),
        }
        limits = {"discord": DISCORD_LIMIT, "mattermost": MATTERMOST_LIMIT, "json": 32768}
        counts = {
            name: assert_every_event_named_once_in_parts(got, owed, limits[name], name)
            for name, got in parts.items()
        }
        assert counts["discord"] > counts["mattermost"] > 1  # 2,000 takes more parts than 4,000
        # the JSON URL shares its route with Mattermost: the same parts, the same events each
        assert [m.events for m in parts["json"]] == [m.events for m in parts["mattermost"]]
        for message in parts["json"]:  # the harness reads a part as a grouped alert
            alert = parse_alert(message.title, message.body)
            assert alert.kind == GROUP and len(alert.events()) == message.count
        for got in parts.values():
            first = got[0]
            assert first.title.startswith("❌ ")  # the failure leads part 1
            assert (job_of(h, FAILED), EventKind.FAILED) in first.events
            assert {(job_of(h, kb), EventKind.PARTIAL) for kb in PARTIAL} <= set(first.events)
        assert await outbox_states(h) == {DeliveryState.SENT: 2 * JOBS}


# --- quiet hours ----------------------------------------------------------------------------


def maintenance(start: datetime, minutes: int) -> dict[str, Any]:
    """A `[[time_intervals]]` entry holding `minutes` from `start` (UTC, whole minutes)."""
    end = start + timedelta(minutes=minutes)
    times = [{"start_time": f"{start:%H:%M}", "end_time": f"{end:%H:%M}"}]
    return {"name": "maintenance", "time_intervals": [{"times": times, "location": "UTC"}]}


async def test_what_quiet_hours_held_is_released_in_parts_that_tell_each_job_once(
    tmp_path: Path, discord: WebhookReceiver
) -> None:
    """The route hears every event, `started` too: held, each job's `started` is told by its
    outcome's line (one line per job), whichever part that line lands in."""
    quiet = route("quiet", discord.url_discord)
    quiet["mute_during"] = ["maintenance"]
    async with open_harness(
        storm_scenario(), tmp_path, routes=[quiet], base=REALISTIC, start=False, **SECTIONS
    ) as h:
        h.overrides["time_intervals"] = [maintenance(h.now().replace(second=0), 10)]
        await h.start()
        since = h.now()
        await h.cycle()
        for _ in range(14):  # every job starts and ends within the window, then it ends
            await h.step(60)
            await finish_delivery(h)
        owed = outcomes_of(h, since)
        assert len(owed) == JOBS

        assert all(r.answered == 200 for r in discord.requests), "Discord refused a message"
        got = discord_messages(discord.requests)
        assert got, "nothing was released"
        assert all("Quiet hours maintenance over: " in m.title for m in got)
        assert got[0].title.startswith("❌ ")
        n = assert_every_event_named_once_in_parts(got, owed, DISCORD_LIMIT, "released")
        assert n > 1
        assert (job_of(h, FAILED), EventKind.FAILED) in got[0].events
        assert all("held during quiet hours maintenance" in m.body for m in got)
        # every row settled: the `started` rows with the outcomes that told them
        assert await outbox_states(h) == {DeliveryState.SENT: 2 * JOBS}

"""Receivers that behave like the services, outages of several lengths: what got through.

One case = one receiver behaviour for one outage length. Twelve jobs on three knowledge bases
start and finish over eight polls; the receiver misbehaves from the first poll for the
outage's length (simulated time, the watcher's retries on the same clock), then behaves;
the rig polls on until every row is settled. Dead letters are sent again with `watcher
retry --all` (the store call behind it) once the receiver is back. Then the receiver's log
is compared with what the jobs owe: alerts expected (a `started` and an outcome per job),
delivered (each at least once), duplicated (extra copies) and lost.

Slow and trickling answers take real time (the deadline is real): those cases use short
outages, and the rig lets a send in flight end before the simulated clock moves on (in real
life a poll interval passes meanwhile, never the 5-minute claim lease).
`bench/delivery_run.py` runs the whole table; `test_receiver_behaviours.py` a short version.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apprise.plugins.discord import NotifyDiscord

from tests.harness import GROUP_TITLE, Harness, lifecycle_alerts, open_harness, route
from tests.receivers import SmtpReceiver, WebhookReceiver
from watcher.core.model import EventKind
from watcher.core.render import _HEADLINE, RECOVERED_BY_ENDING

_KINDS = {headline: kind for kind, headline in _HEADLINE.items()}
_KINDS[RECOVERED_BY_ENDING] = EventKind.RECOVERED
_JOB = re.compile(r"Job:\s*`?([0-9a-f-]{36})")
_GROUP = re.compile(r"job\s+`?([0-9a-f-]{36})`?\s*:\s*([a-z_\\]+)")  # markdown: no\_changes
BEHAVIOURS = ("refused", "http 500", "slow 6 s", "trickle", "discord 2,000", "smtp 535")
PASSWORD = "app-passw0rd-right"


@dataclass(frozen=True, slots=True)
class Case:
    """A receiver behaviour during an outage of `outage` simulated seconds."""

    behaviour: str
    outage: float

    @property
    def label(self) -> str:
        return f"{self.behaviour} / {_span(self.outage)}"


@dataclass(frozen=True, slots=True)
class Figures:
    """What one case showed."""

    case: Case
    expected: int
    delivered: int
    duplicated: int
    lost: int
    messages: int
    dead_retried: int
    seconds: float


def job_specs(partial: bool) -> list[dict[str, Any]]:
    """Twelve jobs over eight 10-second polls; `partial`: each ends partial with 24 sources
    of ~200-character errors (a 6,600-character alert)."""
    jobs = []
    for n in range(12):
        spec: dict[str, Any] = {"at": 10 + 6 * n, "kb": f"kb{n % 3}", "id": f"j{n}", "run": 12}
        if partial:
            spec |= {
                "outcome": "partial",
                "error_msg": "file_parse_error",
                "error_details": "corrupt or unsupported attachment, see the crawl log " * 4,
            }
        jobs.append(spec)
    return jobs


def scenario(partial: bool) -> dict[str, Any]:
    sources = 24 if partial else 2
    return {
        "name": "receivers",
        "knowledge_bases": [
            {
                "key": f"kb{k}",
                "name": f"kb{k}-docs",
                "data_sources": [{"key": f"s{i}", "items": 10} for i in range(sources)],
            }
            for k in range(3)
        ],
        "timeline": [{"at": spec.pop("at"), "start_job": spec} for spec in job_specs(partial)],
    }


@contextmanager
def _receiver(case: Case) -> Iterator[tuple[Any, str, Callable[[bool], None]]]:
    """The receiver, the route URL, and a switch: misbehave (True) or behave (False)."""
    if case.behaviour == "smtp 535":
        mail = SmtpReceiver(password=PASSWORD).start()

        def login(bad: bool) -> None:
            mail.password = None if bad else PASSWORD

        try:
            yield mail, mail.url_with_login("watcher", PASSWORD), login
        finally:
            mail.stop()
        return
    hook = WebhookReceiver().start()
    original = NotifyDiscord.notify_url
    actions: dict[str, Callable[[], None]] = {
        "refused": hook.go_down,
        "http 500": lambda: hook.answer(500),
        "slow 6 s": lambda: hook.slow(6.0),
        "trickle": lambda: hook.trickle(every=2.0),
        "discord 2,000": lambda: None,
    }

    def switch(bad: bool) -> None:
        if bad:
            actions[case.behaviour]()
        elif case.behaviour == "refused":
            if not hook.listening:
                hook.come_up()
        else:
            hook.answer(200)

    url = hook.url_json("/alerts")
    if case.behaviour == "discord 2,000":
        NotifyDiscord.notify_url = hook.discord_base
        hook.limit("content", 2000)
        url = hook.url_discord
    try:
        yield hook, url, switch
    finally:
        NotifyDiscord.notify_url = original
        hook.stop()


async def run_case(case: Case, folder: Path, *, deadline: str = "10s", pace: str = "1s") -> Figures:
    """Run one case on a fresh rig (`deadline` is delivery.timeout, `pace` its
    send_interval); return its figures."""
    started = time.monotonic()
    partial = case.behaviour == "discord 2,000"
    spare = WebhookReceiver()  # the rig wants one; this case's receiver is its own
    with _receiver(case) as (receiver, url, switch):
        async with open_harness(
            scenario(partial),
            folder,
            spare,
            routes=[route("ops", url)],
            delivery={"timeout": deadline, "send_interval": pace, "storm_threshold": 5},
        ) as rig:
            since = rig.now()
            await rig.cycle()
            switch(True)
            start = rig.sim.now().timestamp()
            end = start + case.outage
            await _poll_until(rig, start, lambda: rig.sim.now().timestamp() >= end)
            switch(False)
            await _poll_until(rig, start, lambda: rig.sim.now().timestamp() >= start + 200)
            retried = len(await rig.runtime.store.retry_dead(rig.now()))
            for _ in range(60):  # until every row is settled (retries are at most 30 s apart)
                await rig.run(30, every=30)
                await rig.runtime.cycle.dispatcher.drain()
                if not (await rig.runtime.store.snapshot(rig.now())).undelivered:
                    break
            retried += len(await rig.runtime.store.retry_dead(rig.now()))
            await rig.run(30, every=30)
            await rig.runtime.cycle.dispatcher.drain()
            owed = lifecycle_alerts(rig.sim, since)
    got = Counter(_received(receiver))
    delivered = sum(1 for key in owed if got[key] > 0)
    duplicated = sum(max(got[key] - 1, 0) for key in owed)
    return Figures(
        case=case,
        expected=sum(owed.values()),
        delivered=delivered,
        duplicated=duplicated,
        lost=sum(owed.values()) - delivered,
        messages=_messages(receiver),
        dead_retried=retried,
        seconds=time.monotonic() - started,
    )


async def _poll_until(
    rig: Harness, start: float, done: Callable[[], bool], limit: int = 2000
) -> None:
    """Poll every 10 s while the jobs run, then every minute, then every 10 minutes after the
    first hour (retries are at most 30 min apart), until `done` or `limit` cycles."""
    for _ in range(limit):
        if done():
            return
        elapsed = rig.sim.now().timestamp() - start
        step = 10.0 if elapsed < 200 else 60.0 if elapsed < 3600 else 600.0
        await rig.run(step, every=step)
        # The simulated clock must not outrun a send in flight (6 s answers, 10 s deadlines):
        # in real life a poll interval passes meanwhile, not the 5-minute claim lease.
        await rig.runtime.cycle.dispatcher.drain()


def _received(receiver: Any) -> list[tuple[str | None, EventKind]]:
    """(job, event) of every alert the receiver took, a grouped one counting each line."""
    found: list[tuple[str | None, EventKind]] = []
    for title, text in _texts(receiver):
        if GROUP_TITLE.search(title):
            lines = _GROUP.findall(text)
            found += [(job, EventKind(kind.replace("\\", ""))) for job, kind in lines]
            continue
        kind = _KINDS.get(title.rsplit(": ", 1)[-1].strip())
        match = _JOB.search(text)
        if kind is not None and match:
            found.append((match.group(1), kind))
    return found


def _texts(receiver: Any) -> list[tuple[str, str]]:
    if isinstance(receiver, SmtpReceiver):
        return [(m.subject, m.text) for m in receiver.mails]
    texts = []
    for request in receiver.requests:
        if request.answered is None or request.answered >= 300:
            continue
        payload = request.json
        if "content" in payload:  # Discord: title CR LF body, as text
            title, _, body = str(payload["content"]).partition("\r\n")
            texts.append((title.strip(), body))
        else:
            texts.append((str(payload["title"]), str(payload["message"])))
    return texts


def _messages(receiver: Any) -> int:
    return len(_texts(receiver))


def _span(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def table(rows: list[Figures]) -> str:
    """The README's table: one line per case."""
    lines = [
        "| receiver / outage | alerts expected | delivered | duplicated | lost | messages "
        "| dead letters retried |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.case.label} | {r.expected} | {r.delivered} | {r.duplicated} | {r.lost} "
        f"| {r.messages} | {r.dead_retried} |"
        for r in rows
    ]
    return "\n".join(lines)

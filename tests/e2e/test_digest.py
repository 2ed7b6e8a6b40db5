"""End to end: a route with `digest = "daily HH:MM UTC"` gets one summary per day through the
outbox: per KB the jobs by outcome, failures with their errors, tokens, the slowest job, and
the open incidents (since when, how many, acknowledged or not); once per slot, and once on
start for the slots the watcher was down over. The slot is a few minutes ahead of the
watcher's wall clock, which the harness moves with the simulated world.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.harness import Alert, Harness, job_scenario, open_harness, route
from tests.receivers import WebhookReceiver
from watcher.core.digest import DigestDue, digest_transition
from watcher.core.model import EventKind
from watcher.core.state import Change, Delivery

JOBS = [
    {"kb": "docs", "id": "fine", "pending": 1, "run": 20, "outcome": "completed"},
    {"kb": "docs", "id": "slower", "pending": 1, "run": 90, "outcome": "no_changes", "at": 40},
    {"kb": "wiki", "id": "broken", "pending": 1, "run": 20, "outcome": "failed", "at": 20},
]


def digest_route(receiver: WebhookReceiver, at: datetime) -> dict[str, Any]:
    daily = route("daily", receiver.url_json("/daily"), events=["api_unreachable"])
    daily["digest"] = f"daily {at:%H:%M} UTC"
    return daily


async def _harness_until_jobs_end(h: Harness) -> None:
    await h.start()
    await h.run(180, every=10)


def digests(h: Harness) -> list[Alert]:
    return [alert for alert in h.alerts("/daily") if alert.kind is EventKind.DIGEST]


async def test_a_digest_arrives_at_its_slot_with_the_periods_jobs(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver, routes=[], start=False) as h:
        slot = h.now().replace(second=0, microsecond=0) + timedelta(minutes=10)
        h.routes = [digest_route(webhook_receiver, slot)]
        await _harness_until_jobs_end(h)
        assert digests(h) == []  # the first run only marks the slot before it
        while h.now() < slot:
            await h.step(60)
        (digest,) = digests(h)
        body = digest.body.replace("\\", "")
        assert digest.title == "ℹ️ gradient-watcher: indexing digest"
        assert "Indexing digest (daily" in body
        assert "docs-kb: 2 jobs (1 completed, 1 no_changes)" in body
        assert "wiki-kb: 1 job (1 failed)" in body
        assert f"wiki-kb: job {h.sim.job_uuid('broken')} failed:" in body
        assert f"slowest 1m 30s (job {h.sim.job_uuid('slower')})" in body
        assert "Open incident: wiki-kb, 1 failure in a row since" in body
        assert "(latest failed); not acknowledged" in body

        await h.run(600, every=60)  # the next slot is tomorrow
        assert len(digests(h)) == 1


async def test_a_digest_missed_while_the_watcher_was_down_is_sent_once_on_start(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver, routes=[], start=False) as h:
        slot = h.now().replace(second=0, microsecond=0) + timedelta(minutes=10)
        h.routes = [digest_route(webhook_receiver, slot)]
        await _harness_until_jobs_end(h)
        await h.stop()
        h.sim.advance(3 * 86400)  # down over three slots
        await h.cycle()
        await h.step(60)
        (digest,) = digests(h)
        assert "wiki-kb: 1 job (1 failed)" in digest.body.replace("\\", "")


async def test_a_route_for_some_knowledge_bases_gets_a_digest_of_those_alone(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver, routes=[], start=False) as h:
        slot = h.now().replace(second=0, microsecond=0) + timedelta(minutes=10)
        docs_only = digest_route(webhook_receiver, slot)
        docs_only["knowledge_bases"] = ["docs-kb"]
        h.routes = [docs_only]
        await _harness_until_jobs_end(h)
        while h.now() < slot:
            await h.step(60)
        (digest,) = digests(h)
        body = digest.body.replace("\\", "")
        assert "docs-kb: 2 jobs (1 completed, 1 no_changes)" in body
        assert "wiki" not in body  # neither its failure nor that it needs attention


async def test_a_digest_of_hundreds_of_kilobytes_refused_for_its_size_arrives_shortened(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver, routes=[], start=False) as h:
        slot = h.now().replace(second=0, microsecond=0)
        h.routes = [digest_route(webhook_receiver, slot)]
        runtime = await h.start()
        failures = [f"kb-{n:04d}: job {n:08d} failed: {'E' * 300}" for n in range(1000)]
        text = "\n".join(["Indexing digest (daily 00:00 UTC): Mon to Tue", *failures])
        due = DigestDue(until=slot, since=slot - timedelta(days=1))
        event = digest_transition("daily", due, text, h.now())
        change = Change(
            "c-big", h.now(), transitions=(event,), deliveries=(Delivery(event.event_id, "daily"),)
        )
        await runtime.store.record(change)
        webhook_receiver.limit("message", 20_000)  # the receiver refuses longer ones (400)
        await h.run(60, every=10)
        *refused, digest = digests(h)  # refused for its size, then sent shorter: never dropped
        assert len(refused) == 1 and len(refused[0].body) > 20_000  # apprise json: 32 KiB at most
        assert len(digest.body) <= 20_000
        assert "kb-0000: job 00000000 failed" in digest.body
        assert digest.body.rstrip().endswith(" more lines")  # not "...: 902 line"
        status = await h.status_json()
        assert status["deliveries"]["dead_letters"] == []

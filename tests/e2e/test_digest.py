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
from watcher.core.model import EventKind

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

"""End to end: a partial job within its knowledge base's error budget reaches the routes as
completed, with a note, and never as partial; above the budget it is partial as before.

The simulated partial job indexes 60 + 27 items and fails 3 (of 90: 3.33 %).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness import job_scenario, open_harness, route, simulator
from tests.receivers import WebhookReceiver
from watcher.core.model import EventKind

PARTIAL_JOB = {"kb": "docs", "id": "gappy", "pending": 1, "run": 8, "outcome": "partial"}


async def _alerts_for(
    tmp_path: Path, receiver: WebhookReceiver, events: list[str], **sections: Any
) -> list[Any]:
    routes = [route("team", receiver.url_json("/team"), events=events)]
    scenario = job_scenario(["docs"], [PARTIAL_JOB])
    async with open_harness(scenario, tmp_path, receiver, routes=routes, **sections) as h:
        await h.run(30)
        return h.alerts("/team")


@pytest.mark.parametrize(
    "sections",
    [
        {"alerts": {"tolerate_failed_items": 3}},
        {"alerts": {"tolerate_failed_items": "5%"}},
    ],
    ids=["count", "share"],
)
async def test_a_partial_job_within_the_budget_is_reported_completed_with_a_note(
    tmp_path: Path, webhook_receiver: WebhookReceiver, sections: dict[str, Any]
) -> None:
    alerts = await _alerts_for(tmp_path, webhook_receiver, ["completed", "partial"], **sections)
    assert [a.kind for a in alerts] == [EventKind.COMPLETED]
    (alert,) = alerts
    body = alert.body.replace("\\", "")
    assert "DigitalOcean reports this job as partial: 3 failed items of 90 (3.33%)" in body
    assert "Outcome: partial (phase succeeded)" in body  # the API's own words are kept


async def test_above_the_budget_the_job_is_partial_as_before(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    alerts = await _alerts_for(
        tmp_path, webhook_receiver, ["completed", "partial"], alerts={"tolerate_failed_items": "3%"}
    )
    assert [a.kind for a in alerts] == [EventKind.PARTIAL]
    assert "error budget" not in alerts[0].body


async def test_a_route_that_asked_only_for_partial_hears_nothing_of_a_tolerated_job(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    alerts = await _alerts_for(
        tmp_path, webhook_receiver, ["partial"], alerts={"tolerate_failed_items": 10}
    )
    assert alerts == []


async def test_a_knowledge_bases_own_budget_overrides_the_default(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    routes = [route("team", webhook_receiver.url_json("/team"), events=["completed", "partial"])]
    sim = simulator(job_scenario(["docs"], [PARTIAL_JOB]))
    watched = [{"uuid": sim.kb_uuid("docs"), "name": "docs-kb", "tolerate_failed_items": 0}]
    async with open_harness(
        sim,
        tmp_path,
        webhook_receiver,
        routes=routes,
        alerts={"tolerate_failed_items": "50%"},
        knowledge_bases=watched,
    ) as h:
        await h.run(30)
        assert [a.kind for a in h.alerts("/team")] == [EventKind.PARTIAL]

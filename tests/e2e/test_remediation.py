"""End to end: a stalled job cancelled and started again by the watcher (or, in dry run, not),
with the `remediated` alert a real webhook receives, and costs in the alerts of finished jobs.

The simulated API and the real runtime are driven cycle by cycle (see `conftest`); requests
the watcher sent are read from the simulator's own log.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import HarnessFactory
from tests.harness import CHAT, HOOK, Receivers, route, simulator
from watcher.service.commands import read_status
from watcher.simulator.models import EMBEDDING_PRICE

# One KB whose job freezes for good 5 s into its run; jobs started through the API run 30 s.
STUCK: dict[str, Any] = {
    "on_start": {"pending": 1, "run": 30, "outcome": "completed"},
    "knowledge_bases": [
        {"key": "wiki", "name": "engineering-wiki", "data_sources": [{"key": "s", "items": 100}]}
    ],
    "timeline": [
        {
            "at": 5,
            "start_job": {
                "kb": "wiki",
                "id": "stuck",
                "pending": 1,
                "run": 30,
                "stalls": [{"after": 5, "for": None}],
            },
        }
    ],
}
REMEDIATE = {"remediation": {"on_stalled": "cancel_and_reindex", "max_attempts": 1}}


def writes(sim: Any) -> list[tuple[str, str, int | None]]:
    return [(r.method, r.path, r.status) for r in sim.requests if r.method in ("PUT", "POST")]


async def test_a_stalled_job_is_cancelled_and_reindexed_once_and_the_remediation_alerted(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(STUCK)
    harness = await make_harness(sim, [route(HOOK, receivers.hook.url_json(), ["*"])], **REMEDIATE)
    await harness.cycle()
    await harness.run(120, every=20)  # progress froze at t=11: stalled is seen by t=80
    stuck = sim.job_uuid("stuck")
    assert writes(sim) == [
        ("PUT", f"/v2/gen-ai/indexing_jobs/{stuck}/cancel", 200),
        ("POST", "/v2/gen-ai/indexing_jobs", 200),
    ]
    remediated = [a for a in receivers.alerts(HOOK) if a.kind == "remediated"]
    assert len(remediated) == 1
    assert "Cancelled the stalled job. Started a new indexing job " in remediated[0].body
    await harness.restart()  # a new process: the stall is not acted on again
    await harness.run(120, every=20)
    assert len(writes(sim)) == 2
    kinds = receivers.kinds(HOOK)
    assert kinds.count("remediated") == 1
    assert kinds.count("started") == 2  # the stuck job, and the one the watcher started
    assert "completed" in kinds  # the new job ran to its end


async def test_a_dry_run_says_what_it_would_do_and_writes_nothing(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(STUCK)
    dry = {"remediation": {**REMEDIATE["remediation"], "dry_run": True}}
    harness = await make_harness(sim, [route(HOOK, receivers.hook.url_json(), ["*"])], **dry)
    await harness.cycle()
    await harness.run(160, every=20)
    assert writes(sim) == []
    (remediated,) = [a for a in receivers.alerts(HOOK) if a.kind == "remediated"]
    assert "Dry run: would cancel the stalled job and start a new one" in remediated.body


async def test_without_remediation_configured_the_watcher_never_writes(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(STUCK)
    harness = await make_harness(sim, [route(HOOK, receivers.hook.url_json(), ["*"])])
    await harness.cycle()
    await harness.run(160, every=20)
    assert writes(sim) == []
    assert "remediated" not in receivers.kinds(HOOK)


def _costly(tokens_per_item: list[int]) -> dict[str, Any]:
    """One KB with a job every 60 s, each with its own tokens per item (100 items each)."""
    return {
        "knowledge_bases": [
            {
                "key": "wiki",
                "name": "engineering-wiki",
                "data_sources": [{"key": "s", "items": 100}],
            }
        ],
        "timeline": [
            {
                "at": 5 + 60 * n,
                "start_job": {"kb": "wiki", "id": f"j{n}", "run": 20, "tokens_per_item": tpi},
            }
            for n, tpi in enumerate(tokens_per_item)
        ],
    }


async def test_finished_jobs_carry_their_cost_and_an_expensive_one_is_a_cost_spike(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(_costly([40, 40, 40, 400]))
    events = ["completed", "cost_spike"]
    calm = {**route(CHAT, receivers.chat.url_mattermost, ["cost_spike"]), "cost_spike_factor": 20}
    harness = await make_harness(
        sim, [route(HOOK, receivers.hook.url_json(), events), calm], cost={"spike_factor": 3}
    )
    await harness.cycle()
    await harness.run(260, every=10)
    alerts = receivers.alerts(HOOK)
    assert [a.kind for a in alerts] == ["completed"] * 4 + ["cost_spike"]
    tokens = 100 * 40
    cost = tokens * EMBEDDING_PRICE / 1_000_000
    assert f"Cost: {cost:.4f} ({tokens:,} tokens at 0.09 per million" in alerts[0].body
    assert "the API names no currency" in alerts[0].body
    assert "10.0 times the median" in alerts[-1].body
    assert sim.job_uuid("j3") in alerts[-1].body
    assert receivers.alerts(CHAT) == []  # its own factor (20) was not exceeded (10 times)
    await harness.stop()  # `watcher status` opens the store the watcher closed
    printed: list[str] = []
    assert await read_status(harness.config(), as_json=False, echo=printed.append) == 0
    text = "\n".join(printed)
    assert "Cost and time (latest jobs):" in text
    assert "engineering-wiki: 0.0036 (40,000 tokens at 0.09 per million" in text

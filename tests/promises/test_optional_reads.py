"""An optional read that never ends costs that read, never the cycle (issue 9, issue 11).

Only the account's KB list is mandatory. Each optional read (a KB's job list, a followed
job, a failed job's details) ends within its own share of what is left of the cycle's
deadline (`watcher.core.reads.read_share`). Here the simulator dribbles one optional
endpoint (headers, then a byte a second, without end) behind a request timeout far longer
than the cycle's deadline, so only the shares can end it: the cycle still finishes inside
its deadline, the other knowledge base's job is alerted in that very cycle, and the job
behind the dribbling endpoint is alerted once it answers again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Harness, alerts_of, open_harness
from tests.receivers import WebhookReceiver
from watcher.core.model import EventKind
from watcher.simulator.faults import Fault, FaultKind

DEADLINE = 3.0  # seconds: poll.cycle_deadline
SECTIONS: dict[str, Any] = {
    # one attempt may take 30 s: only the cycle's deadline and the reads' shares end a dribble
    "api": {"timeout": "30s", "per_page": 10},  # 10 a page: each KB's own list is cheaper
    "poll": {"cycle_deadline": f"{DEADLINE:g}s"},
}


def scenario() -> dict[str, Any]:
    """Two KBs; at 6 s a job starts on each, and both fail at about 17 s."""
    sources = [{"key": "main", "items": 60}]
    history = [{"ago": 86400, "run": 300, "outcome": "completed"}]
    kbs = [
        {"key": key, "name": f"{key}-kb", "data_sources": sources, "history": history}
        for key in ("docs", "wiki")
    ]
    start = {"pending": 1, "run": 10, "outcome": "failed"}
    return {
        "name": "optional-reads",
        "knowledge_bases": kbs,
        "timeline": [
            {"at": 6, "start_job": {"kb": "docs", "id": "a", **start}},
            {"at": 6, "start_job": {"kb": "wiki", "id": "b", **start}},
        ],
    }


def accepted(rig: Harness) -> Counter[tuple[str | None, EventKind | str]]:
    assert rig.receiver is not None
    return Counter(a.key for a in alerts_of(r for r in rig.receiver.requests if r.answered == 200))


async def timed_step(rig: Harness, seconds: float) -> float:
    """Let `seconds` of simulated time pass and run a cycle; the cycle's poll in real seconds
    (the event loop's clock), delivery excluded."""
    rig.sim.advance(seconds)
    assert rig.runtime is not None
    loop = asyncio.get_running_loop()
    began = loop.time()
    cycle = rig.runtime.cycle
    report = await cycle._poll("timed", await cycle._list())  # always in full
    took = loop.time() - began
    rig.reports.append(report)
    await rig.runtime.cycle.deliver()
    return took


@pytest.mark.parametrize("endpoint", ["kb_jobs", "details"])
async def test_one_optional_endpoint_that_never_ends_costs_neither_the_cycle_nor_the_other_kbs(
    tmp_path: Path, webhook_receiver: WebhookReceiver, endpoint: str
) -> None:
    async with open_harness(scenario(), tmp_path, webhook_receiver, **SECTIONS) as rig:
        sim = rig.sim
        await rig.cycle()
        docs = sim.kb_uuid("docs")
        if endpoint == "kb_jobs":  # docs's own job list, read when its latest job is new
            path = f"/v2/gen-ai/knowledge_bases/{docs}/indexing_jobs"
            sim.inject(Fault(FaultKind.DRIBBLE, count=None, path_prefix=path))
            took = await timed_step(rig, 10)  # both jobs started: both KBs have news
            news = EventKind.STARTED
        else:
            await rig.run(10)  # both started, and alerted
            a = sim.job_uuid("a")
            path = f"/v2/gen-ai/indexing_jobs/{a}/data_sources"
            sim.inject(Fault(FaultKind.DRIBBLE, count=None, path_prefix=path))
            # the lists show the failed jobs without their errors: the details are read
            errors = ("error_msg", "error_details")
            lists = "/v2/gen-ai/knowledge_bases"
            sim.inject(Fault(FaultKind.MISSING_FIELDS, None, lists, drop=errors))
            took = await timed_step(rig, 10)  # both failed: each outcome wants its details
            news = EventKind.FAILED
        a, b = sim.job_uuid("a"), sim.job_uuid("b")
        report = rig.reports[-1]
        assert report.ok, report.error  # the mandatory part finished: no failed API read
        assert took < DEADLINE + 1.0, took  # inside its deadline (a scheduling margin)
        assert accepted(rig)[(b, news)] == 1  # the other KB's job, in this very cycle
        assert [r.path for r in sim.requests if "dribble" in r.faults], "the fault was met"
        assert not [e for e in rig.logs if e["event"] == "cycle_deadline_passed"]
        cut = [e for e in rig.logs if "share" in str(e.get("error", ""))]
        assert cut, "the dribbling read was cut at its share, and logged"
        sim.clear_faults()
        await rig.run(30)
        assert accepted(rig) == Counter(
            {(a, EventKind.STARTED): 1, (b, EventKind.STARTED): 1}
            | {(a, EventKind.FAILED): 1, (b, EventKind.FAILED): 1}
        )

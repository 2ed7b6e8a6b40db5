"""The schedules, the model prices and the per-file reports inside the cycle's one budget.

The real runtime against the simulator on loopback, real SQLite, real delivery to a loopback
webhook; the simulator's hourly rate limit is set low to make `ratelimit-remaining` fall under
`api.reserve` (the budget is *tight*):

- at share 0 no schedule is read (nor data sources, databases, agents), the prices still are;
- the prices wait while the budget is tight, and are read the cycle after it is not;
- a finished job's report the budget has no room for is not kept, and its alert says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.harness import open_harness
from tests.receivers import WebhookReceiver

DAY = 86400


def _kb(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "name": f"{key}-kb",
        "data_sources": [{"key": "s", "items": 20}],
        "history": [{"ago": DAY, "run": 300, "outcome": "completed"}],
        **extra,
    }


PARTIAL = {"kb": "gaps", "id": "gaps-1", "pending": 1, "run": 6, "outcome": "partial"}
SCENARIO: dict[str, Any] = {
    "knowledge_bases": [_kb("gaps", schedule={"next_run": 600}), _kb("fine")],
    "timeline": [{"at": 5, "start_job": PARTIAL}],
}


def _busy(n: int, *, at: int, **job: Any) -> dict[str, Any]:
    """`n` KBs, each starting a job `j<k>` (`job`: its pending, run and outcome) at `at`."""
    starts = [{"at": at, "start_job": {"kb": f"kb{k}", "id": f"j{k}", **job}} for k in range(n)]
    return {"knowledge_bases": [_kb(f"kb{k}") for k in range(n)], "timeline": starts}


def _paths(requests: list[str], part: str) -> list[str]:
    return [r for r in requests if part in r]


async def test_at_share_zero_no_schedule_is_read_but_the_model_prices_still_are(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    async with open_harness(
        SCENARIO, tmp_path, webhook_receiver, api={"extra_reads_share": "0%"},
        schedules={"read_every": "5m"},
    ) as harness:  # fmt: skip
        await harness.cycle()
        await harness.run(900, every=60)
        seen = harness.requests_since(0)

    assert _paths(seen, "/scheduled-indexing/") == []
    assert _paths(seen, "/data_sources") == [] and _paths(seen, "/agents") == []
    assert len(_paths(seen, "/models")) >= 1


async def test_the_prices_wait_while_the_budget_is_tight_and_come_once_it_is_not(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    async with open_harness(SCENARIO, tmp_path, webhook_receiver, api={"reserve": 500}) as harness:
        harness.sim.limiter.per_hour = 400  # every answer says fewer than 500 remain
        await harness.cycle()
        await harness.run(120, every=30)
        while_tight = harness.requests_since(0)
        harness.sim.limiter.per_hour = 100_000  # plenty again
        mark = len(harness.sim.requests)
        await harness.step(30)  # this cycle's first answer says so: the next cycle reads
        await harness.step(30)
        after = harness.requests_since(mark)

    assert _paths(while_tight, "/models") == []
    assert _paths(while_tight, "/scheduled-indexing/") == []
    assert any(e["event"] == "model_prices_waiting" for e in harness.logs)
    assert len(_paths(after, "/models")) >= 1


async def test_a_report_the_budget_has_no_room_for_is_not_kept_and_the_alert_says_so(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    async with open_harness(SCENARIO, tmp_path, webhook_receiver, api={"reserve": 500}) as harness:
        harness.sim.limiter.per_hour = 400  # under the reserve from the first answer on
        await harness.cycle()
        await harness.run(30, every=5)
        seen = harness.requests_since(0)

    (partial,) = [a for a in harness.alerts("/ops") if a.kind == "partial"]
    assert "was not kept: the API's rate limit had no room for it" in partial.body
    assert _paths(seen, "details_signed_url") == []
    assert not list((tmp_path / "reports").glob("*.csv"))
    (log,) = [e for e in harness.logs if e["event"] == "job_report_not_kept"]
    assert "no room in the API budget (tight)" in log["error"]


async def test_reports_the_budget_has_no_room_for_in_one_cycle_are_logged_in_one_line(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """A storm of finished jobs under a full budget was one warning per job (298 in one
    cycle at 1,000 busy KBs): the log says it once, with how many and the first few."""
    scenario = _busy(6, at=5, pending=1, run=6, outcome="partial")
    async with open_harness(scenario, tmp_path, webhook_receiver, api={"reserve": 500}) as harness:
        harness.sim.limiter.per_hour = 400  # under the reserve from the first answer on
        await harness.cycle()
        await harness.run(30, every=15)

    partials = [a for a in harness.alerts("/ops") if a.kind == "partial"]
    assert len(partials) == 6
    assert all("rate limit had no room for it" in a.body for a in partials)
    (line,) = [e for e in harness.logs if e["event"] == "job_report_not_kept"]
    assert line["jobs"] == 6 and len(line["first"]) == 5
    assert "no room in the API budget (tight)" in line["error"]


async def test_a_first_runs_extra_reads_leave_room_for_the_busy_kbs_next_poll(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """A first run reads the KB list alone (the history): one request. Sized by that, the
    extra reads took the minute's room, and the next polls, listing each busy KB's jobs,
    waited for it (at 1,000 busy KBs the fourth poll waited until the run's end). They are
    sized by what the next poll may cost: the KB list and each busy KB's list (`reads.
    next_poll_cost`), as many times as the fastest pace polls in a minute."""
    api = {"max_requests_per_minute": 60, "reserve": 0, "extra_reads_share": "50%"}
    scenario = _busy(40, at=0, pending=0, run=900, outcome="completed")
    async with open_harness(scenario, tmp_path, webhook_receiver, api=api) as harness:
        harness.sim.advance(1)
        await harness.cycle()
        assert harness.runtime is not None
        budget = harness.runtime.cycle.budget
        assert budget is not None
        room = budget.room(harness.runtime.cycle.elapsed())
    # the next poll: the KB list (1 page) and the account-wide job list (3 pages for 40 KBs)
    assert budget.poll_cost == 4
    assert room.minute_polls == 4 * 4  # a poll every 15 s (poll.active_interval)
    charged = sum(n for kind, n in budget.by_kind.items() if kind != "prices")
    assert 0 < charged <= 60 - 16

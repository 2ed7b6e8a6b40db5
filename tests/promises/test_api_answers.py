"""A broken or hostile API answer never blinds the watcher, and never makes it lie (issue 11).

Each test runs the real runtime (httpx client, SQLite file, apprise to a real webhook
receiver) cycle by cycle against the simulator behind `MutatingProxy`, switches one hostile
mode on for a while, and then compares what the receiver got with what the scenario's jobs
owe (`started` and the outcome of every job, once each):

- where the mode makes the knowledge-base list unreadable, every cycle of the window fails,
  each within its deadline (the watcher keeps polling on time), `api_unreachable` is sent
  once after its threshold and `api_recovered` once after, and every job alert arrives (none
  false, none lost); nothing of the hostile answer reaches the store;
- where the answer can still be read (conflicting copies, an unreadable KB name), no cycle
  fails and the alerts are exactly the owed ones.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.harness import TOKEN, Key, job_scenario, lifecycle_alerts
from tests.promises.proxy import ProxiedRig, ProxyMode, open_proxied_rig
from tests.promises.test_api_faults import END, JOBS, logged
from tests.receivers import WebhookReceiver
from watcher.core.model import EventKind

FAULT_FROM, FAULT_FOR = 20.0, 40.0  # longer than the threshold below
DEADLINE_S = 2.0
SLACK_S = 3.0  # a cycle past its deadline by more than this did not end on time
SETTINGS: dict[str, Any] = {
    "poll": {"cycle_deadline": f"{DEADLINE_S:g}s"},
    "alerts": {"api_unreachable_after": "20s"},
}
UNREACHABLE: Counter[Key] = Counter(
    {(None, EventKind.API_UNREACHABLE): 1, (None, EventKind.API_RECOVERED): 1}
)


async def run_with_mode(rig: ProxiedRig, mode: ProxyMode, at: float, seconds: float) -> range:
    """Cycle every 5 s until `END`; `mode` is on from `at` for `seconds`. Returns the indexes
    of `rig.reports` of the cycles that ran while it was on."""
    await rig.cycle()
    await rig.run(at)
    rig.set_mode(mode)
    first = len(rig.reports)
    await rig.run(seconds)
    window = range(first, len(rig.reports))
    rig.set_mode(None)
    await rig.run(END - at - seconds + 10)
    return window


def assert_owed(rig: ProxiedRig, extra: Counter[Key] | None = None) -> None:
    owed = lifecycle_alerts(rig.sim, rig.sim.t0) + (extra or Counter())
    assert rig.received() == owed
    assert TOKEN not in logged(rig)


def assert_on_time(rig: ProxiedRig) -> None:
    """Every cycle ended within its deadline (plus slack for delivery and a loaded machine)."""
    late = [round(d, 2) for d in rig.durations if d > DEADLINE_S + SLACK_S]
    assert not late, f"cycles that did not end on time: {late}"


def events(rig: ProxiedRig, name: str) -> list[Any]:
    return [e for e in rig.logs if e["event"] == name]


UNREADABLE = [
    pytest.param(ProxyMode.TRICKLE, "no complete answer within 0.5s", id="infinite-trickle"),
    pytest.param(ProxyMode.HUGE, "larger than 16,777,216 bytes", id="huge-answer"),
    pytest.param(ProxyMode.MANY_ITEMS, "200,000 items", id="200000-item-list"),
    pytest.param(ProxyMode.DEEP_JSON, "RecursionError", id="deep-json"),
    pytest.param(ProxyMode.SELF_NEXT, "points back to page 1: a loop", id="self-pointing-next"),
    pytest.param(ProxyMode.ENDLESS_PAGES, "a list without end", id="meta-pages-1e9"),
]


@pytest.mark.parametrize(("mode", "why"), UNREADABLE)
async def test_an_unreadable_answer_is_a_failed_read_alerted_after_its_threshold(
    tmp_path: Path, webhook_receiver: WebhookReceiver, mode: ProxyMode, why: str
) -> None:
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_proxied_rig(scenario, tmp_path, webhook_receiver, **SETTINGS) as rig:
        window = await run_with_mode(rig, mode, FAULT_FROM, FAULT_FOR)
        failed = [rig.reports[i] for i in window]
        assert failed and not any(report.ok for report in failed)
        reasons = [r.error or "" for r in failed]
        deadline = f"cycle deadline ({DEADLINE_S:g}s)"
        assert all(why in reason or deadline in reason for reason in reasons), reasons
        assert any(why in reason for reason in reasons) or mode is ProxyMode.TRICKLE, reasons
        assert all(report.ok for report in rig.reports[window.stop + 1 :])
        assert_on_time(rig)
        assert_owed(rig, UNREACHABLE)
        assert rig.proxy is not None and rig.proxy.hits[mode] >= len(failed)
        kbs = (await rig.status_json())["knowledge_bases"]
        assert sorted(kb["name"] for kb in kbs) == ["docs-kb", "wiki-kb"]  # no junk kept


async def test_an_answer_over_the_size_cap_is_logged_with_its_size(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    scenario = job_scenario(["docs"], JOBS[:1])
    async with open_proxied_rig(scenario, tmp_path, webhook_receiver, **SETTINGS) as rig:
        await rig.cycle()
        rig.set_mode(ProxyMode.HUGE)
        await rig.cycle()
        [too_large] = events(rig, "api_response_too_large")
        assert too_large["size_bytes"] > too_large["limit_bytes"] == 16 * 1024 * 1024
        assert too_large["declared"] is False  # sent chunked: measured while read


async def test_conflicting_copies_of_a_running_job_give_no_false_alert_and_lose_none(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """The issue's case: per-KB lists carry a running job and a "completed" copy of it from
    the job's first sight to its end. No false `completed`; the real outcomes arrive."""
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_proxied_rig(scenario, tmp_path, webhook_receiver, **SETTINGS) as rig:
        await run_with_mode(rig, ProxyMode.CONFLICTING, 0, END)
        assert all(report.ok for report in rig.reports)
        assert_owed(rig)
        assert rig.proxy is not None and rig.proxy.hits[ProxyMode.CONFLICTING]
        assert events(rig, "api_job_copies_disagree")


async def test_an_unreadable_kb_name_costs_that_name_and_hides_nothing(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """A KB name and a junk item's uuid that are not UTF-8, the whole run long: the KB is
    watched (its jobs alerted), the junk item dropped, each logged once."""
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_proxied_rig(scenario, tmp_path, webhook_receiver, **SETTINGS) as rig:
        await run_with_mode(rig, ProxyMode.INVALID_UTF8, 0, END)
        assert all(report.ok for report in rig.reports)
        assert_owed(rig)
        kbs = (await rig.status_json())["knowledge_bases"]
        assert len(kbs) == 2
        assert len(events(rig, "api_text_unreadable")) == 1
        assert len(events(rig, "api_item_skipped")) == 1


async def test_an_outcome_a_lying_replica_got_out_is_corrected_and_the_real_one_follows(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """For 10 s every answer says both running jobs completed (each answer consistent with
    itself: nothing tells the lie apart). The watcher alerts it, then, once newer answers show
    the jobs running, `corrected`, and each job's real outcome when it comes."""
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_proxied_rig(scenario, tmp_path, webhook_receiver, **SETTINGS) as rig:
        await run_with_mode(rig, ProxyMode.FALSE_TERMINAL, FAULT_FROM, 10)
        a, b = rig.sim.job_uuid("a"), rig.sim.job_uuid("b")
        lie: Counter[Key] = Counter(
            {
                (a, EventKind.COMPLETED): 1,
                (a, EventKind.CORRECTED): 1,
                (b, EventKind.COMPLETED): 1,
                (b, EventKind.CORRECTED): 1,
            }
        )
        assert_owed(rig, lie)
        told = [(alert.job_uuid, alert.kind) for alert in rig.alerts()]
        for job in (a, b):
            mine = [kind for uuid, kind in told if uuid == job]
            assert mine[:3] == [EventKind.STARTED, EventKind.COMPLETED, EventKind.CORRECTED]
        assert (b, EventKind.PARTIAL) in told[-3:]  # b's real outcome, after its correction

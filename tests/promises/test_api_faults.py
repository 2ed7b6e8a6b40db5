"""A broken API never produces a false alert nor stops the watcher, and true alerts still arrive.

Each test runs the real runtime (`open_runtime`: httpx client, SQLite file, apprise) cycle by
cycle against the simulator on loopback, switches one kind of misbehaviour on for a while,
and at the end compares what a real webhook receiver got with what the scenario's jobs owe:
`started` and the outcome of every job, once each. The watcher's clock is the simulator's,
plus whatever jump a test makes. The API client's retry waits are recorded, not slept.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.harness import TOKEN, Harness, Key, job_scenario, lifecycle_alerts, open_harness
from tests.receivers import WebhookReceiver
from watcher.core.model import EventKind
from watcher.service.logs import redact_secrets
from watcher.simulator import Fault, FaultKind

# Three jobs over ~100 s: `a` ends inside the fault window (t = 20..60), `b` just after it,
# `c` starts after it. Cycles run every 5 s from t = 0 to t = 150.
JOBS: list[dict[str, Any]] = [
    {"at": 10, "kb": "docs", "id": "a", "pending": 2, "run": 40},
    {"at": 12, "kb": "wiki", "id": "b", "pending": 1, "run": 60, "outcome": "partial"},
    {"at": 70, "kb": "docs", "id": "c", "run": 30, "outcome": "failed"},
]
FAULT_FROM, FAULT_FOR, END = 20.0, 40.0, 150.0


async def run_with_fault(
    rig: Harness, fault: Fault | None, *, at: float = FAULT_FROM, seconds: float | None = FAULT_FOR
) -> None:
    """Cycle every 5 s; switch `fault` on at `at` for `seconds` (None: until used up)."""
    await rig.cycle()
    await rig.run(at)
    if fault is not None:
        rig.sim.inject(fault, for_seconds=seconds)
    await rig.run(END - at)
    rig.sim.clear_faults()
    await rig.run(10)


def assert_exactly_owed(rig: Harness, extra: Counter[Key] | None = None) -> None:
    """The receiver got every alert the jobs owe, once, and nothing else; no secret leaked."""
    owed = lifecycle_alerts(rig.sim, rig.sim.t0) + (extra or Counter())
    assert rig.received() == owed
    assert TOKEN not in logged(rig)


def logged(rig: Harness) -> str:
    """The captured log events as the log boundary lets them out (`capture_logs` keeps them
    as they were logged, before the processor chain that redacts them)."""
    return repr([redact_secrets(None, "", dict(event)) for event in rig.logs])


STORMS = [
    pytest.param(Fault(FaultKind.RATE_LIMITED, count=None, retry_after=2), id="429-retry-after"),
    pytest.param(Fault(FaultKind.RATE_LIMITED, count=None, retry_after=None), id="429-bare"),
    pytest.param(Fault(FaultKind.SERVER_ERROR, count=None, status=500), id="500"),
    pytest.param(Fault(FaultKind.SERVER_ERROR, count=None, status=502), id="502"),
    pytest.param(Fault(FaultKind.SERVER_ERROR, count=None, status=503), id="503"),
    pytest.param(Fault(FaultKind.HTML_ERROR, count=None, status=502), id="html-page"),
    pytest.param(Fault(FaultKind.CONNECTION_RESET, count=None), id="connection-reset"),
    pytest.param(Fault(FaultKind.TRUNCATED_JSON, count=None), id="truncated-json"),
    pytest.param(Fault(FaultKind.UNKNOWN_ENUM, count=None), id="unknown-enum"),
    pytest.param(
        Fault(FaultKind.UNKNOWN_ENUM, count=None, phase="BATCH_JOB_PHASE_QUEUED", job_status="X"),
        id="unknown-enum-other",
    ),
    pytest.param(Fault(FaultKind.MISSING_FIELDS, count=None), id="missing-status-phase"),
    pytest.param(
        Fault(
            FaultKind.MISSING_FIELDS,
            count=None,
            drop=("updated_at", "completed_datasources", "total_tokens", "data_source_jobs"),
        ),
        id="missing-progress",
    ),
    pytest.param(Fault(FaultKind.MISSING_FIELDS, count=None, drop=("uuid",)), id="missing-uuid"),
    pytest.param(
        Fault(FaultKind.MISSING_FIELDS, count=None, drop=("knowledge_base_uuid", "created_at")),
        id="missing-kb-and-created",
    ),
    pytest.param(Fault(FaultKind.COUNTERS_BACKWARDS, count=None), id="counters-backwards"),
    pytest.param(Fault(FaultKind.ECHO_HEADERS, count=None, status=502), id="echo-headers"),
]


@pytest.mark.parametrize("fault", STORMS)
async def test_a_forty_second_fault_storm_gives_no_false_alert_and_every_true_one_after(
    tmp_path: Path, webhook_receiver: WebhookReceiver, fault: Fault
) -> None:
    async with open_harness(
        job_scenario(["docs", "wiki"], JOBS), tmp_path, webhook_receiver
    ) as rig:
        await run_with_fault(rig, fault)
        assert_exactly_owed(rig)
        hit = [r for r in rig.sim.requests if fault.kind.value in r.faults or r.status is None]
        assert hit, "the fault never met a request"


async def test_missing_created_at_on_old_history_never_alerts_it_as_new(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """A KB's latest-15 list is read when a new job appears; old jobs there stay silent."""
    drop = Fault(FaultKind.MISSING_FIELDS, count=None, drop=("created_at",))
    async with open_harness(
        job_scenario(["docs", "wiki"], JOBS), tmp_path, webhook_receiver
    ) as rig:
        await run_with_fault(rig, drop, at=5, seconds=20)
        assert_exactly_owed(rig)


def retry_after(seconds: float) -> Callable[[list[float]], bool]:
    """Every wait is the one the server asked for (`retry-after`)."""
    return lambda waits: waits == [seconds] * len(waits)


def until_reset_capped(waits: list[float]) -> bool:
    """A bare 429 waits for `ratelimit-reset` (an hour's window away): capped at max_wait."""
    return waits == [60.0] * len(waits)


def backoff(waits: list[float]) -> bool:
    """The client's own full-jitter backoff: attempt n waits within [0, 0.5 s x 2^(n-1)]."""
    return all(0.0 <= wait <= 0.5 * 2**n for n, wait in enumerate(waits))


BURSTS = [
    pytest.param(
        Fault(FaultKind.RATE_LIMITED, count=3, retry_after=2), retry_after(2.0), id="429x3-retry"
    ),
    pytest.param(
        Fault(FaultKind.RATE_LIMITED, count=3, retry_after=None), until_reset_capped, id="429x3"
    ),
    pytest.param(Fault(FaultKind.SERVER_ERROR, count=3, status=503), backoff, id="503x3"),
    pytest.param(Fault(FaultKind.CONNECTION_RESET, count=3), backoff, id="resetx3"),
    pytest.param(Fault(FaultKind.TRUNCATED_JSON, count=3), backoff, id="truncatedx3"),
    pytest.param(Fault(FaultKind.HTML_ERROR, count=3), backoff, id="htmlx3"),
    pytest.param(Fault(FaultKind.SLOW, count=2, delay=1.0), backoff, id="slow-past-timeout-x2"),
]


@pytest.mark.parametrize(("fault", "waited_as_told"), BURSTS)
async def test_a_short_burst_is_absorbed_by_retries_within_the_cycle(
    tmp_path: Path,
    webhook_receiver: WebhookReceiver,
    fault: Fault,
    waited_as_told: Callable[[list[float]], bool],
) -> None:
    """Each failed attempt of the burst is retried once, after the wait its kind calls for."""
    assert fault.count is not None, "a burst has a size"
    async with open_harness(
        job_scenario(["docs", "wiki"], JOBS), tmp_path, webhook_receiver
    ) as rig:
        await run_with_fault(rig, fault, at=50, seconds=None)
        assert_exactly_owed(rig)
        assert all(report.ok for report in rig.reports), "retries should have hidden the burst"
        assert len(rig.api_waits) == fault.count, "one wait per failed attempt, and no other"
        assert waited_as_told(rig.api_waits), rig.api_waits


async def test_a_list_that_shifts_while_paging_loses_nothing_and_invents_nothing(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """One item per page; a new KB (with its own running job) lands mid-sweep, twice."""
    scenario = job_scenario(["docs", "wiki", "blog"], JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver, api={"per_page": 1}) as rig:
        await run_with_fault(rig, Fault(FaultKind.PAGE_SHIFT, count=2), seconds=None)
        shifted = [r for r in rig.sim.requests if "page_shift" in r.faults]
        assert len(shifted) == 2
        # the late arrivals are real new KBs with running jobs: their alerts are owed too
        assert_exactly_owed(rig)
        assert sum(1 for key in rig.received() if key[1] is EventKind.STARTED) == 5


async def test_a_job_that_vanishes_from_every_answer_for_a_while_is_followed_to_its_end(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    async with open_harness(
        job_scenario(["docs", "wiki"], JOBS), tmp_path, webhook_receiver
    ) as rig:
        await rig.cycle()
        await rig.run(25)
        rig.sim.hide_job("a", for_seconds=30)  # it ends (t = 52) while hidden
        rig.sim.hide_job("b", for_seconds=20)
        await rig.run(END - 25)
        assert_exactly_owed(rig)
        assert any(r.status == 404 for r in rig.sim.requests)


async def test_a_kb_deleted_while_its_job_runs_gives_no_stall_and_the_rest_goes_on(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    async with open_harness(
        job_scenario(["docs", "wiki"], JOBS), tmp_path, webhook_receiver
    ) as rig:
        await rig.cycle()
        await rig.run(30)
        rig.sim.delete_kb("docs")  # job `a` runs, `c` is never started
        await rig.run(300)  # far past no_progress_after (60 s)
        assert_exactly_owed(rig)
        kinds = {key[1] for key in rig.received()}
        assert EventKind.STALLED not in kinds
        assert rig.reports[-1].ok


async def test_a_watched_kb_deleted_while_its_job_runs_gives_no_stall(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver) as probe:
        uuids = [probe.sim.kb_uuid("docs"), probe.sim.kb_uuid("wiki")]
    watched: dict[str, Any] = {"knowledge_bases": [{"uuid": u} for u in uuids]}
    (tmp_path / "watcher.db").unlink()
    webhook_receiver.requests.clear()
    async with open_harness(scenario, tmp_path, webhook_receiver, **watched) as rig:
        await rig.cycle()
        await rig.run(30)
        rig.sim.delete_kb("docs")
        await rig.run(300)
        # The deletion itself is news, once: the watched KB is missing from the account.
        assert_exactly_owed(rig, Counter({(None, EventKind.KNOWLEDGE_BASE_MISSING): 1}))


async def test_an_outage_longer_than_the_threshold_is_alerted_once_and_its_end_once(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """The watcher's own true alert: api_unreachable after 60 s of 503s, api_recovered after."""
    async with open_harness(
        job_scenario(["docs", "wiki"], JOBS),
        tmp_path,
        webhook_receiver,
        alerts={"api_unreachable_after": "60s"},
    ) as rig:
        outage = Fault(FaultKind.SERVER_ERROR, count=None, status=503)
        await run_with_fault(rig, outage, at=15, seconds=75)
        extra: Counter[Key] = Counter(
            {(None, EventKind.API_UNREACHABLE): 1, (None, EventKind.API_RECOVERED): 1}
        )
        assert_exactly_owed(rig, extra)
        kinds = [a.kind for a in rig.alerts() if a.job_uuid is None]
        assert kinds == [EventKind.API_UNREACHABLE, EventKind.API_RECOVERED]


async def test_a_gateway_echoing_the_authorization_header_puts_no_token_anywhere(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """The issue's case: a 502 whose message quotes the request headers, Authorization and
    token included, for longer than the threshold. The `api_unreachable` alert says what the
    gateway said, but no run of ten characters of the token reaches the alert, the state
    file (events, the outbox, the API-health value), `status --json` or the logs."""
    async with open_harness(
        job_scenario(["docs", "wiki"], JOBS),
        tmp_path,
        webhook_receiver,
        alerts={"api_unreachable_after": "30s"},
    ) as rig:
        echo = Fault(FaultKind.ECHO_HEADERS, count=None, status=502)
        await run_with_fault(rig, echo, at=15, seconds=75)
        status_json = json.dumps(await rig.status_json())
        extra: Counter[Key] = Counter(
            {(None, EventKind.API_UNREACHABLE): 1, (None, EventKind.API_RECOVERED): 1}
        )
        assert_exactly_owed(rig, extra)
        [unreachable] = [a for a in rig.alerts() if a.kind is EventKind.API_UNREACHABLE]
    assert "request headers" in unreachable.body and "authorization" in unreachable.body
    stored = _files_as_text(tmp_path, "watcher.db*")
    secret = TOKEN.removeprefix("dop_v1_")
    runs = {secret[i : i + 10] for i in range(len(secret) - 9)}  # not fewer: uuids are hex too
    for place in (unreachable.title + unreachable.body, status_json, logged(rig), *stored):
        assert not [run for run in runs if run in place]


async def test_the_flaky_scenario_end_to_end_alerts_exactly_what_happened(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """The bundled `flaky` scenario: every fault kind on a timeline while two jobs run."""
    from watcher.simulator import load_scenario

    flaky = load_scenario("flaky")
    assert flaky.timeline
    scenario = _bundled("flaky")
    async with open_harness(scenario, tmp_path, webhook_receiver, api={"per_page": 1}) as rig:
        await rig.cycle()
        for _ in range(40):
            rig.sim.advance(2)
            await rig.cycle()
        assert rig.received() == lifecycle_alerts(rig.sim, rig.sim.t0)
        assert TOKEN not in logged(rig)


def _files_as_text(directory: Path, pattern: str) -> list[str]:
    return [p.read_bytes().decode("latin-1") for p in sorted(directory.glob(pattern))]


def _bundled(name: str) -> dict[str, Any]:
    from importlib import resources

    text = (resources.files("watcher.simulator") / "scenarios" / f"{name}.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


async def test_the_faults_scenario_file_end_to_end_alerts_exactly_what_happened(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """`faults_scenario.json`: counters backwards, a vanishing job, a deleted KB, 503s."""
    scenario = json.loads((Path(__file__).parent / "faults_scenario.json").read_text())
    async with open_harness(scenario, tmp_path, webhook_receiver) as rig:
        await rig.cycle()
        for _ in range(60):  # far past the no-progress threshold (60 s) after the deletion
            rig.sim.advance(3)
            await rig.cycle()
        assert rig.sim.skipped == []
        owed = lifecycle_alerts(rig.sim, rig.sim.t0)
        assert rig.received() == owed
        scratch = rig.sim.job_uuid("scratch-run")
        assert [key for key in owed if key[0] == scratch] == [(scratch, EventKind.STARTED)]
        assert TOKEN not in logged(rig)


# --- the watcher's clock jumps -------------------------------------------------------------

LONG_JOBS: list[dict[str, Any]] = [
    {"at": 10, "kb": "docs", "id": "moving", "pending": 2, "run": 20000},
    {"at": 12, "kb": "wiki", "id": "stuck", "pending": 1, "run": 600, "stalls": [{"after": 20}]},
]


def stalled_jobs(rig: Harness) -> list[str | None]:
    return [a.job_uuid for a in rig.alerts() if a.kind is EventKind.STALLED]


async def test_after_a_suspend_a_stuck_job_is_alerted_at_once_and_a_moving_one_never(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Suspend/resume: the watcher and the world both move two hours between two cycles."""
    scenario = job_scenario(["docs", "wiki"], LONG_JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver) as rig:
        await rig.cycle()
        await rig.run(35)  # `stuck` froze at t = 33, not yet for 60 s
        assert stalled_jobs(rig) == []
        rig.sim.advance(7200)  # asleep: no cycle
        await rig.cycle()
        assert stalled_jobs(rig) == [rig.sim.job_uuid("stuck")]
        await rig.run(120)
        assert stalled_jobs(rig) == [rig.sim.job_uuid("stuck")]
        assert_exactly_owed(rig, Counter({(rig.sim.job_uuid("stuck"), EventKind.STALLED): 1}))


async def test_a_forward_clock_step_does_not_call_a_moving_job_stalled(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Only the watcher's clock jumps two hours (a VM clock fixed by NTP); the world does not."""
    scenario = job_scenario(["docs"], LONG_JOBS[:1])
    async with open_harness(scenario, tmp_path, webhook_receiver) as rig:
        await rig.cycle()
        await rig.run(30)
        rig.offset += timedelta(hours=2)
        await rig.run(60)
        assert stalled_jobs(rig) == []
        assert_exactly_owed(rig)


async def test_a_backward_clock_step_gives_no_crash_no_duplicate_and_no_negative_duration(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    async with open_harness(
        job_scenario(["docs", "wiki"], JOBS), tmp_path, webhook_receiver
    ) as rig:
        await rig.cycle()
        await rig.run(30)
        rig.offset -= timedelta(hours=1)  # NTP steps the watcher's clock back an hour
        await rig.run(90)
        rig.offset += timedelta(hours=1)  # and forward again
        await rig.run(40)
        assert all(report.ok for report in rig.reports)
        assert_exactly_owed(rig)
        durations = [
            line for a in rig.alerts() for line in a.body.splitlines() if "Duration" in line
        ]
        assert durations
        assert not any("-" in line.removeprefix("- ") for line in durations), durations

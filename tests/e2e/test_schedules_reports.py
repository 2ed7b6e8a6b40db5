"""End to end: schedules, freshness and per-file reports through real delivery.

The simulator on loopback announces schedules and serves reports behind signed URLs; the
real runtime reads them; apprise delivers to loopback receivers. Each test reads what the
receivers got.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.conftest import HarnessFactory
from tests.harness import HOOK, TOKEN, Receivers, route, simulator
from watcher.simulator import Fault, FaultKind
from watcher.simulator.extras import signature

DAY = 86400
SCHEDULES: dict[str, Any] = {
    "schedules": {"grace": "1m", "read_every": "5m"},
}


def _kb(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "name": f"{key}-kb",
        "data_sources": [{"key": "s", "items": 20}],
        "history": [{"ago": DAY, "run": 300, "outcome": "completed"}],
        **extra,
    }


async def test_a_scheduled_run_without_a_job_is_missed_once_and_one_that_ran_is_not(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    """Two KBs scheduled at t=20 s; only one starts a job. The API's clock is 90 s ahead of
    the watcher's: the grace is judged on it."""
    scenario = {
        "knowledge_bases": [
            _kb("ran", schedule={"next_run": 20}),
            _kb("skipped", schedule={"next_run": 20}),
        ],
        "timeline": [{"at": 20, "start_job": {"kb": "ran", "pending": 1, "run": 5}}],
    }
    sim = simulator(scenario, api_clock_offset=90)
    harness = await make_harness(sim, [route(HOOK, receivers.urls()[HOOK])], **SCHEDULES)

    await harness.cycle()  # reads both schedules: each waits for its run at t=20
    await harness.run(100, every=10)  # t=100: past 20 + 60 s of grace
    await harness.restart()  # a restart neither forgets the run nor alerts it again,
    mark = len(sim.requests)
    await harness.step(10)  # nor reads the schedules again before their turn (5 min)
    reads_after_restart = [r for r in harness.requests_since(mark) if "scheduled-indexing" in r]
    await harness.run(600, every=60)

    alerts = [a for a in receivers.alerts(HOOK) if a.kind == "schedule_missed"]
    assert [a.subject for a in alerts] == ["skipped-kb"]
    assert reads_after_restart == []
    assert "started no indexing job within 1 min" in alerts[0].body
    assert alerts[0].mentions(sim.kb_uuid("skipped"))


async def test_a_schedule_turned_off_is_alerted_once(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    scenario = {
        "knowledge_bases": [_kb("paused", schedule={"next_run": 3600, "days": [1, 3, 5]})],
        "timeline": [{"at": 60, "disable_schedule": "paused"}],
    }
    sim = simulator(scenario)
    harness = await make_harness(sim, [route(HOOK, receivers.urls()[HOOK])], **SCHEDULES)

    await harness.cycle()  # read at t=0: on
    await harness.run(1200, every=60)  # read again every 5 min: off from t=60

    kinds = receivers.kinds(HOOK)
    assert kinds.count("schedule_disabled") == 1, kinds
    (alert,) = [a for a in receivers.alerts(HOOK) if a.kind == "schedule_disabled"]
    assert alert.subject == "paused-kb"
    assert "will not be indexed automatically" in alert.body
    assert "schedule_missed" not in kinds  # a schedule turned off misses nothing


async def test_a_kb_goes_stale_past_fresh_within_and_fresh_with_its_next_completed_job(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    """Its last completed job finished 24 h 55 min before t=0; fresh_within is 25h."""
    scenario = {
        "knowledge_bases": [
            {
                "key": "aging",
                "name": "aging-kb",
                "data_sources": [{"key": "s", "items": 20}],
                "history": [{"ago": 90000, "run": 300, "outcome": "completed"}],
            }
        ],
        "timeline": [{"at": 1500, "start_job": {"kb": "aging", "pending": 1, "run": 5}}],
    }
    sim = simulator(scenario, api_clock_offset=-90)
    harness = await make_harness(
        sim, [route(HOOK, receivers.urls()[HOOK])], freshness={"fresh_within": "25h"}
    )

    await harness.cycle()
    stale_by_200 = receivers.kinds(HOOK)
    await harness.run(1200, every=60)  # t=1200: 25 h 15 min since the finish
    stale_by_1200 = receivers.kinds(HOOK)
    await harness.run(600, every=30)  # the job at t=1500 completes

    assert "stale" not in stale_by_200
    assert stale_by_1200.count("stale") == 1
    kinds = [k for k in receivers.kinds(HOOK) if k in ("stale", "fresh")]
    assert kinds == ["stale", "fresh"]
    stale = next(a for a in receivers.alerts(HOOK) if a.kind == "stale")
    assert stale.subject == "aging-kb"
    assert "it should be fresh within 25 h" in stale.body


REPORT_SCENARIO: dict[str, Any] = {
    "knowledge_bases": [_kb("gaps"), _kb("fine")],
    "timeline": [
        {
            "at": 5,
            "start_job": {
                "kb": "gaps",
                "id": "gaps-1",
                "pending": 1,
                "run": 6,
                "outcome": "partial",
            },
        },
        {"at": 5, "start_job": {"kb": "fine", "id": "fine-1", "pending": 1, "run": 6}},
    ],
}


async def test_a_partial_alert_says_the_report_was_kept_and_its_top_errors_and_the_cli_gives_it_back(  # noqa: E501
    make_harness: HarnessFactory, receivers: Receivers, tmp_path: Path
) -> None:
    sim = simulator(REPORT_SCENARIO)
    harness = await make_harness(sim, [route(HOOK, receivers.urls()[HOOK])])
    await harness.cycle()
    await harness.run(30, every=5)
    gaps, fine = sim.job_uuid("gaps-1"), sim.job_uuid("fine-1")

    (partial,) = [a for a in receivers.alerts(HOOK) if a.kind == "partial"]
    assert f"Per-file report kept: watcher report {gaps}" in partial.body
    assert "Most frequent errors" in partial.body
    assert "- 2 × file_parse_error" in partial.body.replace("\\", "")
    completed = next(a for a in receivers.alerts(HOOK) if a.kind == "completed")
    assert "Per-file report" not in completed.body  # kept, but only failures talk about it
    kept = tmp_path / "reports"
    assert (kept / f"{gaps}.csv").read_bytes().startswith(b"file,data_source_uuid,status,error")
    assert (kept / f"{fine}.csv").is_file()

    await harness.stop()
    config = _config_file(tmp_path, harness.base_url)
    shown = _cli("report", gaps, config=config)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (kept / f"{gaps}.csv").read_bytes()
    out = tmp_path / "copy.csv"
    assert _cli("report", gaps, "--output", str(out), config=config).returncode == 0
    assert out.read_bytes() == shown.stdout

    unknown = _cli("report", "00000000-0000-4000-8000-00000000dead", config=config)
    assert unknown.returncode == 1 and b"unknown job" in unknown.stderr
    history = _history_job(harness)
    none = _cli("report", history, config=config)
    assert none.returncode == 1 and b"has no per-file report kept" in none.stderr


async def test_a_report_that_cannot_be_downloaded_never_holds_the_alert_back(
    make_harness: HarnessFactory, receivers: Receivers, tmp_path: Path
) -> None:
    sim = simulator(REPORT_SCENARIO)
    sim.inject(Fault(FaultKind.SERVER_ERROR, status=500, count=None, path_prefix="/_spaces/"))
    harness = await make_harness(sim, [route(HOOK, receivers.urls()[HOOK])])
    await harness.cycle()
    await harness.run(30, every=5)

    (partial,) = [a for a in receivers.alerts(HOOK) if a.kind == "partial"]
    assert "A per-file report exists but could not be kept" in partial.body
    assert not list((tmp_path / "reports").glob("*.csv"))
    assert any(log["event"] == "job_report_not_kept" for log in harness.logs)


async def test_the_signed_url_is_never_logged_stored_or_alerted(
    make_harness: HarnessFactory, receivers: Receivers, tmp_path: Path
) -> None:
    """The signature of every report URL the simulator signed appears nowhere: not in the
    logs (debug included), not in the state file or the reports, not in any alert."""
    sim = simulator(REPORT_SCENARIO)
    sim.inject(Fault(FaultKind.SERVER_ERROR, status=500, count=1, path_prefix="/_spaces/"))
    harness = await make_harness(sim, [route(HOOK, receivers.urls()[HOOK])])
    await harness.cycle()
    await harness.run(30, every=5)

    jobs = [sim.job_uuid("gaps-1"), sim.job_uuid("fine-1")]
    signatures = [signature(TOKEN, job) for job in jobs]
    served = [r for r in sim.requests if r.path.startswith("/_spaces/")]
    assert len(served) >= 2  # the URLs were handed out and used
    await harness.stop()  # the store is read whole only once its connection is closed
    logs = json.dumps(harness.logs, default=str)
    files = _every_file(tmp_path)
    bodies = [r.body.decode() for r in receivers.hook.requests]
    for sig in signatures:
        for text in (logs, *files, *bodies):
            assert sig[:16] not in text


def _every_file(folder: Path) -> list[str]:
    """Every file under `folder` (the store, its WAL, the reports), as latin-1 text."""
    return [p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file()]


def _history_job(harness: Any) -> str:
    """A job of the scenario's history: seen by the watcher, finished before it started."""
    moments = harness.sim.transitions()
    created = sorted((m.at, m.job_uuid) for m in moments if m.kind == "created")
    return str(created[0][1])


def _config_file(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text(
        f'[api]\nbase_url = "{base_url}"\n[state]\npath = "{tmp_path / "watcher.db"}"\n'
        '[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:9/x"]\n',
        encoding="utf-8",
    )
    return path


def _cli(*args: str, config: Path) -> subprocess.CompletedProcess[bytes]:
    """The real `watcher` command line, in its own process."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "watcher"), *args, "--config", str(config)],
        capture_output=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "WATCHER_LOG__FORMAT": "json"},
    )

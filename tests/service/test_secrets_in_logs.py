"""A full run of the daemon at debug level never shows a secret, and its logs are useful data.

One scenario exercises everything that could print a secret: every event of the demo, a phase
in which the API refuses the token (401, with api_unreachable/api_recovered alerts), and a
route whose apprise URL carries a password and a token and whose receiver keeps failing.
Everything the user can see is then searched: all of the daemon's stdout and stderr, what
`status`, `status --json`, `check-config` and `test-notify` print, `/metrics`, `/readyz`,
the alerts the receivers got, and the state file itself.
"""

from __future__ import annotations

import signal
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.service.conftest import (
    TOKEN,
    Route,
    Service,
    WatcherProcess,
    config_text,
    http_get,
    metrics_url,
)
from watcher.simulator import RealClock, Simulator, load_scenario

PASSWORD = "Sup3rS3cretPass"
URL_TOKEN = "abcdef1234567890XYZ"
SECRETS = (TOKEN, PASSWORD, URL_TOKEN)
# Lines a daemon writes outside any cycle: start-up, and libraries' own housekeeping.
OUTSIDE_CYCLES = {"health_server_started", "http_listening", "watcher_started"}
HOUSEKEEPING_LOGGERS = ("apscheduler", "asyncio")


def _run_everything(service: Service) -> tuple[WatcherProcess, list[str]]:
    """Run the scenario and every read-out command; the daemon and what else was shown."""
    sim = Simulator(load_scenario("demo"), token=TOKEN, clock=RealClock(speed=5))
    base_url = service.serve(sim)
    ok, failing = service.receiver(), service.receiver()
    failing.answer(500)
    leaky = f"json://user:{PASSWORD}@127.0.0.1:{failing.port}/hook?token={URL_TOKEN}"
    routes = [Route("ops", (ok.url_json(),)), Route("leaky", (leaky,))]
    text = config_text(
        base_url=base_url,
        state=service.state,
        routes=routes,
        listen="127.0.0.1:0",
        level="debug",
        fmt="auto",
        extra='[alerts]\napi_unreachable_after = "0s"\n',
    )
    service.write_config(text)
    proc = service.start("run")
    proc.wait_for_log("job_cancelled", timeout=30)  # the demo's last scripted moment

    sim.token = "dop_v1_" + "ab" * 32  # the account's token is revoked for a while: 401s
    proc.wait_for_log("cycle_fetch_failed", count=2)
    sim.token = TOKEN
    proc.wait_for_log("api_recovered")

    shown = [http_get(metrics_url(proc, path))[1] for path in ("/metrics", "/readyz")]
    for args in (("status", "--json"), ("status",), ("check-config",), ("test-notify",)):
        result = service.cli(*args)
        assert result.returncode == (1 if args == ("test-notify",) else 0), result.stderr
        shown += [result.stdout, result.stderr]
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0, proc.tail()
    shown += [r.body.decode() for receiver in (ok, failing) for r in receiver.requests]
    assert failing.requests and ok.requests
    return proc, shown


@dataclass(frozen=True, slots=True)
class FullRun:
    service: Service
    proc: WatcherProcess
    shown: list[str]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullRun]:
    """One run of the whole scenario, shared by the tests of this module (it takes a while)."""
    service = Service(tmp_path_factory.mktemp("secrets"))
    try:
        proc, shown = _run_everything(service)
        yield FullRun(service, proc, shown)
    finally:
        service.close()


def test_no_secret_appears_in_logs_commands_metrics_alerts_or_the_state_file(
    full_run: FullRun,
) -> None:
    service, proc, shown = full_run.service, full_run.proc, full_run.shown

    assert len(proc.lines) > 100
    assert proc.records("alert_failed", route="leaky")
    everything = "\n".join([proc.output, *shown])
    for secret in SECRETS:
        assert secret not in everything
    for path in service.dir.glob("watcher.db*"):
        assert not any(s.encode() in path.read_bytes() for s in SECRETS), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_logs_are_json_lines_off_a_terminal_and_carry_cycle_and_job_context(
    full_run: FullRun,
) -> None:
    proc = full_run.proc

    # Not a terminal: every line on both streams is one JSON object.
    assert all(line.record is not None for line in proc.lines), [
        line.text for line in proc.lines if line.record is None
    ][:5]
    records = proc.records()
    stop = next(i for i, r in enumerate(records) if r["event"] == "stop_requested")
    in_cycles = [r for r in records[:stop] if not _outside_cycles(r)]
    assert [r for r in in_cycles if not r.get("cycle_id")] == []
    finished = [r for r in records if r["event"] == "cycle_finished"]
    assert len({r["cycle_id"] for r in finished}) == len(finished) > 5
    jobs = [r for r in records if r["event"].startswith("job_")]
    assert {r["event"] for r in jobs} >= {"job_started", "job_completed", "job_failed"}
    assert all(r.get("kb") and r.get("job") for r in jobs)


def _outside_cycles(record: dict[str, Any]) -> bool:
    logger = str(record.get("logger", ""))
    return record["event"] in OUTSIDE_CYCLES or logger.startswith(HOUSEKEEPING_LOGGERS)

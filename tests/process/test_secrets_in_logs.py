"""A full run of the daemon at debug level never shows a secret, and its logs are useful data.

One scenario exercises everything that could print a secret: every event of the demo, a phase
in which the API refuses the token (401, with api_unreachable/api_recovered alerts), a phase in
which a gateway echoes the request's headers, token included, into its error messages, and a
route whose apprise URL carries a secret in every place apprise allows (password, webhook
path, token argument, header argument) and whose receiver keeps failing. Everything the user
can see is then searched, for each secret whole and for any eight characters of it in a row:
all of the daemon's stdout and stderr, what `status`, `status --json`, `check-config` and
`test-notify` print, `/metrics`, `/readyz`, the alerts the receivers got, and the state file.
"""

from __future__ import annotations

import signal
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.process.conftest import (
    TOKEN,
    Route,
    Service,
    WatcherProcess,
    config_text,
    http_get,
    metrics_url,
)
from watcher.simulator import Fault, FaultKind, RealClock, Simulator, load_scenario

# One worker runs the module under pytest-xdist: its shared run (`full_run`) is made once.
# (Ignored under pytest 9.2 until pytest-xdist issue 1386 is fixed: see pyproject.toml.)
pytestmark = pytest.mark.xdist_group("secrets-in-logs")

PASSWORD = "Sup3rS3cretPass"
URL_TOKEN = "abcdef1234567890XYZ"
PATH_TOKEN = "Wq7TzXk2pLm9"  # a generic webhook's secret path segment
HEADER_KEY = "Hk4vNq8RsYw2"  # an `+X-Api-Key=` header argument
# the token's `dop_v1_` prefix is public: it says what kind of token it is, and stays
SECRETS = (TOKEN.removeprefix("dop_v1_"), PASSWORD, URL_TOKEN, PATH_TOKEN, HEADER_KEY)
# Lines a daemon writes outside any cycle: start-up, and libraries' own housekeeping.
OUTSIDE_CYCLES = {"health_server_started", "http_listening", "watcher_started"}
HOUSEKEEPING_LOGGERS = ("apscheduler", "asyncio", "watcher.service.lease_keeper")  # between cycles


def _run_everything(service: Service) -> tuple[WatcherProcess, list[str]]:
    """Run the scenario and every read-out command; the daemon and what else was shown."""
    # Held until the daemon's first cycle: starting a process takes seconds on a loaded machine,
    # and jobs that finished before the first look are history, not news.
    clock = RealClock(speed=5, held=True)
    sim = Simulator(load_scenario("demo"), token=TOKEN, clock=clock)
    base_url = service.serve(sim)
    ok, failing = service.receiver(), service.receiver()
    failing.answer(500)
    leaky = (
        f"json://user:{PASSWORD}@127.0.0.1:{failing.port}/hooks/{PATH_TOKEN}"
        f"?token={URL_TOKEN}&+X-Api-Key={HEADER_KEY}"
    )
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
    proc.wait_for_log("cycle_finished")
    clock.release()
    proc.wait_for_log("job_cancelled", timeout=30)  # the demo's last scripted moment

    sim.token = "dop_v1_" + "ab" * 32  # the account's token is revoked for a while: 401s
    proc.wait_for_log("cycle_fetch_failed", count=2)
    sim.token = TOKEN
    proc.wait_for_log("api_recovered")

    # a gateway that quotes every request header, Authorization included, in its 500s
    sim.inject(Fault(FaultKind.ECHO_HEADERS, count=None))
    proc.wait_for_log("api_unreachable", count=2)
    sim.clear_faults()
    proc.wait_for_log("api_recovered", count=2)

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
    stored = [path.read_bytes().decode("latin-1") for path in service.dir.glob("watcher.db*")]
    for secret in SECRETS:
        for text in (everything, *stored):
            assert not [run for run in _runs(secret) if run in text], secret
    for path in service.dir.glob("watcher.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_no_per_file_report_url_appears_anywhere(full_run: FullRun) -> None:
    """The daemon kept the demo's reports, fetched through signed URLs (a credential): no
    signature or signing key of one shows in its debug logs, commands, alerts or state."""
    service, proc, shown = full_run.service, full_run.proc, full_run.shown
    assert proc.records("job_report_kept")
    assert "/_spaces/reports/" in proc.output  # httpx's request lines name them, masked
    stored = [
        path.read_bytes().decode("latin-1") for path in service.dir.rglob("*") if path.is_file()
    ]
    everything = "\n".join([proc.output, *shown, *stored])
    assert "X-Amz-Signature=" not in everything.replace("X-Amz-Signature=***", "")
    assert "SIMKEY" not in everything


def test_the_echoed_authorization_header_reached_the_alert_masked(full_run: FullRun) -> None:
    """The gateway's words arrive (they say what went wrong), the token in them does not."""
    echoed = [text for text in full_run.shown if "request headers" in text]
    assert echoed, "no alert quoted the gateway's message"
    assert all("authorization" in text and TOKEN[7:17] not in text for text in echoed)


def _runs(secret: str, width: int = 8) -> set[str]:
    """Every run of `width` characters of `secret`. Not fewer: the logs are full of random hex
    (uuids, cycle ids), and five characters of a hex token turn up in them by chance."""
    return {secret[i : i + width] for i in range(len(secret) - width + 1)}


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

"""A real `watcher run` whose wall clock NTP steps, under libfaketime (Debian's `faketime`).

libfaketime is preloaded into the daemon alone (the simulated API and the receiver run in the
test process, on the true clock). `FAKETIME_TIMESTAMP_FILE` lets the test step the running
process's wall clock by rewriting one file, read again every second
(`FAKETIME_CACHE_DURATION=1`; `FAKETIME_NO_CACHE=1` would read it at every clock call, which
makes a Python process crawl); `FAKETIME_DONT_FAKE_MONOTONIC` keeps CLOCK_MONOTONIC (and
CLOCK_BOOTTIME) true, as an NTP step does. Under it Python 3.11's `time.sleep` fails with
EINVAL (libfaketime issue 426): the daemon never calls it. `.ci/run` installs `faketime` when
it is missing; without it these tests are skipped, saying so.
"""

from __future__ import annotations

import glob
import itertools
import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.harness import alerts_of
from tests.process.conftest import (
    TOKEN,
    Route,
    Service,
    WatcherProcess,
    config_text,
    free_port,
    http_get,
    wait_for,
)
from watcher.core.model import EventKind
from watcher.simulator import RealClock, Simulator
from watcher.simulator.loading import parse_scenario

INTERVAL = 1.0


def libfaketime() -> str | None:
    """The path of libfaketime.so.1, wherever the distribution put it."""
    patterns = ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib*/faketime/libfaketime.so.1")
    found = sorted(path for pattern in patterns for path in glob.glob(pattern))
    return found[0] if found else None


@pytest.fixture
def faketime(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The file that sets the daemon's clock offset ("+0" now), and the env that applies it."""
    library = libfaketime()
    if library is None:
        pytest.skip("libfaketime is not installed (apt-get install faketime; .ci/run does)")
    control = tmp_path / "faketime.rc"
    control.write_text("+0\n", encoding="ascii")
    yield (
        control,
        {
            "LD_PRELOAD": library,
            "FAKETIME_TIMESTAMP_FILE": str(control),
            "FAKETIME_CACHE_DURATION": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # libfaketime 0.9.10's name...
            "DONT_FAKE_MONOTONIC": "1",  # ...and the older one
            "NO_FAKE_STAT": "1",  # file times stay true: SQLite and the config file need nothing
        },
    )


def step(control: Path, offset: timedelta) -> None:
    """Step the daemon's wall clock to `offset` from the true time (as NTP would)."""
    control.write_text(f"{int(offset.total_seconds()):+d}\n", encoding="ascii")


def scenario() -> dict[str, Any]:
    """`burst`: a long job that moves one second in three (no_progress_after is 5 s). Jobs
    started through the API (`quick`, by the test) stay pending half a second, then run for
    minutes: the test ends them itself, once the watcher has shown it saw them."""
    frozen = [{"after": 1 + 3 * n, "for": 2} for n in range(40)]
    sources = [{"key": "main", "items": 600}]
    return {
        "name": "clock-steps",
        "on_start": {"pending": 0.5, "run": 600, "outcome": "completed"},
        "knowledge_bases": [
            {"key": "docs", "name": "docs-kb", "data_sources": sources},
            {"key": "wiki", "name": "wiki-kb", "data_sources": sources},
        ],
        "timeline": [
            {
                "at": 2,
                "start_job": {
                    "kb": "docs",
                    "id": "burst",
                    "pending": 0.5,
                    "run": 120,
                    "stalls": frozen,
                },
            },
        ],
    }


def call_api(base_url: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One request to the simulated API, as a user's script would make it (the token)."""
    request = urllib.request.Request(
        base_url.rstrip("/") + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def answered(receiver: Any, status: int) -> list[tuple[str | None, EventKind]]:
    """The (job, event) of each alert the receiver answered with `status`, oldest first."""
    return [a.key for a in alerts_of([r for r in receiver.requests if r.answered == status])]


def delivered(receiver: Any) -> list[tuple[str | None, EventKind]]:
    return answered(receiver, 200)


def refused(receiver: Any) -> list[tuple[str | None, EventKind]]:
    return answered(receiver, 500)


def wall_offsets(proc: WatcherProcess, since: float) -> list[float]:
    """How far the daemon's wall clock stood from the true one, line by line since `since`
    (monotonic): each JSON line's `timestamp` against the true time it was read (a line is
    read within milliseconds of being written)."""
    now_wall, now_mono = time.time(), time.monotonic()
    found = []
    for line in proc.lines:
        stamp = line.record.get("timestamp") if line.record else None
        if line.at >= since and isinstance(stamp, str):
            written = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            found.append(written - (now_wall - (now_mono - line.at)))
    return found


def finishes(proc: WatcherProcess, since: float) -> list[tuple[float, float]]:
    """Each cycle that finished since `since`: when the test read its `cycle_finished` line
    (monotonic) and the cycle's own `duration_s`."""
    return [
        (line.at, float(line.record["duration_s"]))
        for line in proc.lines
        if line.at >= since and line.record and line.record.get("event") == "cycle_finished"
    ]


def late_starts(proc: WatcherProcess, since: float) -> list[float]:
    """How much later than on time each cycle since `since` began, in seconds.

    A cycle is on time when it begins one interval after the previous one began (or at once
    when that one overran): from one finish to the next that is at most the interval plus
    the later cycle's own duration. Measured when the test read the lines, on its own clock.
    """
    ends = finishes(proc, since)
    return [max(0.0, (b - a) - INTERVAL - took) for (a, _), (b, took) in itertools.pairwise(ends)]


# Each wait below ends on what the watcher showed (an alert, a log line), never on a moment
# of the simulated timeline: on a loaded machine (CI's two workers on two cores) one cycle can
# take seconds, and a job that lived four seconds was once history before the watcher looked.
# Where the seconds go: the store's commits (`synchronous=FULL`) wait for the disk, which other
# processes' writes keep busy (a cycle stood 1.5 s in `COMMIT` beside two writers of 64 MB).
# Every timeout and bound stays well under the smallest step (60 s): a watcher that waited on
# its wall clock would stand still for the length of the step, or an hour.
SLACK = 40.0


@pytest.mark.parametrize(
    "offset", [timedelta(seconds=-60), timedelta(hours=1)], ids=["-60s", "+1h"]
)
def test_a_stepped_clock_keeps_polling_at_its_interval_with_no_false_stall_and_no_held_alert(
    service: Service, faketime: tuple[Path, dict[str, str]], offset: timedelta
) -> None:
    control, fake_env = faketime
    # Held until the daemon's first cycle: on a loaded machine the process starts seconds
    # late, and `burst` would be history by its first look (no alert owed).
    clock = RealClock(held=True)
    sim = Simulator(parse_scenario(scenario(), "clock-steps"), token=TOKEN, clock=clock)
    base_url = service.serve(sim)
    receiver = service.receiver()
    port = free_port()
    extra = '[stall]\nno_progress_after = "5s"\npending_after = "1m"\n'
    text = config_text(
        base_url=base_url,
        state=service.state,
        routes=[Route("ops", (receiver.url_json("/ops"),))],
        interval=f"{INTERVAL:g}s",
        listen=f"127.0.0.1:{port}",
        extra=extra,
    )
    service.write_config(text)
    env = service.env(**fake_env)
    proc = service.start("run", env=env)
    proc.wait_for_log("cycle_finished")
    clock.release()
    at = lambda seconds: sim.sync() >= sim.t0 + timedelta(seconds=seconds)  # noqa: E731
    wait_for(lambda: at(3), SLACK, "burst to start")
    burst = sim.job_uuid("burst")
    wait_for(lambda: (burst, EventKind.STARTED) in delivered(receiver), SLACK, "burst's start")

    receiver.answer(500)  # the receiver fails...
    step(control, offset)  # ...while NTP steps the watcher's clock
    stepped_at = time.monotonic()
    seconds = offset.total_seconds()
    stepped = lambda: any(abs(o - seconds) < 5 for o in wall_offsets(proc, stepped_at))  # noqa: E731
    wait_for(stepped, SLACK, "the daemon's wall clock to step")
    # a job starts and is cancelled on the stepped clock, its alerts held
    started = call_api(
        base_url,
        "POST",
        "/v2/gen-ai/indexing_jobs",
        {"knowledge_base_uuid": sim.kb_uuid("wiki"), "data_source_uuids": []},
    )
    quick = str(started["job"]["uuid"])
    wait_for(lambda: (quick, EventKind.STARTED) in refused(receiver), SLACK, "a refused start")
    call_api(base_url, "PUT", f"/v2/gen-ai/indexing_jobs/{quick}/cancel", {"uuid": quick})
    cancelled = (quick, EventKind.CANCELLED)
    # recorded, and held behind the refused start (a route delivers in order)
    wait_for(lambda: proc.records("job_cancelled", job=quick), SLACK, "the cancellation seen")
    # during the step the daemon polls on, and every probe says healthy
    assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    status, body = http_get(f"http://127.0.0.1:{port}/readyz")
    assert status == 200, body
    probe = service.cli("health", env=env)
    assert probe.returncode == 0, probe.stderr

    assert cancelled not in delivered(receiver)
    receiver.answer(200)  # the receiver is back...
    step(control, timedelta(0))  # ...and the clock fixed
    fixed_at = time.monotonic()
    # retry_max is 1 s: a retry time further ahead can only be the step, and is due now
    wait_for(lambda: cancelled in delivered(receiver), SLACK, "the held alerts")
    held = time.monotonic() - fixed_at
    # and the daemon polls on after the fix (a wait on the wall clock would stand an hour)
    since = time.monotonic()
    wait_for(lambda: len(finishes(proc, since)) >= 3, SLACK, "three cycles after the fix")
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0, proc.tail()

    got = delivered(receiver)
    assert got.count((burst, EventKind.STARTED)) == 1
    assert got.count((quick, EventKind.STARTED)) == 1
    assert got.count(cancelled) == 1
    assert got.index((quick, EventKind.STARTED)) < got.index(cancelled)
    assert not [k for k in got if k[1] is EventKind.STALLED], got  # burst never stood 5 s
    assert held < SLACK / 2, held  # a cycle or two (seconds when loaded), never the step
    # each cycle from the step on began on time after the one before (the durations of slow
    # cycles are their own; only a wait between cycles counts as late)
    late = late_starts(proc, stepped_at)
    assert late and max(late) < 10.0, late
    assert not proc.records("cycle_failed")


def test_the_preloaded_library_fakes_the_wall_clock_but_not_the_monotonic_one(
    service: Service, faketime: tuple[Path, dict[str, str]]
) -> None:
    """The rig itself: what the daemon will see under it (a guard against a silent no-op)."""
    import subprocess
    import sys

    control, fake_env = faketime
    step(control, timedelta(hours=-1))
    probe = "import json, time; print(json.dumps([time.time(), time.monotonic()]))"
    env = service.env(**fake_env)
    before_wall, before_mono = time.time(), time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    wall, mono = json.loads(done.stdout)
    assert wall - before_wall == pytest.approx(-3600, abs=5)
    assert mono - before_mono == pytest.approx(0, abs=5)

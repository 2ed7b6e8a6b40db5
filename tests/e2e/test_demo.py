"""End to end: `watcher demo` as a user runs it, shows every job event of the contract."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from tests.harness import HEADLINES
from tests.storeguard import guard_env
from watcher.core.model import EventKind

# `corrected` needs an API that contradicts itself (tests/promises/test_api_answers.py); the
# demo's simulated account never does. `cost_spike` and `remediated` need `[cost]` and
# `[remediation]` settings the demo does not make (tests/e2e/test_remediation.py).
_NOT_IN_DEMO = {EventKind.CORRECTED, EventKind.COST_SPIKE, EventKind.REMEDIATED}
JOB_EVENTS = [
    kind for kind in HEADLINES if EventKind(kind).is_about_a_job and kind not in _NOT_IN_DEMO
]
# An alert as apprise's console:// scheme prints it: a boxed title line, "<icon> <KB>: <headline>"
_TITLE = re.compile(r"^│?\s*\S+\s+(?P<kb>[\w.-]+): (?P<headline>[a-z ()]+)$")


def _watcher_command() -> str:
    beside = Path(sys.executable).parent / "watcher"
    found = str(beside) if beside.exists() else shutil.which("watcher")
    assert found, "the `watcher` console script is not installed in this environment"
    return found


def _alerted_kinds(output: str) -> list[str]:
    by_headline = {headline: kind for kind, headline in HEADLINES.items()}
    kinds = []
    for line in output.splitlines():
        match = _TITLE.match(line.strip())
        if match and match["headline"] in by_headline:
            kinds.append(by_headline[match["headline"]])
    return kinds


def test_the_demo_prints_an_alert_of_every_job_event_kind_and_exits_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN"))}
    env = guard_env(env)  # the demo's daemon runs under the store guard too
    done = subprocess.run(
        [_watcher_command(), "demo", "--duration", "20", "--speed", "3"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    kinds = _alerted_kinds(done.stdout)
    missing = [kind for kind in JOB_EVENTS if kind not in kinds]
    assert not missing, f"no alert printed for {missing}; printed: {kinds}"
    # the closing summary counts what the store recorded: every kind at least once
    for kind in JOB_EVENTS:
        assert re.search(rf"✔ {kind}: [1-9]", done.stdout), kind
    assert "Traceback" not in done.stderr


def test_the_demo_on_a_taken_port_says_so_before_any_banner_and_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [_watcher_command(), "demo", "--port", str(port), "--duration", "5"],
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stdout == ""  # no banner promising a page that never comes
    assert f"watcher demo: --port {port}: 127.0.0.1:{port} is in use" in done.stderr

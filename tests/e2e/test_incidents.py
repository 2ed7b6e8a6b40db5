"""End to end: incidents, reminders, `watcher ack` and escalation, with the simulated API, the
real runtime, apprise posting to a loopback webhook, and the real `watcher` command.

The watcher's elapsed clock follows the simulator's manual clock (see `tests.harness`), so
"4 minutes later" is `sim.advance`; a step of the watcher's wall clock alone is
`Harness.offset`, which reminders must not notice.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.e2e.conftest import HarnessFactory
from tests.harness import Alert, Harness, route, simulator
from tests.receivers import WebhookReceiver
from tests.storeguard import guard_env
from watcher.core.model import EventKind

E = EventKind


def _scenario(*jobs: tuple[str, float, str]) -> dict[str, Any]:
    """One KB `docs` with a completed job a day ago, then `jobs` as (id, start, outcome)."""
    return {
        "name": "incidents",
        "knowledge_bases": [
            {
                "key": "docs",
                "name": "docs",
                "data_sources": [{"key": "main", "items": 20}],
                "history": [{"ago": 86400, "run": 300, "outcome": "completed"}],
            }
        ],
        "timeline": [
            {
                "at": at,
                "start_job": {
                    "kb": "docs",
                    "id": job,
                    "pending": 2,
                    "run": 8,
                    "outcome": outcome,
                    **({"error_msg": "crawl_blocked"} if outcome == "failed" else {}),
                },
            }
            for job, at, outcome in jobs
        ],
    }


def _routes(hook: WebhookReceiver, **ops: str) -> list[dict[str, Any]]:
    """`ops` hears failures and outcomes (with `ops`' incident keys); `pager` asks for
    nothing of the jobs: it hears only what `ops` escalates to it."""
    return [
        {
            **route("ops", hook.url_json("/ops"), ["failed", "partial", "stalled", "completed"]),
            **ops,
        },
        route("pager", hook.url_json("/pager"), ["api_unreachable"]),
    ]


def _kinds(alerts: list[Alert]) -> list[object]:
    return [a.kind for a in alerts]


def _write_config(h: Harness, tmp_path: Path) -> Path:
    """The harness's config as a TOML file, for the `watcher` command."""
    lines = [
        f'[api]\nbase_url = "{h.base_url}"\n',
        f'[state]\npath = "{h.state_path}"\n',
    ]
    for r in h.routes:
        lines.append(f'[[routes]]\nname = "{r["name"]}"\nurls = ["{r["urls"][0]}"]\n')
        lines.append("events = [" + ", ".join(f'"{e}"' for e in r["events"]) + "]\n")
    path = tmp_path / "watcher.toml"
    path.write_text("\n".join(lines))
    return path


async def _watcher(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed `watcher` command, as a user runs it (in a thread: the loop runs on)."""
    beside = Path(sys.executable).parent / "watcher"
    command = str(beside) if beside.exists() else shutil.which("watcher")
    assert command, "the `watcher` console script is not installed in this environment"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN"))}
    return await asyncio.to_thread(
        subprocess.run,
        [command, *args],
        env=guard_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_failure_is_reminded_each_period_until_acknowledged_with_the_cli(
    make_harness: HarnessFactory, receivers: Any, tmp_path: Path
) -> None:
    hook = receivers.hook
    h = await make_harness(
        simulator(_scenario(("job-1", 10, "failed"))), _routes(hook, repeat_after="4m")
    )
    h.receiver = hook
    await h.cycle()
    await h.run(30, every=10)  # the job fails at about t=20
    assert _kinds(h.alerts("/ops")) == [E.FAILED]

    h.offset = timedelta(hours=10)  # the wall clock steps 10 h ahead: no burst of reminders
    await h.run(120, every=30)
    assert _kinds(h.alerts("/ops")) == [E.FAILED]

    await h.run(120, every=30)  # 4 minutes after the failure alert, on the elapsed clock
    assert _kinds(h.alerts("/ops")) == [E.FAILED, E.REMINDER]
    reminder = h.alerts("/ops")[-1]
    assert reminder.subject == "docs"
    assert "1st failure in a row since" in reminder.body and "Reminder 1." in reminder.body
    assert _kinds(h.alerts("/pager")) == []

    config = _write_config(h, tmp_path)
    done = await _watcher(
        "ack", "docs", "--by", "ana", "--comment", "on it", "--config", str(config)
    )
    assert done.returncode == 0, done.stderr
    assert "acknowledged the incident of docs" in done.stdout and "as ana" in done.stdout

    await h.run(600, every=60)  # 10 more minutes: no more reminders
    assert _kinds(h.alerts("/ops")) == [E.FAILED, E.REMINDER]
    [incident] = (await h.status_json())["incidents"]
    assert incident["acknowledged"]["by"] == "ana"
    assert incident["acknowledged"]["comment"] == "on it"

    shown = await _watcher("status", "--config", str(config))
    assert "Open incidents: 1" in shown.stdout and "acknowledged by ana" in shown.stdout


async def test_ack_of_nothing_open_or_of_an_unknown_name_is_a_clear_error(
    make_harness: HarnessFactory, receivers: Any, tmp_path: Path
) -> None:
    h = await make_harness(simulator(_scenario()), _routes(receivers.hook))
    await h.run(20, every=10)
    config = _write_config(h, tmp_path)
    quiet = await _watcher("ack", "docs", "--config", str(config))
    assert quiet.returncode == 1
    assert "has no open incident: nothing to acknowledge" in quiet.stderr
    unknown = await _watcher("ack", "no-such-kb", "--config", str(config))
    assert unknown.returncode == 1
    assert "'no-such-kb' is neither a knowledge base" in unknown.stderr


async def test_an_unacknowledged_incident_is_escalated_once_and_closes_with_its_duration(
    make_harness: HarnessFactory, receivers: Any
) -> None:
    hook = receivers.hook
    jobs = (("job-1", 10, "failed"), ("job-2", 100, "failed"), ("job-3", 900, "completed"))
    h = await make_harness(
        simulator(_scenario(*jobs)), _routes(hook, escalate_after="5m", escalate_to="pager")
    )
    h.receiver = hook
    await h.cycle()
    await h.run(150, every=10)  # two failures in a row
    ops = h.alerts("/ops")
    assert _kinds(ops) == [E.FAILED, E.FAILED]
    assert "2nd failure in a row since" in ops[1].body
    assert _kinds(h.alerts("/pager")) == []

    await h.run(300, every=30)  # 5 minutes after ops first heard: on to the pager route
    [escalated] = h.alerts("/pager")
    assert escalated.kind is E.ESCALATED and escalated.subject == "docs"
    assert "Nobody acknowledged it within 5m on route ops." in escalated.body
    assert "2nd failure in a row" in escalated.body

    await h.run(600, every=60)  # job-3 completes at about t=910: the incident closes
    # once; and the pager, which got the escalation, hears it resolved (send_resolved)
    assert _kinds(h.alerts("/pager")) == [E.ESCALATED, E.COMPLETED]
    assert "Resolved after" in h.alerts("/pager")[-1].body
    assert _kinds(h.alerts("/ops")) == [E.FAILED, E.FAILED, E.COMPLETED]
    assert "Resolved after" in h.alerts("/ops")[-1].body
    assert (await h.status_json())["incidents"] == []


async def test_a_route_that_heard_the_failure_hears_it_resolved_without_asking_for_completed(
    make_harness: HarnessFactory, receivers: Any
) -> None:
    hook = receivers.hook
    jobs = (("job-1", 10, "failed"), ("job-2", 100, "completed"), ("job-3", 200, "completed"))
    routes = [route("ops", hook.url_json("/ops"), ["failed"])]  # completed not asked for
    h = await make_harness(simulator(_scenario(*jobs)), routes)
    h.receiver = hook
    await h.cycle()
    await h.run(300, every=10)
    ops = h.alerts("/ops")
    assert _kinds(ops) == [E.FAILED, E.COMPLETED]  # job-3's completed is no news to ops
    assert "Resolved after" in ops[1].body

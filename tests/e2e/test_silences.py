"""End to end: silences added, listed and expired with the real CLI beside a running watcher.

The watcher is the real runtime (`tests.harness`: the simulator on loopback, a real SQLite
file, apprise posting to a loopback webhook); `watcher silence ...` runs as its own process on
the same store, as a person would type it. The simulator's clock starts at the real time, so
the silence's end (the CLI's wall clock) and the watcher's wall clock (the simulated one) agree.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.harness import TOKEN, Harness, job_scenario, open_harness, route
from tests.receivers import WebhookReceiver
from watcher.core.model import EventKind
from watcher.simulator import ManualClock, Simulator
from watcher.simulator.loading import parse_scenario

WATCHER = str(Path(sys.executable).parent / "watcher")


def world(jobs: list[dict[str, Any]]) -> Simulator:
    """alpha-kb and beta-kb, `jobs` on them, on a simulated clock that starts now."""
    scenario = parse_scenario(job_scenario(["alpha", "beta"], jobs), "silences")
    return Simulator(scenario, token=TOKEN, clock=ManualClock(datetime.now(UTC)))


@pytest.fixture
async def watcher(
    tmp_path: Path, webhook_receiver: WebhookReceiver, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    sim = world(request.param)
    routes = [route("ops", webhook_receiver.url_json("/ops"))]
    async with open_harness(sim, tmp_path, webhook_receiver, routes=routes) as harness:
        await harness.cycle()  # the first run: the baseline, no alert
        config = tmp_path / "watcher.toml"
        config.write_text(
            f'[api]\nbase_url = "{harness.base_url}"\n'
            f'[state]\npath = "{harness.state_path}"\n'
            f'[[routes]]\nname = "ops"\nurls = ["{webhook_receiver.url_json("/ops")}"]\n',
            encoding="utf-8",
        )
        yield harness


async def cli(harness: Harness, *args: str) -> tuple[int, str, str]:
    """`watcher ARGS --config ...` as its own process; (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN_"))}
    config = str(harness.state_path.parent / "watcher.toml")
    process = await asyncio.create_subprocess_exec(
        WATCHER,
        *args,
        "--config",
        config,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def kinds(harness: Harness, subject: str) -> list[EventKind | str]:
    return [a.kind for a in harness.alerts("/ops") if a.subject == subject]


ALPHA_FAILS = [
    {"kb": "alpha", "id": "a1", "at": 10, "run": 20, "outcome": "failed"},
    {"kb": "beta", "id": "b1", "at": 10, "run": 20, "outcome": "completed"},
]


@pytest.mark.parametrize("watcher", [ALPHA_FAILS], indirect=True)
async def test_a_silence_added_beside_the_watcher_holds_a_failure_and_its_end_announces_it_once(
    watcher: Harness,
) -> None:
    code, out, err = await cli(
        watcher, "silence", "add", "--kb", "alpha-kb", "--event", "*", "--for", "2h",
        "--comment", "reindexing by hand", "--by", "alice",
    )  # fmt: skip
    assert code == 0, err
    silence_id = out.strip()
    assert len(silence_id) == 10 and "until" in err

    await watcher.run(60)  # alpha's job starts and fails; beta's starts and completes
    assert kinds(watcher, "alpha-kb") == []  # held, not sent
    assert kinds(watcher, "beta-kb") == [EventKind.STARTED, EventKind.COMPLETED]
    status = await watcher.status_json()
    assert status["deliveries"]["by_state"]["silenced"] == 2  # recorded, never lost

    code, out, err = await cli(watcher, "silence", "list", "--json")
    assert code == 0, err
    [listed] = json.loads(out)
    assert (listed["id"], listed["held"], listed["created_by"]) == (silence_id, 2, "alice")
    assert listed["matchers"]["kb_label"] == "alpha-kb" and listed["matchers"]["event"] == "*"
    code, out, _ = await cli(watcher, "status")
    assert "Silences: 1 active" in out and silence_id in out and "2 silenced" in out

    code, out, err = await cli(watcher, "silence", "expire", silence_id)
    assert code == 0, err
    await watcher.step(5)
    [announced] = [a for a in watcher.alerts("/ops") if a.kind is EventKind.SILENCE_ENDED]
    assert "alpha-kb" in announced.body and "failed" in announced.body
    assert "1 failure in a row since" in announced.body  # its open incident, as the digest says
    assert "not acknowledged" in announced.body
    assert silence_id in announced.body and "reindexing by hand" in announced.body
    assert "beta-kb" not in announced.body

    await watcher.run(20)  # once
    assert [a.kind for a in watcher.alerts("/ops")].count(EventKind.SILENCE_ENDED) == 1
    code, out, _ = await cli(watcher, "silence", "list")
    assert out.strip() == "no active silence"
    code, out, _ = await cli(watcher, "silence", "list", "--all")
    assert silence_id in out and "expired" in out


ALPHA_RECOVERS = [
    {"kb": "alpha", "id": "a1", "at": 10, "run": 20, "outcome": "failed"},
    {"kb": "alpha", "id": "a2", "at": 60, "run": 20, "outcome": "completed"},
]


@pytest.mark.parametrize("watcher", [ALPHA_RECOVERS], indirect=True)
async def test_a_silence_that_ends_after_the_job_recovered_announces_nothing(
    watcher: Harness,
) -> None:
    code, out, err = await cli(
        watcher, "silence", "add", "--kb", "alpha-kb", "--event", "failed", "--for", "3m",
        "--comment", "known flaky source",
    )  # fmt: skip
    assert code == 0, err
    await watcher.run(100)  # a1 fails (held), a2 runs and completes (not silenced: sent)
    assert kinds(watcher, "alpha-kb") == [
        EventKind.STARTED,
        EventKind.STARTED,
        EventKind.COMPLETED,
    ]
    await watcher.run(120)  # the silence's 3 minutes run out on the wall clock
    assert kinds(watcher, "alpha-kb") == [
        EventKind.STARTED,
        EventKind.STARTED,
        EventKind.COMPLETED,
    ]
    code, out, _ = await cli(watcher, "silence", "list", "--all", "--json")
    [ended] = json.loads(out)  # the watcher ended it by its clock; announced, with nothing to say
    assert ended["state"] == "ended" and ended["held"] == 1 and ended["announced_at"]


@pytest.mark.parametrize("watcher", [[]], indirect=True)
async def test_unknown_kb_event_or_id_are_clear_errors_with_a_non_zero_exit(
    watcher: Harness,
) -> None:
    base = ["silence", "add", "--for", "1h", "--comment", "x"]
    code, _, err = await cli(watcher, *base, "--kb", "alpha-k", "--event", "*")
    assert code != 0 and "did you mean 'alpha-kb'?" in err
    code, _, err = await cli(watcher, *base, "--kb", "*", "--event", "faild")
    assert code != 0 and "did you mean 'failed'?" in err
    code, _, err = await cli(watcher, *base, "--kb", "*", "--event", "*", "--for", "soon")
    assert code == 2 and "--for" in err
    hostile = "x\x1b]0;owned\x07\x1b[2J"
    code, out, err = await cli(watcher, "silence", "expire", hostile)
    assert code != 0 and "no active silence has the id" in err
    assert "\x1b" not in err and "\\x1b]0;owned\\x07" in err
    code, out, err = await cli(
        watcher, "silence", "add", "--kb", "*", "--event", "api_unreachable", "--for", "1h",
        "--comment", f"hostile {hostile}\nFORGED LINE",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = await cli(watcher, "silence", "list")
    assert "\x1b" not in out and len(out.strip().splitlines()) == 2

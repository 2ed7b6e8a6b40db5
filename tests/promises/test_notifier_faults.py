"""Notifier outages: alerts wait in the outbox and arrive once; a broken route hurts no other.

Real receivers on loopback (the webhook receiver answering 500, hanging past the delivery
timeout, dropping the connection or refusing with a 4xx; an SMTP server refusing, then
accepting) behind the real runtime, cycle by cycle on the simulator's clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import (
    TOKEN,
    Harness,
    Key,
    job_scenario,
    lifecycle_alerts,
    open_harness,
    route,
)
from tests.receivers import SmtpReceiver, WebhookReceiver

WATCHER = Path(sys.executable).parent / "watcher"
JOBS: list[dict[str, Any]] = [
    {"at": 10, "kb": "docs", "id": "a", "pending": 2, "run": 30},
    {"at": 12, "kb": "wiki", "id": "b", "pending": 1, "run": 40, "outcome": "failed"},
    {"at": 60, "kb": "docs", "id": "c", "run": 20, "outcome": "partial"},
]
FAST = {"delivery": {"timeout": "1s", "retry_base": "5s", "retry_max": "20s"}}


@pytest.fixture
def second_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def answered(receiver: WebhookReceiver, path: str | None = None) -> Counter[Key]:
    """The alerts the receiver acknowledged with a 2xx (one it hung on or dropped is not)."""
    from tests.harness import alerts_of

    taken = [r for r in receiver.requests if r.answered is not None and r.answered < 300]
    return Counter(a.key for a in alerts_of(taken, path))


async def run_through_outage(
    rig: Harness, outage: Callable[[], None], recover: Callable[[], None]
) -> None:
    await rig.cycle()
    await rig.run(15)
    outage()
    await rig.run(60)
    recover()
    await rig.run(60)


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda r: r.answer(500), id="500"),
        pytest.param(lambda r: r.answer(503), id="503"),
        pytest.param(lambda r: r.hang(3.0), id="hang-past-timeout"),
        pytest.param(lambda r: r.drop(), id="drop-connection"),
        pytest.param(lambda r: r.go_down(), id="down"),
    ],
)
async def test_a_receiver_outage_delays_alerts_which_then_arrive_acknowledged_once(
    tmp_path: Path, webhook_receiver: WebhookReceiver, break_it: Callable[[WebhookReceiver], None]
) -> None:
    def recover() -> None:
        if not webhook_receiver.listening:
            webhook_receiver.come_up()
        webhook_receiver.answer(200)

    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver, **FAST) as rig:
        await run_through_outage(rig, lambda: break_it(webhook_receiver), recover)
        assert answered(webhook_receiver) == lifecycle_alerts(rig.sim, rig.sim.t0)
        status = await rig.status_json()
        by_state = {k: n for k, n in status["deliveries"]["by_state"].items() if n}
        assert by_state == {"sent": 6}
        assert TOKEN not in repr(rig.logs) + json.dumps(status)


async def test_a_4xx_is_dead_lettered_soon_with_the_reason_shown_by_status_json(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    scenario = job_scenario(["docs"], JOBS[:1])
    async with open_harness(scenario, tmp_path, webhook_receiver, **FAST) as rig:
        webhook_receiver.answer(400)
        await rig.cycle()
        await rig.run(120)  # 3 attempts, far sooner than dead_after (24 h)
        shown = await rig.status_json()
    out = cli_status(tmp_path)
    # What only the command adds (its own time, the pace, the lease, the API's health, the
    # cost lines, the schedules and freshness) aside.
    added = {"at": out["at"], "poll": None, "lease": out["lease"], "api": out["api"]}
    extra = {key: out[key] for key in ("cost_and_time", "schedules_and_freshness")}
    assert out == shown | added | extra
    assert out["lease"]["holder"] is None, "the rig let the store's lease go when it closed"
    assert out["api"] == {"failing_since": None, "error": None}  # the API answered throughout
    dead = out["deliveries"]["dead_letters"]
    assert {d["kind"] for d in dead} == {"started", "completed"}
    refused = "permanent: request refused (HTTP 400)"
    assert all(d["attempts"] == 3 and refused in d["last_error"] for d in dead)
    assert all(r.answered == 400 for r in webhook_receiver.requests)
    # A bare 400 may be about size: each alert went shorter (unspent) before its 3 attempts
    # at the shortest; then it was given up.
    sizes = [len(r.json["message"]) for r in webhook_receiver.requests]
    assert 6 < len(sizes) <= 10
    assert sizes.count(min(sizes)) >= 3 and min(sizes) <= 250
    assert TOKEN not in json.dumps(out)


def cli_status(folder: Path) -> dict[str, Any]:
    """`watcher status --json` on the harness's state file."""
    config = folder / "status.toml"
    config.write_text(
        f'[state]\npath = "{folder / "watcher.db"}"\n\n'
        '[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:9/ops"]\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITALOCEAN")}
    done = subprocess.run(
        [str(WATCHER), "status", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


async def test_one_route_down_never_delays_nor_duplicates_the_healthy_one(
    tmp_path: Path, webhook_receiver: WebhookReceiver, second_receiver: WebhookReceiver
) -> None:
    routes = [
        route("broken", webhook_receiver.url_json("/broken")),
        route("healthy", second_receiver.url_json("/healthy")),
    ]
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver, routes=routes, **FAST) as rig:
        webhook_receiver.hang(3.0)
        await rig.cycle()
        for _ in range(17):  # every job is over by t = 81
            rig.sim.advance(5)
            await rig.cycle()
            # every alert owed so far is already on the healthy route: never delayed
            assert answered(second_receiver) == lifecycle_alerts(rig.sim, rig.sim.t0)
        webhook_receiver.answer(200)
        await rig.run(60)
        owed = lifecycle_alerts(rig.sim, rig.sim.t0)
        assert answered(second_receiver) == owed
        assert len(second_receiver.requests) == sum(owed.values())
        assert answered(webhook_receiver) == owed


async def test_an_smtp_server_refusing_then_accepting_gets_each_alert_once(
    tmp_path: Path, webhook_receiver: WebhookReceiver, smtp_receiver: SmtpReceiver
) -> None:
    routes = [route("mail", smtp_receiver.url, ["failed", "partial"])]
    scenario = job_scenario(["docs", "wiki"], JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver, routes=routes, **FAST) as rig:
        smtp_receiver.refuse()
        await rig.cycle()
        await rig.run(90)
        assert smtp_receiver.refused >= 2
        assert smtp_receiver.mails == []
        smtp_receiver.accept()
        await rig.run(60)
        subjects = sorted(m.subject for m in smtp_receiver.mails)
        assert len(subjects) == 2
        assert any("failed" in s for s in subjects) and any("gaps" in s for s in subjects)

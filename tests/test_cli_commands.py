"""`watcher once`, `status`, `health`, `test-notify` through the CLI, simulator and receivers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from tests.receivers import WebhookReceiver
from watcher.cli import main
from watcher.simulator import ManualClock, Simulator, load_scenario, serve_in_thread

TOKEN = "dop_v1_" + "feedc0de" * 8
START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own token and WATCHER_ overrides out of these runs."""
    for name in list(os.environ):
        if name.startswith("WATCHER_") or name.startswith("DIGITALOCEAN_"):
            monkeypatch.delenv(name)


@pytest.fixture
def simulator() -> Iterator[tuple[Simulator, str]]:
    sim = Simulator(load_scenario("demo"), token=TOKEN, clock=ManualClock(START))
    with serve_in_thread(sim) as url:
        yield sim, url


def write_config(tmp_path: Path, base_url: str, urls: Mapping[str, str]) -> str:
    routes = "".join(
        f'[[routes]]\nname = "{name}"\nurls = ["{url}"]\nevents = ["*"]\n'
        for name, url in urls.items()
    )
    path = tmp_path / "watcher.toml"
    path.write_text(
        f'[api]\nbase_url = "{base_url}"\n[state]\npath = "{tmp_path / "state.db"}"\n'
        f'[delivery]\ntimeout = "3s"\n{routes}',
        encoding="utf-8",
    )
    return str(path)


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, env={"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    return result.exit_code, result.stdout, result.stderr


def test_status_before_any_run_says_the_watcher_has_not_run(tmp_path: Path) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9", {"ops": "json://127.0.0.1:9/x"})
    code, out, _ = run(["status", "--config", path])
    assert code == 1
    assert "has not run yet" in out


def test_health_fails_without_a_state_file_and_passes_after_a_successful_once(
    tmp_path: Path, simulator: tuple[Simulator, str], webhook_receiver: WebhookReceiver
) -> None:
    _, url = simulator
    path = write_config(tmp_path, url, {"ops": webhook_receiver.url_json()})
    assert run(["health", "--config", path])[0] == 1
    code, _, err = run(["once", "--config", path])
    assert code == 0, err
    code, out, err = run(["health", "--config", path])
    assert code == 0, err
    assert "ok" in out


def test_status_lists_each_kb_with_its_latest_job_and_the_backlog(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    sim, url = simulator
    # The receiver is down: the alerts stay pending and status must say so.
    path = write_config(tmp_path, url, {"ops": "json://127.0.0.1:9/hook"})
    assert run(["once", "--config", path])[0] == 0
    sim.advance(30)
    assert run(["once", "--config", path])[0] == 0
    code, out, _ = run(["status", "--config", path])
    assert code == 0
    for name in ("product-docs", "support-articles", "pricing-pages", "onboarding-guides"):
        assert name in out
    assert "partial" in out and "failed" in out and "pending" in out
    assert "Deliveries:" in out and "ops:" in out

    code, out, _ = run(["status", "--config", path, "--json"])
    data = json.loads(out)
    by_name = {kb["name"]: kb for kb in data["knowledge_bases"]}
    assert by_name["support-articles"]["state"] == "partial"
    assert by_name["pricing-pages"]["state"] == "failed"
    assert data["deliveries"]["routes"][0]["route"] == "ops"
    assert data["deliveries"]["routes"][0]["pending"] > 0
    assert TOKEN not in out


def test_test_notify_reports_each_route_and_target_and_fails_when_one_route_fails(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    path = write_config(
        tmp_path,
        "http://127.0.0.1:9",
        {"ops": webhook_receiver.url_json(), "broken": "json://127.0.0.1:9/nowhere"},
    )
    code, out, _ = run(["test-notify", "--config", path])
    assert code == 1
    assert "route ops: delivered" in out
    assert "route broken: FAILED" in out
    [request] = webhook_receiver.wait_for_requests(1)
    assert "test alert" in request.json["title"]


def test_test_notify_for_one_route_sends_only_there(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    path = write_config(
        tmp_path,
        "http://127.0.0.1:9",
        {"ops": webhook_receiver.url_json(), "broken": "json://127.0.0.1:9/nowhere"},
    )
    code, out, _ = run(["test-notify", "--config", path, "--route", "ops"])
    assert code == 0
    assert "broken" not in out


def test_test_notify_names_an_unknown_route(tmp_path: Path) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9", {"ops": "json://127.0.0.1:9/x"})
    code, _, err = run(["test-notify", "--config", path, "--route", "nope"])
    assert code == 2
    assert "no route named 'nope'" in err


def test_once_with_a_refused_token_exits_non_zero_saying_401_and_the_token_source(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    _, url = simulator
    path = write_config(tmp_path, url, {"ops": "json://127.0.0.1:9/x"})
    result = CliRunner().invoke(
        main, ["once", "--config", path], env={"DIGITALOCEAN_TOKEN": "dop_v1_" + "0" * 64}
    )
    assert result.exit_code == 1
    assert "401" in result.stderr
    assert "DIGITALOCEAN_TOKEN" in result.stderr
    assert "0" * 64 not in result.stderr + result.stdout


def test_health_turns_unhealthy_once_the_last_good_cycle_is_older_than_two_intervals(
    tmp_path: Path, simulator: tuple[Simulator, str], webhook_receiver: WebhookReceiver
) -> None:
    """The one place the shell reads the wall clock (`health`), frozen to step past the limit."""
    _, url = simulator
    path = write_config(tmp_path, url, {"ops": webhook_receiver.url_json()})
    with freeze_time("2026-11-28 12:00:00", real_asyncio=True):
        assert run(["once", "--config", path])[0] == 0
    # poll.interval defaults to 60 s: two intervals later the daemon counts as stalled.
    with freeze_time("2026-11-28 12:01:59", real_asyncio=True):
        assert run(["health", "--config", path])[0] == 0
    with freeze_time("2026-11-28 12:02:01", real_asyncio=True):
        code, _, err = run(["health", "--config", path])
    assert code == 1
    assert "last successful cycle 121s ago (limit 120s)" in err

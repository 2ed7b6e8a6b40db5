"""`watcher once`, `status`, `health`, `test-notify` through the CLI, simulator and receivers."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from tests.receivers import WebhookReceiver
from watcher.cli import main
from watcher.core.clocks import Elapsed
from watcher.edges.hostclock import monotonic_now
from watcher.service import healthcheck
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


def polled_twice(tmp_path: Path, sim: Simulator, url: str) -> str:
    """A config whose only route's receiver is down (its alerts stay pending), after two
    `once` 30 simulated seconds apart; returns the config's path."""
    path = write_config(tmp_path, url, {"ops": "json://127.0.0.1:9/hook"})
    assert run(["once", "--config", path])[0] == 0
    sim.advance(30)
    assert run(["once", "--config", path])[0] == 0
    return path


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
    path = polled_twice(tmp_path, sim, url)  # the receiver is down: status must say so
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


def test_status_kb_and_state_show_only_the_kbs_asked_for_in_the_table_and_the_json(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    sim, url = simulator
    path = polled_twice(tmp_path, sim, url)
    docs = sim.kb_uuid("docs")

    code, out, _ = run(["status", "--config", path, "--kb", "pricing-pages", "--kb", docs])
    assert code == 0
    rows = out.split("\n\n")[0].splitlines()[1:]  # the table, under its header
    assert sorted(row.split()[0] for row in rows) == ["pricing-pages", "product-docs"]
    assert "Deliveries:" in out  # the backlog is the store's, shown whole

    code, out, _ = run(["status", "--config", path, "--json", "--state", "failed"])
    assert code == 0
    names = [kb["name"] for kb in json.loads(out)["knowledge_bases"]]
    assert names == ["pricing-pages"]

    code, out, _ = run(["status", "--config", path, "--json", "--state", "pending"])
    states = {kb["state"] for kb in json.loads(out)["knowledge_bases"]}
    assert states == {"pending"}

    code, out, _ = run(["status", "--config", path, "--kb", "pricing-pages", "--state", "running"])
    assert code == 0
    assert "(no knowledge base matches --kb pricing-pages --state running)" in out
    assert "seen yet" not in out


def test_status_says_which_kb_or_state_it_does_not_know_and_exits_2(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    _, url = simulator
    path = write_config(tmp_path, url, {"ops": "json://127.0.0.1:9/hook"})
    assert run(["once", "--config", path])[0] == 0
    code, out, err = run(["status", "--config", path, "--kb", "product-docs", "--kb", "nope"])
    assert code == 2 and out == ""
    assert "watcher status: --kb: no knowledge base named 'nope' in the store" in err
    assert "product-docs" in err  # the known names, to pick from
    code, _, err = run(["status", "--config", path, "--state", "finished"])
    assert code == 2
    assert "'finished' is not one of pending, running, stalled, completed" in err


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


def test_health_measures_the_age_of_the_last_cycle_on_the_monotonic_clock_not_the_wall(
    tmp_path: Path,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Limit: interval 60 s + 2 x cycle deadline 60 s + delivery timeout 3 s = 183 s."""
    # The simulated API is stopped before the wall clock is frozen: a frozen clock would stall
    # its server thread's loop, which then outlives the test.
    sim = Simulator(load_scenario("demo"), token=TOKEN, clock=ManualClock(START))
    with serve_in_thread(sim) as url:
        path = write_config(tmp_path, url, {"ops": webhook_receiver.url_json()})
        assert run(["once", "--config", path])[0] == 0
    # the wall clock steps three hours ahead: the cycle is still seconds old
    with freeze_time(datetime.now(UTC) + timedelta(hours=3), real_asyncio=True):
        code, out, _ = run(["health", "--config", path])
    age = re.match(r"ok: last successful cycle (\d+)s ago \(limit 183s\)", out)
    assert code == 0 and age and int(age[1]) < 60, out  # seconds, not the three hours

    # Read after `once` returned: its cycle finished a moment (seconds, on a loaded machine)
    # before this, so "150 s later" is well within the limit and "184 s later" past it.
    # The exact boundary is tests/core/test_health.py's.
    recorded = monotonic_now()
    for later, healthy in ((150.0, True), (184.0, False)):
        reading = Elapsed(recorded.seconds + later, recorded.boot)
        monkeypatch.setattr(healthcheck, "monotonic_now", lambda reading=reading: reading)
        assert run(["health", "--config", path])[0] == (0 if healthy else 1)
        assert run(["health", "--live", "--config", path])[0] == (0 if healthy else 1)
    code, _, err = run(["health", "--config", path])
    stuck = re.search(r"stuck: the last cycle finished (\d+)s ago \(limit 183s\)", err)
    assert stuck and 184 <= int(stuck[1]) < 200, err

    rebooted = Elapsed(5.0, "another-boot")
    monkeypatch.setattr(healthcheck, "monotonic_now", lambda: rebooted)
    code, _, err = run(["health", "--config", path])
    assert code == 1 and "recorded before this boot" in err


def test_status_tells_the_age_of_api_timestamps_on_the_apis_clock(
    tmp_path: Path, simulator: tuple[Simulator, str], webhook_receiver: WebhookReceiver
) -> None:
    """The simulated API lives on 2026-11-28 09:00, days behind this machine's clock."""
    _, url = simulator
    path = write_config(tmp_path, url, {"ops": webhook_receiver.url_json()})
    assert run(["once", "--config", path])[0] == 0
    code, out, _ = run(["status", "--json", "--config", path])
    assert code == 0
    data = json.loads(out)
    api_clock = datetime.fromisoformat(data["api_clock_at"])
    assert abs((api_clock - START).total_seconds()) < 30
    assert datetime.fromisoformat(data["at"]) - api_clock > timedelta(days=1)
    code, table, _ = run(["status", "--config", path])
    [recent] = [line for line in table.splitlines() if line.startswith("release-notes")]
    # its last job ended an hour before the API's now: not the days this machine's clock adds
    assert code == 0 and recent.endswith("ago") and not re.search(r"\b\d{2,}h\b", recent), recent


def test_retry_needs_ids_or_all_and_says_so_on_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9", {"ops": "json://127.0.0.1:9/x"})
    for args in (["retry"], ["retry", "3", "--all"]):
        code, out, err = run([*args, "--config", path])
        assert code == 2 and out == ""
        assert err.strip() == (
            "watcher retry: give the dead-letter ids `watcher status` shows, or --all"
        )


def test_retry_sends_dead_letters_again_once_the_receiver_works(
    tmp_path: Path, simulator: tuple[Simulator, str], webhook_receiver: WebhookReceiver
) -> None:
    """A 401 receiver: the alerts are given up after 3 tries, not retried for a day; fixed,
    `watcher retry --all` queues them again and the next `watcher once` delivers them."""
    sim, url = simulator
    path = write_config(tmp_path, url, {"ops": webhook_receiver.url_json()})
    webhook_receiver.answer(401)
    assert run(["once", "--config", path])[0] == 0
    sim.advance(30)
    for _ in range(4):
        assert run(["once", "--config", path])[0] == 0
        sim.advance(60)
        _age_the_outbox(tmp_path / "state.db")
    status = json.loads(run(["status", "--json", "--config", path])[1])
    dead = status["deliveries"]["dead_letters"]
    assert dead and all("credentials refused" in d["last_error"] for d in dead)
    ids = sorted(d["id"] for d in dead)

    code, out, _ = run(["retry", str(ids[0]), "999999", "--config", path])
    assert code == 1  # one queued, one unknown
    assert "#999999 is not a dead letter" in out and f"(#{ids[0]})" in out

    webhook_receiver.answer(200)
    code, out, _ = run(["retry", "--all", "--config", path])
    assert code == 0 and f"queued {len(ids) - 1} dead letter(s) again" in out
    before = len(webhook_receiver.requests)
    assert run(["once", "--config", path])[0] == 0
    taken = [r for r in webhook_receiver.requests[before:] if r.answered == 200]
    assert taken  # delivered, one message or a grouped one
    status = json.loads(run(["status", "--json", "--config", path])[1])
    assert status["deliveries"]["dead_letters"] == []


def _age_the_outbox(state: Path) -> None:
    """Make every pending row due now (the retries' backoff runs on the wall clock)."""
    import sqlite3

    with sqlite3.connect(state) as conn:
        conn.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
    conn.close()


def test_status_and_health_say_why_a_state_path_under_a_file_can_hold_no_store(
    tmp_path: Path,
) -> None:
    """Not "the watcher has not run yet": with `state.path` under a regular file none ever
    could, and `once`/`run` refuse to start for that reason."""
    (tmp_path / "tok").write_text("a file", encoding="utf-8")
    config = Path(write_config(tmp_path, "http://127.0.0.1:9", {"ops": "json://127.0.0.1:9/x"}))
    wrong = (tmp_path / "tok" / "sub" / "watcher.db").as_posix()
    config.write_text(
        re.sub(r'path = "[^"]*"', f'path = "{wrong}"', config.read_text(encoding="utf-8"), count=1),
        encoding="utf-8",
    )
    for command in ("status", "health"):
        code, out, err = run([command, "--config", str(config)])
        assert code == 1
        assert f"{tmp_path / 'tok'} is a file, not a directory" in out + err, (command, out, err)


def test_status_says_the_api_refused_the_token_when_no_cycle_succeeds(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    _, url = simulator
    path = write_config(tmp_path, url, {"ops": "json://127.0.0.1:9/hook"})
    refused = CliRunner().invoke(
        main, ["once", "--config", path], env={"DIGITALOCEAN_ACCESS_TOKEN": "dop_v1_" + "0" * 64}
    )
    assert refused.exit_code != 0
    code, out, _ = run(["status", "--config", path])
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("API failing since"))
    assert "401" in line and "DIGITALOCEAN_ACCESS_TOKEN" in line
    code, out, _ = run(["status", "--config", path, "--json"])
    api = json.loads(out)["api"]
    assert api["failing_since"] is not None and "401" in api["error"]

    assert run(["once", "--config", path])[0] == 0  # the right token: answering again
    code, out, _ = run(["status", "--config", path])
    assert code == 0 and "API failing" not in out
    assert json.loads(run(["status", "--config", path, "--json"])[1])["api"] == {
        "failing_since": None,
        "error": None,
    }

"""`watcher cancel` and `watcher reindex` through the real CLI against the simulated API on
loopback: confirmation, `--yes`, a 403 that names the missing scope and the token's source,
and a reindex DigitalOcean skips because a job is running."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import main
from watcher.simulator import ManualClock, Simulator, load_scenario, serve_in_thread

TOKEN = "dop_v1_" + "feedc0de" * 8
READ_ONLY = "dop_v1_" + "0ddba11" * 9  # a custom-scoped token: genai:read only
START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("WATCHER_") or name.startswith("DIGITALOCEAN_"):
            monkeypatch.delenv(name)


@pytest.fixture
def simulator() -> Iterator[tuple[Simulator, str]]:
    scoped = {READ_ONLY: frozenset({"genai:read"})}
    sim = Simulator(load_scenario("demo"), TOKEN, ManualClock(START), scoped_tokens=scoped)
    sim.advance(30)
    with serve_in_thread(sim) as url:
        yield sim, url


def config(tmp_path: Path, url: str) -> str:
    path = tmp_path / "watcher.toml"
    path.write_text(
        f'[api]\nbase_url = "{url}"\n[state]\npath = "{tmp_path / "state.db"}"\n'
        '[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:9/x"]\n',
        encoding="utf-8",
    )
    return str(path)


def run(args: list[str], token: str = TOKEN, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env={"DIGITALOCEAN_ACCESS_TOKEN": token}, input=stdin)
    return result.exit_code, result.stdout + result.stderr


def running_job(sim: Simulator) -> tuple[str, str]:
    """(KB uuid, job uuid) of a job the demo is running at t=30."""
    for job in sim.read(lambda world, now: world.job_page(now, slice(None))[1]):
        if job["status"] == "INDEX_JOB_STATUS_IN_PROGRESS":
            return job["knowledge_base_uuid"], job["uuid"]
    raise AssertionError("the demo runs no job at t=30")


def test_cancel_with_yes_cancels_the_job(tmp_path: Path, simulator: tuple[Simulator, str]) -> None:
    sim, url = simulator
    _, job = running_job(sim)
    code, out = run(["cancel", job, "--yes", "--config", config(tmp_path, url)])
    assert code == 0, out
    assert f"cancel {job}: done" in out
    assert ("PUT", f"/v2/gen-ai/indexing_jobs/{job}/cancel", 200) in [
        (r.method, r.path, r.status) for r in sim.requests
    ]


def test_without_a_terminal_and_without_yes_nothing_is_written(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    sim, url = simulator
    kb, job = running_job(sim)
    for args in (["cancel", job], ["reindex", kb]):
        code, out = run([*args, "--config", config(tmp_path, url)])
        assert code == 2
        assert "stdin is not a terminal; pass --yes" in out
    assert not [r for r in sim.requests if r.method in ("PUT", "POST")]


def test_a_token_without_the_scope_is_told_which_scope_and_which_token(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    sim, url = simulator
    kb, job = running_job(sim)
    path = config(tmp_path, url)
    code, out = run(["cancel", job, "--yes", "--config", path], token=READ_ONLY)
    assert code == 1
    assert "HTTP 403" in out
    assert "from environment variable DIGITALOCEAN_ACCESS_TOKEN lacks the genai:update scope" in out
    code, out = run(["reindex", kb, "--yes", "--config", path], token=READ_ONLY)
    assert code == 1
    assert "lacks the genai:create scope (needed to start an indexing job)" in out
    assert READ_ONLY not in out


def test_a_reindex_while_a_job_runs_is_reported_as_skipped(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    sim, url = simulator
    kb, _ = running_job(sim)
    code, out = run(["reindex", kb, "--yes", "--config", config(tmp_path, url)])
    assert code == 1
    assert "skipped by DigitalOcean, a job is already running on this knowledge base" in out


def test_reindex_takes_a_name_of_the_account_when_no_knowledge_base_is_configured(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    sim, url = simulator
    kbs = sim.read(lambda world, now: world.kb_page(now, slice(None))[1])
    pricing = next(k["uuid"] for k in kbs if k["name"] == "pricing-pages")
    code, out = run(["reindex", "pricing-pages", "--yes", "--config", config(tmp_path, url)])
    assert code == 0, out
    posts = [r for r in sim.requests if r.method == "POST"]
    assert f"reindex {pricing}: done" in out and len(posts) == 1


def test_reindex_of_an_unknown_name_writes_nothing(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    sim, url = simulator
    code, out = run(["reindex", "no-such-kb", "--yes", "--config", config(tmp_path, url)])
    assert code == 2
    assert "no knowledge base is named 'no-such-kb'" in out
    assert [r for r in sim.requests if r.method == "POST"] == []


UNKNOWN = "11111111-2222-4333-8444-555555555555"


def test_a_cancel_of_a_job_the_account_does_not_have_says_so_in_words(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    _, url = simulator
    code, out = run(["cancel", UNKNOWN, "--yes", "--config", config(tmp_path, url)])
    assert code == 1
    assert f"DigitalOcean knows no indexing job {UNKNOWN} on this token's account" in out
    assert "HTTP 404" in out


def test_a_reindex_of_a_knowledge_base_the_account_does_not_have_says_so_in_words(
    tmp_path: Path, simulator: tuple[Simulator, str]
) -> None:
    _, url = simulator
    code, out = run(["reindex", UNKNOWN, "--yes", "--config", config(tmp_path, url)])
    assert code == 1
    assert f"DigitalOcean knows no knowledge base {UNKNOWN} on this token's account" in out

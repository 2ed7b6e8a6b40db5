"""End to end: one watcher, two DigitalOcean accounts (two tokens, two separate worlds) on one
simulated API address, one shared store and outbox; the daemon's own tick runs each account's
cycle. Each account's jobs alert and every alert names its account; a refused token stops only
its own account; an account's cycle never judges (nor reads) the other account's KBs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.clocks import elapsed_of
from tests.harness import Alert, alerts_of
from tests.receivers import WebhookReceiver
from tests.stores import Engine
from watcher.config import Config, load_config
from watcher.core.errors import ConfigError
from watcher.core.model import EventKind
from watcher.edges.web import reads
from watcher.service.commands import check_online, read_status
from watcher.service.daemon import Daemon
from watcher.service.once import run_once
from watcher.service.page import DaemonHost
from watcher.service.runtime import open_runtime
from watcher.simulator import Accounts, ManualClock, Simulator, serve
from watcher.simulator.loading import parse_scenario

TOKEN_ALPHA = "dop_v1_" + "a1" * 32
TOKEN_BETA = "dop_v1_" + "b2" * 32


def _world(name: str, kb: str, outcome: str, run: float = 30) -> dict[str, Any]:
    return {
        "name": name,
        "knowledge_bases": [
            {
                "key": kb,
                "name": f"{kb}-kb",
                "data_sources": [{"key": "main", "items": 40}],
                "history": [{"ago": 86400, "run": 300, "outcome": "completed"}],
            }
        ],
        "timeline": [
            {"at": 10, "start_job": {"kb": kb, "id": f"{kb}-job", "run": run, "outcome": outcome}}
        ],
    }


def _config_text(
    base_url: str, state: str, hook: WebhookReceiver, budgets: dict[str, int] | None = None
) -> str:
    beta_budget = (budgets or {}).get("beta", 100)
    return f"""
[api]
base_url = "{base_url}"
max_requests_per_minute = 250
reserve = 0
[stall]
no_progress_after = "10m"
[delivery]
retry_base = "2s"
retry_max = "8s"
timeout = "5s"
send_interval = "0s"
[alerts]
api_unreachable_after = "30s"
[state]
{state}

[[accounts]]
name = "alpha"
token_env = "TOK_ALPHA"

[[accounts]]
name = "beta"
token_env = "TOK_BETA"
max_requests_per_minute = {beta_budget}

[[routes]]
name = "ops"
urls = ["{hook.url_json("/ops")}"]
events = ["*"]
repeat_after = "30s"

[[routes]]
name = "beta-team"
urls = ["{hook.url_json("/beta")}"]
events = ["failed", "api_unreachable"]
accounts = ["beta"]
"""


class World:
    """Two accounts' simulators on one clock, served on one address, and a daemon on them."""

    def __init__(self, beta_outcome: str = "failed", beta_run: float = 30) -> None:
        self.clock = ManualClock()
        self.alpha = Simulator(
            parse_scenario(_world("alpha-world", "docs", "completed"), "alpha"),
            token=TOKEN_ALPHA,
            clock=self.clock,
        )
        self.beta = Simulator(
            parse_scenario(_world("beta-world", "faq", beta_outcome, beta_run), "beta"),
            token=TOKEN_BETA,
            clock=self.clock,
        )
        self.hook = WebhookReceiver()
        self.daemon: Daemon | None = None
        self.config: Config | None = None

    async def status(self, *, as_json: bool) -> str:
        """What `watcher status` prints for the store now."""
        assert self.config is not None
        lines: list[str] = []
        await read_status(self.config, as_json=as_json, echo=lines.append)
        return "\n".join(lines)

    def now(self) -> datetime:
        return self.clock.now()

    async def tick(self, seconds: float) -> None:
        assert self.daemon is not None
        self.clock.advance(seconds)
        await self.daemon.tick()

    def alerts(self, path: str) -> list[Alert]:
        return alerts_of(r for r in self.hook.requests if r.path == path and r.answered == 200)


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path,
    world: World,
    env: dict[str, str] | None = None,
    engine: Engine | None = None,
    budgets: dict[str, int] | None = None,
) -> AsyncIterator[World]:
    """The daemon of a two-account config on `world` (its store on `engine`, else an SQLite
    file), its leases held, closed at the end."""
    state = f'path = "{tmp_path / "w.db"}"'
    if engine is not None and engine.is_pg:
        state = f'url = "{engine.url}"'
    elif engine is not None:
        state = f'path = "{engine.path}"'
    world.hook.start()
    try:
        async with serve(Accounts([world.alpha, world.beta])) as base_url:
            path = tmp_path / "watcher.toml"
            path.write_text(_config_text(base_url, state, world.hook, budgets))
            env = env or {"TOK_ALPHA": TOKEN_ALPHA, "TOK_BETA": TOKEN_BETA}
            config = world.config = load_config(path, env)
            runtime = await open_runtime(
                config, clock=world.now, elapsed=lambda: elapsed_of(world.clock.now())
            )
            world.daemon = Daemon(runtime, config_path=path, env=env)
            try:
                yield world
            finally:
                await world.daemon.runtime.close()
    finally:
        world.hook.stop()


@pytest.fixture
def world() -> Iterator[World]:
    yield World()


async def test_both_accounts_jobs_alert_and_each_alert_names_its_account(
    tmp_path: Path, world: World, engine: Engine
) -> None:
    async with running(tmp_path, world, engine=engine):
        for _ in range(12):
            await world.tick(5)
        for _ in range(5):  # what is still due is retried and sent
            await world.tick(2)
        assert world.daemon is not None
        host = DaemonHost(world.daemon)  # the JSON API's and the page's reads
        listed = await reads.overview(host, {}, 50)
        named = {item["label"]: item["account"] for item in listed["items"]}
        assert named == {"docs-kb": "alpha", "faq-kb": "beta"}
        one = await reads.knowledge_base(host, listed["items"][0]["uuid"])
        assert one["account"] == listed["items"][0]["account"]
    told = {(a.kind, a.subject) for a in world.alerts("/ops")}
    assert (EventKind.STARTED, "docs-kb [alpha]") in told
    assert (EventKind.COMPLETED, "docs-kb [alpha]") in told
    assert (EventKind.STARTED, "faq-kb [beta]") in told
    assert (EventKind.FAILED, "faq-kb [beta]") in told
    assert all("[alpha]" in a.title or "[beta]" in a.title for a in world.alerts("/ops"))
    (failed,) = [a for a in world.alerts("/ops") if a.kind is EventKind.FAILED]
    assert "Account: beta" in failed.body
    # `accounts = ["beta"]`: that route hears beta's failure and nothing of alpha's
    assert [(a.kind, a.subject) for a in world.alerts("/beta")] == [
        (EventKind.FAILED, "faq-kb [beta]")
    ]
    table = await world.status(as_json=False)
    header, *rows = [line.split() for line in table.splitlines()[:3]]
    assert header[:2] == ["ACCOUNT", "KNOWLEDGE"]
    assert sorted((row[0], row[1]) for row in rows) == [("alpha", "docs-kb"), ("beta", "faq-kb")]
    assert "Account alpha: 1 knowledge base(s); API answering" in table
    assert "Account beta: 1 knowledge base(s); API answering" in table
    # one lease per account (per token) on PostgreSQL; the process's one on SQLite
    assert engine.count("lease") == (2 if engine.is_pg else 1)
    data = json.loads(await world.status(as_json=True))
    assert {kb["name"]: kb["account"] for kb in data["knowledge_bases"]} == {
        "docs-kb": "alpha",
        "faq-kb": "beta",
    }


async def test_a_refused_token_names_its_account_and_never_stops_the_other(
    tmp_path: Path, world: World
) -> None:
    env = {"TOK_ALPHA": TOKEN_ALPHA, "TOK_BETA": "dop_v1_" + "0" * 64}  # revoked: 401
    with capture_logs() as logs:
        async with running(tmp_path, world, env):
            for _ in range(12):
                await world.tick(5)
            for _ in range(5):
                await world.tick(2)
            assert world.daemon is not None
            facts = await DaemonHost(world.daemon).facts()  # the page's
            metrics = world.daemon.metrics.render().decode()
    assert facts.api_error is not None and facts.api_error.startswith("account beta: HTTP 401")
    assert set(facts.kb_accounts.values()) == {"alpha"}
    assert 'gradient_watcher_account_api_up{account="alpha"} 1.0' in metrics
    assert 'gradient_watcher_account_api_up{account="beta"} 0.0' in metrics
    assert 'gradient_watcher_account_cycles_total{account="beta",outcome="error"}' in metrics
    status = await world.status(as_json=False)
    assert "Account beta: 0 knowledge base(s); API failing since" in status
    told = [(a.kind, a.subject) for a in world.alerts("/ops")]
    assert (EventKind.STARTED, "docs-kb [alpha]") in told
    assert (EventKind.COMPLETED, "docs-kb [alpha]") in told
    assert not [subject for _, subject in told if "faq-kb" in subject]
    unreachable = [a for a in world.alerts("/beta") if a.kind is EventKind.API_UNREACHABLE]
    assert [a.subject for a in unreachable] == ["gradient-watcher [beta]"]
    body = unreachable[0].body.replace("\\", "")  # markdown escapes
    assert "refused the token from environment variable TOK_BETA (account 'beta')" in body
    failures = [e for e in logs if e["event"] == "account_cycle_failed"]
    assert failures and {e["account"] for e in failures} == {"beta"}
    assert "HTTP 401" in failures[0]["error"]
    assert "TOK_BETA (account 'beta')" in failures[0]["error"]
    assert [r for r in world.alpha.requests if r.status == 200]


async def test_an_accounts_cycle_never_reads_nor_judges_the_other_accounts_kbs(
    tmp_path: Path,
) -> None:
    """Beta's job runs for a long time; alpha's cycle must not follow it (it is not in alpha's
    account: asking alpha's API for it answers 404, and that would be judged a vanished job)."""
    world = World(beta_outcome="completed", beta_run=600)
    async with running(tmp_path, world):
        for _ in range(12):
            await world.tick(5)
        beta_job = world.beta.job_uuid("faq-job")
        assert world.daemon is not None
        beta_client = world.daemon.runtime.others[0].client
        beta_kbs = {kb.uuid for kb in await beta_client.list_knowledge_bases()}
    asked_alpha = [r.path for r in world.alpha.requests]
    assert not [p for p in asked_alpha if beta_job in p or any(kb in p for kb in beta_kbs)]
    assert not [r for r in world.alpha.requests if r.status == 404 and "indexing_jobs" in r.path]
    told = {(a.kind, a.subject) for a in world.alerts("/ops")}
    assert (EventKind.STARTED, "faq-kb [beta]") in told
    assert not [s for _, s in told if "faq-kb [alpha]" in s]


async def test_an_accounts_open_incident_is_reminded_by_its_own_account_alone(
    tmp_path: Path, world: World, engine: Engine
) -> None:
    """Beta's failure opens an incident that `repeat_after` reminds of: only beta's cycle may
    judge it (alpha's cycle runs first in each tick: seeing beta's incident it would remind of
    it as its own)."""
    async with running(tmp_path, world, engine=engine):
        for _ in range(30):
            await world.tick(5)
    reminders = [a for a in world.alerts("/ops") if a.kind is EventKind.REMINDER]
    assert reminders, "beta's open incident was never reminded of"
    assert {a.subject for a in reminders} == {"faq-kb [beta]"}


async def test_once_polls_every_account_and_fails_when_any_account_did(
    tmp_path: Path, world: World
) -> None:
    env = {"TOK_ALPHA": TOKEN_ALPHA, "TOK_BETA": "dop_v1_" + "0" * 64}  # beta's: refused
    world.hook.start()
    try:
        async with serve(Accounts([world.alpha, world.beta])) as base_url:
            path = tmp_path / "watcher.toml"
            state = f'path = "{tmp_path / "w.db"}"'
            path.write_text(_config_text(base_url, state, world.hook))
            config = world.config = load_config(path, env)
            report = await run_once(config)
    finally:
        world.hook.stop()
    assert not report.ok  # `watcher once` exits 1
    assert report.error is not None and report.error.startswith("account beta: ")
    assert "TOK_BETA (account 'beta')" in report.error
    assert report.knowledge_bases == 1  # alpha's was read
    status = await world.status(as_json=False)
    assert "Last successful cycle: never" not in status  # alpha's cycle succeeded
    assert "Account alpha: 1 knowledge base(s); API answering" in status


async def test_check_config_online_reads_every_account_with_its_own_token(
    tmp_path: Path, world: World
) -> None:
    async with serve(Accounts([world.alpha, world.beta])) as base_url:
        path = tmp_path / "watcher.toml"
        path.write_text(_config_text(base_url, f'path = "{tmp_path / "w.db"}"', world.hook))
        good = load_config(path, {"TOK_ALPHA": TOKEN_ALPHA, "TOK_BETA": TOKEN_BETA})
        lines: list[str] = []
        assert await check_online(good, echo=lines.append) == 0
        assert "  Account:    alpha 1, beta 1 knowledge base(s) listed" in "\n".join(lines)
        bad = load_config(path, {"TOK_ALPHA": TOKEN_ALPHA, "TOK_BETA": "dop_v1_" + "0" * 64})
        with pytest.raises(ConfigError) as refused:
            await check_online(bad, echo=lines.append)
    (problem,) = refused.value.problems
    assert problem.key == "accounts[1]"
    assert problem.source == "environment variable TOK_BETA (account 'beta')"
    assert "HTTP 401" in problem.message


async def test_a_reload_keeps_every_account_polling(
    tmp_path: Path, world: World, engine: Engine
) -> None:
    async with running(tmp_path, world, engine=engine):
        assert world.daemon is not None
        await world.tick(5)
        before = world.daemon.runtime.others[0].client
        assert await world.daemon.reload()
        assert world.daemon.runtime.others[0].client is not before  # a fresh client
        for _ in range(12):
            await world.tick(5)
        for _ in range(5):
            await world.tick(2)
    told = {(a.kind, a.subject) for a in world.alerts("/ops")}
    assert (EventKind.FAILED, "faq-kb [beta]") in told
    assert (EventKind.COMPLETED, "docs-kb [alpha]") in told


async def test_the_loop_keeps_the_pace_of_the_account_with_the_tightest_budget(
    tmp_path: Path, world: World
) -> None:
    """One loop runs every account's cycle: its pace is the slowest any account needs. Beta
    may send three requests a minute; alpha, 250. While a job runs, alpha alone would poll
    every 15 s (`active_interval`), more often than beta's budget allows (20 s at the least)."""
    async with running(tmp_path, world, budgets={"beta": 3}):
        assert world.daemon is not None
        await world.tick(11)  # one cycle, with beta's job running since t = 10 s
        pace = world.daemon.upkeep.pace
        assert pace.interval.total_seconds() >= 20 and pace.reason.value == "budget"
        assert world.daemon.upkeep.last_cost >= 2  # both accounts' polls are counted

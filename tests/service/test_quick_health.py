"""`watcher health`'s fast path (`watcher.service.quickhealth`) gives the verdict and the words
of the full path, and steps aside whenever the configuration is not the one a watcher
validated: a real `once` against the simulator, the real CLI, real SQLite stores."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.receivers import WebhookReceiver
from tests.stores import open_held
from watcher.cli import main
from watcher.config.load import CONFIG_ENV, CREDENTIALS_ENV, DEFAULT_CONFIG
from watcher.config.trust import CA_ENVS
from watcher.core.clocks import Elapsed
from watcher.core.health import HEARTBEAT_KEY, Health, Heartbeat, Probe
from watcher.edges.hostclock import monotonic_now
from watcher.service import healthcheck, quickhealth
from watcher.simulator import ManualClock, Simulator, load_scenario, serve_in_thread

TOKEN = "dop_v1_" + "feedc0de" * 8
START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("WATCHER_", "DIGITALOCEAN_")):
            monkeypatch.delenv(name)


@pytest.fixture
def api_url() -> Iterator[str]:
    sim = Simulator(load_scenario("demo"), token=TOKEN, clock=ManualClock(START))
    with serve_in_thread(sim) as url:
        yield url


def write_config(tmp_path: Path, base_url: str, hook: str, extra: str = "") -> str:
    path = tmp_path / "watcher.toml"
    path.write_text(
        f'[api]\nbase_url = "{base_url}"\n[state]\npath = "{tmp_path / "state.db"}"\n'
        f'[delivery]\ntimeout = "3s"\n[[routes]]\nname = "ops"\nurls = ["{hook}"]\n'
        f'events = ["*"]\n{extra}',
        encoding="utf-8",
    )
    return str(path)


def run(args: list[str], env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, env={"DIGITALOCEAN_ACCESS_TOKEN": TOKEN, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def fast(path: str, probe: Probe = Probe.READY) -> Health | None:
    """The fast path's verdict in this process (None: it steps aside)."""
    return asyncio.run(quickhealth.quick_health(path, os.environ, probe))


def full_only(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> tuple[int, str, str]:
    """`watcher health` as before the fast path: the whole configuration, always."""

    async def aside(*_: object) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(quickhealth, "quick_health", aside)
        return run(args)


def test_both_paths_agree_on_a_healthy_daemon_and_a_stale_heartbeat(
    tmp_path: Path,
    api_url: str,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After `once`, the fast path applies and says what the full path says, healthy now and
    stuck 184 s later (the limit is 183 s), for both probes."""
    path = write_config(tmp_path, api_url, webhook_receiver.url_json())
    assert run(["once", "--config", path])[0] == 0
    recorded = monotonic_now()
    for later, healthy in ((0.0, True), (184.0, False)):
        reading = Elapsed(recorded.seconds + later, recorded.boot)
        monkeypatch.setattr(healthcheck, "monotonic_now", lambda reading=reading: reading)
        for live in ([], ["--live"]):
            args = ["health", *live, "--config", path]
            verdict = fast(path, Probe.LIVE if live else Probe.READY)
            assert verdict is not None and verdict.ok is healthy
            quick = run(args)
            assert quick == full_only(monkeypatch, args)
            assert quick[0] == (0 if healthy else 1)
            assert verdict.reason in (quick[1] + quick[2])


def test_a_missing_store_is_told_by_the_full_path(tmp_path: Path) -> None:
    """No store yet: the fast path steps aside and `health` says the watcher has not run."""
    path = write_config(tmp_path, "http://127.0.0.1:9", "json://127.0.0.1:9/x")
    assert fast(path) is None
    code, out, err = run(["health", "--config", path])
    assert code == 1 and "has not run yet" in err and out == ""


def test_a_config_edited_after_the_watcher_validated_it_prints_every_problem(
    tmp_path: Path, api_url: str, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route typo written after `once` ran: the file is no longer the validated one, so
    `health` loads it whole and prints the problem, exit 1, exactly as before."""
    path = write_config(tmp_path, api_url, webhook_receiver.url_json())
    assert run(["once", "--config", path])[0] == 0
    assert fast(path) is not None
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write('[[routes]]\nname = "pager"\nurls = ["json://127.0.0.1:9/p"]\nevnts = ["*"]\n')
    assert fast(path) is None
    code, out, err = run(["health", "--config", path])
    assert code == 1 and "evnts" in err and out == ""
    assert (code, out, err) == full_only(monkeypatch, ["health", "--config", path])


def test_an_environment_the_watcher_did_not_validate_sends_health_the_full_way(
    tmp_path: Path, api_url: str, webhook_receiver: WebhookReceiver
) -> None:
    """A `WATCHER_` variable the probe has but `once` had not (here a bad interval) is loaded
    whole and refused as before; the same variable in both is trusted."""
    path = write_config(tmp_path, api_url, webhook_receiver.url_json())
    assert run(["once", "--config", path])[0] == 0
    code, _, err = run(["health", "--config", path], env={"WATCHER_POLL__INTERVAL": "soon"})
    assert code == 1 and "WATCHER_POLL__INTERVAL" in err
    assert run(["once", "--config", path], env={"WATCHER_POLL__INTERVAL": "90s"})[0] == 0
    os.environ["WATCHER_POLL__INTERVAL"] = "90s"
    try:
        assert fast(path) is not None
    finally:
        del os.environ["WATCHER_POLL__INTERVAL"]
    assert fast(path) is None


def test_the_state_path_follows_the_loaders_rules(tmp_path: Path) -> None:
    """`WATCHER_STATE__PATH` overrides `[state] path`; a URL, another `WATCHER_STATE` variable
    or a blank path make the fast path step aside."""
    db = tmp_path / "other.db"
    raw = b'[state]\npath = "elsewhere.db"\n'
    env = {"WATCHER_STATE__PATH": str(db)}
    assert quickhealth._state_path(raw, env) == db
    assert quickhealth._state_path(b"", {}) == Path("watcher.db")
    assert quickhealth._state_path(b'[state]\nurl = "postgresql://h/d"\n', {}) is None
    assert quickhealth._state_path(raw, {"WATCHER_STATE__URL": "postgresql://h/d"}) is None
    assert quickhealth._state_path(raw, {"WATCHER_STATE": "{}"}) is None
    assert quickhealth._state_path(b'[state]\npath = " "\n', {}) is None
    assert quickhealth._state_path(b"[state]\npath = 5\n", {}) is None
    assert quickhealth._state_path(b"[state", {}) is None


def test_a_store_with_the_mark_is_judged_without_loading_the_config(tmp_path: Path) -> None:
    """The mark of these bytes and variables in the store is all the fast path needs."""
    db = tmp_path / "w.db"
    config = tmp_path / "w.toml"
    config.write_text(f'[state]\npath = "{db}"\n')

    async def mark() -> None:
        store = await open_held(db, datetime.now(UTC))
        await store.set_meta(quickhealth.MARK_KEY, quickhealth.file_mark(str(config), os.environ))
        await store.close()

    asyncio.run(mark())
    verdict = fast(str(config))
    assert verdict is not None and not verdict.ok and HEARTBEAT_KEY not in verdict.reason


def test_the_fast_path_uses_the_loaders_names() -> None:
    """The names repeated in `quickhealth` (to import no model) are the loader's."""
    assert (quickhealth.CONFIG_ENV, quickhealth.DEFAULT_CONFIG) == (CONFIG_ENV, DEFAULT_CONFIG)
    assert set(quickhealth.MARK_ENVS) == {*CA_ENVS, CREDENTIALS_ENV}


def test_a_failed_cycles_words_are_masked_as_before_the_full_path_tells_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeat whose last cycle failed with a route's password in its words: the fast
    path steps aside, so the full path (which registers the configuration's secrets) prints
    the verdict with the password masked, as it always did."""
    secret = "hunter2hunter2"
    db = tmp_path / "w.db"
    config = tmp_path / "w.toml"
    config.write_text(
        f'[state]\npath = "{db}"\n[[routes]]\nname = "ops"\n'
        f'urls = ["json://user:{secret}@127.0.0.1:9/x"]\nevents = ["failed"]\n'
    )

    async def failed_cycle() -> None:
        store = await open_held(db, datetime.now(UTC))
        beat = Heartbeat(monotonic_now(), False, timedelta(minutes=3))
        beat = beat.after(False, monotonic_now(), timedelta(minutes=3), f"POST to {secret}", None)
        await store.set_meta(HEARTBEAT_KEY, beat.encode())
        await store.set_meta(quickhealth.MARK_KEY, quickhealth.file_mark(str(config), os.environ))
        await store.close()

    asyncio.run(failed_cycle())
    assert fast(str(config)) is None
    code, out, err = run(["health", "--config", str(config)])
    assert code == 1 and "the last cycle failed" in err and secret not in out + err
    assert (code, out, err) == full_only(monkeypatch, ["health", "--config", str(config)])

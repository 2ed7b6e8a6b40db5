"""`watcher check-config`: exit 0 with a masked description, or exit 2 with every problem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import main

REPO = Path(__file__).resolve().parent.parent
TOKEN = "dop_v1_" + "0123456789abcdef" * 4
SECRET = "XOXBSECRET"
VALID = f'[[routes]]\nname = "ops"\nurls = ["slack://{SECRET}/B0/C0/#indexing"]\n'
# Isolate every run from the developer's own environment.
CLEAN_ENV = {
    "DIGITALOCEAN_ACCESS_TOKEN": None,
    "DIGITALOCEAN_TOKEN": None,
    "WATCHER_CONFIG": None,
    "CREDENTIALS_DIRECTORY": None,
}


@pytest.fixture(autouse=True)
def no_watcher_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep WATCHER_ overrides of the developer's shell out of these runs."""
    for name in [name for name in os.environ if name.upper().startswith("WATCHER_")]:
        monkeypatch.delenv(name)


def run(args: list[str], env: Mapping[str, str | None] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, env={**CLEAN_ENV, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "watcher.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_valid_config_exits_0_and_describes_it_with_secrets_masked(tmp_path: Path) -> None:
    path = config(tmp_path, VALID)
    code, out, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 0, err
    assert f"{path} is valid" in out
    assert "slack://****/#indexing" in out and "dop_v1_…cdef" in out
    assert SECRET not in out + err and TOKEN not in out + err


def test_the_example_config_passes_check_config() -> None:
    example = str(REPO / "config.example.toml")
    code, _, err = run(["check-config", "--config", example], {"DIGITALOCEAN_TOKEN": TOKEN})
    assert code == 0, err


def test_an_invalid_config_exits_2_with_one_line_per_problem_on_stderr(tmp_path: Path) -> None:
    text = VALID + 'events = ["faild"]\n[poll]\ninterval = "soon"\n'
    path = config(tmp_path, text)
    code, out, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 2 and out == ""
    assert sorted(err.splitlines()) == [
        f"{path}: poll.interval: 'soon' is not a duration (e.g. 90s, 0.5s, 15m, 4h, 1d, 1h30m, "
        "or whole seconds)",
        f"{path}: routes[0].events: 'faild' is not an event; did you mean 'failed'?",
    ]
    assert SECRET not in err


def test_a_missing_token_fails_check_config(tmp_path: Path) -> None:
    path = config(tmp_path, VALID)
    code, _, err = run(["check-config", "--config", path])
    assert code == 2
    assert f"{path}: token: no API token found" in err and "DIGITALOCEAN_TOKEN" in err


def test_the_config_path_defaults_to_watcher_config(tmp_path: Path) -> None:
    path = config(tmp_path, VALID)
    env = {"WATCHER_CONFIG": path, "DIGITALOCEAN_ACCESS_TOKEN": TOKEN}
    code, out, _ = run(["check-config"], env)
    assert code == 0 and f"{path} is valid" in out


def test_a_missing_file_exits_2_and_says_how_to_create_one(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    code, _, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 2
    assert err.startswith(f"{path}: file: configuration file not found")
    assert "config.example.toml" in err


def test_env_overrides_are_checked_and_blamed_on_the_variable(tmp_path: Path) -> None:
    path = config(tmp_path, VALID)
    env = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN, "WATCHER_API__BASE_URL": "http://example.com"}
    code, _, err = run(["check-config", "--config", path], env)
    assert code == 2
    assert err.startswith("WATCHER_API__BASE_URL: api.base_url: http:// is only allowed")

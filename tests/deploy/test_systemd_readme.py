"""deploy/systemd/README.md's install steps work in the order they are written: the config is
checked before the token exists (`--no-token`), then against the account once it does
(`--online`). The README's own command lines are run, with its paths moved to a temporary
directory, against a simulated account holding the example config's knowledge bases."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.simulator import ManualClock, Simulator, serve_in_thread
from watcher.simulator.loading import parse_scenario

REPO = Path(__file__).resolve().parents[2]
README = REPO / "deploy" / "systemd" / "README.md"
ETC = "/etc/gradient-watcher"
TOKEN = "dop_v1_" + "ab12" * 16
# The knowledge bases config.example.toml watches.
EXAMPLE_KBS = [
    ("9f3c1b2a-4d5e-11ef-8a1b-0242ac120002", "product-docs"),
    ("0b7d2e4c-6f81-11ef-9c2d-0242ac120002", "support-articles"),
]


def install_commands() -> list[str]:
    """The shell commands of the "Install (as root)" block, continuation lines joined."""
    text = README.read_text()
    section = text.split("## Install (as root)", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    commands: list[str] = []
    pending = ""
    for raw in block.splitlines():
        line = raw.split("  #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        commands.append((pending + line.strip()).strip())
        pending = ""
    return commands


def _token_created_at(commands: list[str]) -> int:
    return next(i for i, c in enumerate(commands) if f"/dev/null {ETC}/do-token" in c)


def test_the_config_is_checked_without_a_token_before_the_token_exists() -> None:
    commands = install_commands()
    token = _token_created_at(commands)
    before = [c for c in commands[:token] if "watcher check-config" in c]
    after = [c for c in commands[token:] if "watcher check-config" in c]
    assert before and all("--no-token" in c for c in before), before
    assert any("--online" in c and "WATCHER_API__TOKEN_FILE" in c for c in after), after
    enable = next(i for i, c in enumerate(commands) if "systemctl enable" in c)
    assert max(commands.index(c) for c in after) < enable


@pytest.fixture
def account() -> Iterator[str]:
    """A simulated account holding the example config's knowledge bases."""
    data = {
        "name": "example-account",
        "knowledge_bases": [
            {"key": name, "name": name, "uuid": uuid, "data_sources": [{"key": "s"}]}
            for uuid, name in EXAMPLE_KBS
        ],
        "timeline": [],
    }
    sim = Simulator(parse_scenario(data, "example"), token=TOKEN, clock=ManualClock())
    with serve_in_thread(sim) as url:
        yield url


def _run(command: str, etc: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a README command with /etc/gradient-watcher moved to `etc` and this venv's watcher."""
    return subprocess.run(
        ["bash", "-c", command.replace(ETC, str(etc))],
        env=env,
        cwd=etc,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_readmes_check_config_commands_pass_in_order_on_the_example_config(
    tmp_path: Path, account: str
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy(REPO / "config.example.toml", etc / "watcher.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["WATCHER_API__BASE_URL"] = account  # the simulated account, not DigitalOcean's
    commands = install_commands()
    token = _token_created_at(commands)
    checks = [c for c in commands if "watcher check-config" in c]

    before = _run(checks[0], etc, env)
    (etc / "do-token").write_text(TOKEN + "\n")
    after = [_run(c, etc, env) for c in checks[1:]]

    assert commands.index(checks[0]) < token
    assert before.returncode == 0, before.stderr
    assert "Token:      none (not required here" in before.stdout
    for result in after:
        assert result.returncode == 0, result.stderr
        assert "Account:    2 knowledge base(s) listed" in result.stdout
        assert TOKEN not in result.stdout + result.stderr

"""What the operator is told about a setup that cannot work: each case of issue 14 as the real
command run by a user (a `watcher` subprocess), its exit code and its message.

Against the demo scenario of the simulator, whose account holds "support-articles",
"product-docs" and five more knowledge bases.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.process.conftest import (
    TOKEN,
    WATCHER,
    Route,
    Service,
    config_text,
    manual_simulator,
)
from watcher.config.routes import ASKABLE
from watcher.simulator import Simulator, load_scenario

EX_CONFIG = 78
TYPO_UUID = "9f3c1b2a-4d5e-11ef-8a1b-0242ac120002"


@pytest.fixture
def account(service: Service) -> tuple[Simulator, str]:
    """The demo account on a simulator whose clock stands still."""
    sim = manual_simulator(load_scenario("demo"))
    return sim, service.serve(sim)


def _config(service: Service, base_url: str, *, kbs: str = "", **kwargs: str) -> str:
    routes = [Route("ops", (f"json://127.0.0.1:{_closed_port()}/alerts",))]
    return config_text(base_url=base_url, state=service.state, routes=routes, **kwargs) + kbs


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- 1. a route entry that matches nothing --------------------------------------------------


def test_a_typo_in_a_route_entry_fails_check_config_online_naming_route_key_and_guess(
    service: Service, account: tuple[Simulator, str]
) -> None:
    text = _config(service, account[1]) + 'knowledge_bases = ["suport-articles"]\n'
    path = service.write_config(text)

    offline = service.cli("check-config")
    online = service.cli("check-config", "--online")

    assert offline.returncode == 0, offline.stderr  # the file alone cannot know the account
    assert online.returncode == 2
    assert online.stderr.splitlines() == [
        f"{path}: routes[0].knowledge_bases[0]: route 'ops': 'suport-articles' matches no "
        "knowledge base of the account; did you mean 'support-articles'?"
    ]


def test_a_typo_in_a_route_entry_is_warned_by_the_daemon_and_shown_by_status(
    service: Service, account: tuple[Simulator, str]
) -> None:
    text = _config(service, account[1]) + 'knowledge_bases = ["suport-articles"]\n'
    service.write_config(text)

    once = service.cli("once")
    status = service.cli("status")
    as_json = json.loads(service.cli("status", "--json").stdout)

    assert once.returncode == 0, once.stderr
    (warning,) = [
        json.loads(line)
        for line in (once.stdout + once.stderr).splitlines()
        if '"route_entry_matches_nothing"' in line
    ]
    assert (warning["level"], warning["route"], warning["suggestion"]) == (
        "warning",
        "ops",
        "support-articles",
    )
    assert (
        "route ops: routes[0].knowledge_bases[0]: 'suport-articles' matches no knowledge base "
        "of the account; did you mean 'support-articles'?"
    ) in status.stdout
    assert as_json["unmatched_route_entries"][0]["suggestion"] == "support-articles"


def test_check_config_online_passes_a_config_that_matches_the_account(
    service: Service, account: tuple[Simulator, str]
) -> None:
    text = _config(service, account[1]) + 'knowledge_bases = ["support-articles"]\n'
    service.write_config(text)

    result = service.cli("check-config", "--online")

    assert result.returncode == 0, result.stderr
    assert "Account:    7 knowledge base(s) listed" in result.stdout


def test_check_config_online_with_a_refused_token_exits_2_naming_401_and_its_source(
    service: Service, account: tuple[Simulator, str]
) -> None:
    service.write_config(_config(service, account[1]))
    env = service.env(token=None, DIGITALOCEAN_TOKEN="dop_v1_" + "0" * 64)

    result = service.cli("check-config", "--online", env=env)

    assert result.returncode == 2
    assert result.stderr.startswith("environment variable DIGITALOCEAN_TOKEN: token: ")
    assert "401" in result.stderr and "0" * 64 not in result.stderr


def test_check_config_online_that_cannot_reach_the_api_exits_1_naming_base_url(
    service: Service,
) -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}"
    path = service.write_config(_config(service, base_url))

    result = service.cli("check-config", "--online")

    assert result.returncode == 1  # nothing could be checked: a fault, not a verdict
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"error: cannot read the account at {base_url} (api.base_url from {path})"
    )


# --- 2. a watched knowledge base the account does not have ----------------------------------


def _watch(uuid: str, name: str) -> str:
    return f'[[knowledge_bases]]\nuuid = "{uuid}"\nname = "{name}"\n'


def test_a_watched_uuid_missing_from_the_account_is_alerted_once_and_shown_by_status(
    service: Service, account: tuple[Simulator, str]
) -> None:
    receiver = service.receiver()
    docs = account[0].world.kb_uuid("docs")
    kbs = _watch(docs, "docs") + _watch(TYPO_UUID, "product-docs")
    text = config_text(
        base_url=account[1],
        state=service.state,
        routes=[Route("ops", (receiver.url_json(),))],
    )
    service.write_config(text + kbs)

    first = service.cli("once")
    second = service.cli("once")
    status = service.cli("status")
    as_json = json.loads(service.cli("status", "--json").stdout)

    assert (first.returncode, second.returncode) == (0, 0), first.stderr
    titles = [r.json["title"] for r in receiver.requests if r.answered == 200]
    assert titles == ["⚠️ product-docs: knowledge base not found in the account"]
    output = (first.stdout + first.stderr).splitlines()
    logged = [line for line in output if '"knowledge_base_missing"' in line]
    assert len(logged) == 1 and '"name": "product-docs"' in logged[0]
    (line,) = [x for x in status.stdout.splitlines() if x.startswith("product-docs:")]
    assert line.startswith("product-docs: not found in the account since ")
    assert as_json["missing_knowledge_bases"][0]["uuid"] == TYPO_UUID


def test_check_config_online_names_a_watched_uuid_the_account_lacks_and_the_right_one(
    service: Service, account: tuple[Simulator, str]
) -> None:
    path = service.write_config(_config(service, account[1], kbs=_watch(TYPO_UUID, "product-docs")))
    real = account[0].world.kb_uuid("docs")

    result = service.cli("check-config", "--online")

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}: knowledge_bases[0].uuid: 'product-docs' ({TYPO_UUID}) is not a knowledge "
        f"base of this account; the account's knowledge base named 'product-docs' has uuid {real}"
    ]


# --- 3. paths and ports that cannot work ----------------------------------------------------


def test_a_state_path_under_a_file_fails_check_config_2_and_run_and_once_78(
    service: Service,
) -> None:
    blocker = service.dir / "not-a-dir"
    blocker.write_text("")
    text = _config(service, "http://127.0.0.1:9").replace(
        json.dumps(str(service.state)), json.dumps(str(blocker / "watcher.db"))
    )
    path = service.write_config(text)
    expected = (
        f"{path}: state.path: {blocker / 'watcher.db'} cannot be created: {blocker} is a file, "
        "not a directory"
    )

    check, run, once = service.cli("check-config"), service.cli("run"), service.cli("once")

    assert (check.returncode, run.returncode, once.returncode) == (2, EX_CONFIG, EX_CONFIG)
    for result in (check, run, once):
        assert result.stderr.strip() == expected
        assert "File exists" not in result.stderr and "Traceback" not in result.stderr


def test_a_state_path_from_a_variable_is_blamed_on_the_variable(service: Service) -> None:
    blocker = service.dir / "not-a-dir"
    blocker.write_text("")
    service.write_config(_config(service, "http://127.0.0.1:9"))
    env = service.env(WATCHER_STATE__PATH=str(blocker / "watcher.db"))

    result = service.cli("run", env=env)

    assert result.returncode == EX_CONFIG
    assert result.stderr.startswith("WATCHER_STATE__PATH: state.path: ")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's own are private to this user)."""
    path = Path(tempfile.mkdtemp(prefix="watcher-setup-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as_nobody() -> list[str]:
    """A prefix that runs a command as an unprivileged user (root may write anywhere)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory unwritable")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_an_unwritable_state_directory_fails_check_config_2_and_run_78(
    service: Service, shared_dir: Path
) -> None:
    import subprocess

    state_dir = shared_dir / "state"
    state_dir.mkdir(mode=0o555)
    state_dir.chmod(0o555)
    config = shared_dir / "watcher.toml"
    text = _config(service, "http://127.0.0.1:9").replace(
        json.dumps(str(service.state)), json.dumps(str(state_dir / "watcher.db"))
    )
    config.write_text(text)
    config.chmod(0o644)

    def watcher(command: str) -> subprocess.CompletedProcess[str]:
        argv = [*_as_nobody(), str(WATCHER), command, "--config", str(config)]
        return subprocess.run(
            argv, env=service.env(), cwd=shared_dir, capture_output=True, text=True, check=False
        )

    check, run = watcher("check-config"), watcher("run")
    uid = 65534 if os.geteuid() == 0 else os.geteuid()

    assert (check.returncode, run.returncode) == (2, EX_CONFIG), check.stderr + run.stderr
    for result in (check, run):
        assert result.stderr == (
            f"{config}: state.path: {state_dir / 'watcher.db'} cannot be created: the directory "
            f"{state_dir} is not writable by this user (uid {uid})\n"
        )
    assert not (state_dir / "watcher.db").exists()


def test_a_busy_listen_port_fails_check_config_2(service: Service) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = service.write_config(
            _config(service, "http://127.0.0.1:9", listen=f"127.0.0.1:{port}")
        )

        result = service.cli("check-config")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{path}: http.listen: port {port} on 127.0.0.1 is already in use by another program"
    )


def test_a_listen_address_not_on_this_machine_fails_check_config_2(service: Service) -> None:
    path = service.write_config(_config(service, "http://127.0.0.1:9", listen="192.0.2.1:9187"))

    result = service.cli("check-config")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{path}: http.listen: 192.0.2.1 is not an address of this machine"
    )


def test_check_config_beside_a_running_watcher_passes_and_says_who_holds_the_port(
    service: Service, account: tuple[Simulator, str]
) -> None:
    service.write_config(_config(service, account[1], listen="127.0.0.1:0"))
    daemon = service.run_daemon()
    port = daemon.wait_for_log("http_listening")["port"]
    service.write_config(_config(service, account[1], listen=f"127.0.0.1:{port}"))

    check = service.cli("check-config")
    second = service.cli("run")

    assert check.returncode == 0, check.stderr
    assert f"listening on 127.0.0.1:{port} (in use by a running watcher" in check.stdout
    # A second daemon on the same port: the configuration's fault, exit 78, one line.
    assert second.returncode == EX_CONFIG
    assert "http.listen: cannot listen on" in second.stderr
    assert "address already in use" in second.stderr and "Traceback" not in second.stderr


# --- 4. every error at once; variables; the command line ------------------------------------


KNOWN = ", ".join(kind.value for kind in ASKABLE)


def test_every_unknown_event_word_is_reported_in_one_run(service: Service) -> None:
    text = _config(service, "http://127.0.0.1:9").replace(
        'events = ["*"]', 'events = ["failed", "complete", "error"]'
    )
    path = service.write_config(text)

    result = service.cli("check-config")

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}: routes[0].events[1]: 'complete' is not an event; did you mean 'completed'?",
        f"{path}: routes[0].events[2]: 'error' is not an event; known: {KNOWN}, or *",
    ]
    # Every word a route may ask for, in the contract's order (not those set by other keys:
    # reminder by repeat_after, escalated by escalate_*, digest by digest).
    assert KNOWN.startswith("started, completed, no_changes, partial, failed, cancelled, ")
    assert not {"reminder", "escalated", "digest"} & set(KNOWN.split(", "))


def test_a_misspelt_variable_is_blamed_on_the_variable_never_the_file(service: Service) -> None:
    path = service.write_config(_config(service, "http://127.0.0.1:9"))

    result = service.cli("check-config", env=service.env(WATCHER_POL__INTERVAL="30s"))

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "WATCHER_POL__INTERVAL: pol.interval: unknown section; did you mean 'poll'?"
    ]
    assert str(path) not in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["demo", "--speed", "0"],
            "watcher demo: Invalid value for '--speed': 0.0 is not in the range x>0.",
        ),
        (
            ["demo", "--duration", "-5"],
            "watcher demo: Invalid value for '--duration': -5.0 is not in the range x>0.",
        ),
        (
            ["simulate", "--port", "70000"],
            "watcher simulate: Invalid value for '--port': 70000 is not in the range 0<=x<=65535.",
        ),
        (
            ["run", "--log-level", "loud"],
            "watcher run: Invalid value for '--log-level': 'loud' is not one of 'debug', "
            "'info', 'warning', 'error'.",
        ),
        (["statsu"], "watcher: No such command 'statsu'."),
        (
            ["check-config", "--no-token", "--online"],
            "watcher check-config: --online reads the account with the token: drop --no-token",
        ),
    ],
)
def test_a_command_line_error_is_one_line_and_exit_2(
    service: Service, argv: list[str], message: str
) -> None:
    import subprocess

    result = subprocess.run(
        [str(WATCHER), *argv], env=service.env(), capture_output=True, text=True, check=False
    )

    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(message) and line.endswith("--help')")


# --- 5. a file checked before the token exists ----------------------------------------------


def test_check_config_no_token_passes_without_a_token_and_says_so(service: Service) -> None:
    service.write_config(_config(service, "http://127.0.0.1:9"))

    plain = service.cli("check-config", env=service.env(token=None))
    lenient = service.cli("check-config", "--no-token", env=service.env(token=None))

    assert plain.returncode == 2 and "token: no API token found" in plain.stderr
    assert lenient.returncode == 0, lenient.stderr
    assert "Token:      none (not required here; `run` needs one): no API token found" in (
        lenient.stdout
    )
    assert TOKEN not in lenient.stdout

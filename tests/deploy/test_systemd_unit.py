"""The systemd unit: systemd's own checker accepts it, and it keeps its promises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "watcher.service"
INSTALLED_COMMAND = "/usr/local/bin/watcher"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Parse a unit file into section -> key -> every value assigned, in order."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], defaultdict(list))
            continue
        assert section is not None, f"assignment outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        section[key.strip()].append(value.strip())
    return unit


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text())["Service"]


def _one(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key, [])
    assert len(values) == 1, f"{key}= should be set exactly once, got {values}"
    return values[0]


def _runnable_copy(tmp_path: Path) -> Path:
    """Copy the unit with ExecStart pointing at a command that exists on this machine."""
    candidate = Path(sys.executable).parent / "watcher"
    command = str(candidate) if os.access(candidate, os.X_OK) else "/bin/true"
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_COMMAND} " in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(f"ExecStart={INSTALLED_COMMAND} ", f"ExecStart={command} "))
    return copy


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed")
    return path


def test_systemd_analyze_verify_accepts_the_unit_without_any_warning(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    copy = _runnable_copy(tmp_path)
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    # Unknown keys and unparsable values are only warnings ("..., ignoring") with exit 0.
    about_our_unit = [line for line in result.stderr.splitlines() if copy.name in line]
    assert about_our_unit == []
    assert "Unknown key" not in result.stderr
    assert "ignoring" not in result.stderr


def test_systemd_analyze_verify_fails_when_the_command_is_missing(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    copy = tmp_path / UNIT.name
    text = UNIT.read_text().replace(INSTALLED_COMMAND, str(tmp_path / "no-such-watcher"))
    copy.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "no-such-watcher" in result.stderr


def test_systemd_analyze_security_rates_the_sandbox_at_most_2_0(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    copy = _runnable_copy(tmp_path)
    # --threshold is on a 0..100 scale: 20 means an exposure level of 2.0 ("OK").
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze predates --offline (systemd < 250)")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_the_unit_is_a_notify_service_started_with_the_documented_command(
    service: dict[str, list[str]],
) -> None:
    assert _one(service, "Type") == "notify"
    assert _one(service, "NotifyAccess") == "main"
    assert _one(service, "ExecStart") == (
        f"{INSTALLED_COMMAND} run --config /etc/gradient-watcher/watcher.toml"
    )
    assert _one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"


def test_a_bad_config_exit_code_is_not_restarted_but_failures_are(
    service: dict[str, list[str]],
) -> None:
    assert _one(service, "Restart") == "on-failure"
    assert _one(service, "RestartPreventExitStatus").split() == ["78"]


def test_timeouts_and_watchdog_are_set(service: dict[str, list[str]]) -> None:
    assert _one(service, "WatchdogSec") == "5min"
    assert _one(service, "TimeoutStopSec")
    assert _one(service, "TimeoutStartSec")


def test_state_and_token_come_from_systemd_managed_locations(
    service: dict[str, list[str]],
) -> None:
    assert _one(service, "DynamicUser") == "yes"
    assert _one(service, "StateDirectory") == "gradient-watcher"
    assert _one(service, "LoadCredential") == "do-token:/etc/gradient-watcher/do-token"
    environment = service["Environment"]
    assert "WATCHER_STATE__PATH=%S/gradient-watcher/watcher.db" in environment
    # Relative: resolved against $CREDENTIALS_DIRECTORY by the watcher (works before %d existed).
    assert "WATCHER_API__TOKEN_FILE=do-token" in environment
    assert not any("TOKEN=" in value for value in environment), "never a token in the env"


def test_the_daemon_shares_one_malloc_arena_between_its_threads(
    service: dict[str, list[str]],
) -> None:
    assert "MALLOC_ARENA_MAX=1" in service["Environment"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("UMask", "0077"),
        ("MemoryMax", "256M"),
    ],
)
def test_the_sandbox_directive_is_set(
    service: dict[str, list[str]], key: str, expected: str
) -> None:
    assert _one(service, key) == expected


def test_the_system_call_filter_starts_from_the_system_service_set(
    service: dict[str, list[str]],
) -> None:
    assert service["SystemCallFilter"][0] == "@system-service"


def test_the_unit_is_enabled_into_the_normal_boot() -> None:
    unit = parse_unit(UNIT.read_text())
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in unit["Unit"]["After"]

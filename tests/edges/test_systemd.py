"""The systemd notify protocol, against real AF_UNIX datagram sockets."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from watcher.core.redact import SECRETS
from watcher.edges.systemd import SystemdNotifier, watchdog_interval, watchdog_timeout


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound at a filesystem path, standing in for systemd."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    yield sock, path
    sock.close()


def _received(sock: socket.socket) -> bytes:
    return sock.recv(4096)


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (SystemdNotifier.ready, b"READY=1"),
        (SystemdNotifier.watchdog, b"WATCHDOG=1"),
        (SystemdNotifier.stopping, b"STOPPING=1"),
        (lambda n: n.status("polling 3 knowledge bases"), b"STATUS=polling 3 knowledge bases"),
    ],
    ids=["ready", "watchdog", "stopping", "status"],
)
def test_each_message_arrives_as_the_exact_datagram_systemd_expects(
    receiver: tuple[socket.socket, str],
    send: Callable[[SystemdNotifier], bool],
    expected: bytes,
) -> None:
    sock, path = receiver
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": path})
    assert notifier is not None
    with notifier:
        assert send(notifier) is True
    assert _received(sock) == expected


def test_reloading_carries_the_monotonic_clock_in_microseconds(
    receiver: tuple[socket.socket, str],
) -> None:
    sock, path = receiver
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": path})
    assert notifier is not None
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    with notifier:
        assert notifier.reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = _received(sock).split(b"\n")
    assert first == b"RELOADING=1"
    name, _, value = second.partition(b"=")
    assert name == b"MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_reloading_uses_the_injected_clock(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    with SystemdNotifier(path, clock_usec=lambda: 123456789) as notifier:
        notifier.reloading()
    assert _received(sock) == b"RELOADING=1\nMONOTONIC_USEC=123456789"


def test_notify_sends_several_fields_in_one_datagram_in_the_given_order(
    receiver: tuple[socket.socket, str],
) -> None:
    sock, path = receiver
    with SystemdNotifier(path) as notifier:
        notifier.notify(READY=1, STATUS="first cycle done")
    assert _received(sock) == b"READY=1\nSTATUS=first cycle done"


def test_status_folds_a_multiline_text_onto_one_line(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    with SystemdNotifier(path) as notifier:
        notifier.status("API unreachable:\nconnection refused")
    assert _received(sock) == b"STATUS=API unreachable: connection refused"


def test_status_masks_known_secrets_and_neutralises_controls(
    receiver: tuple[socket.socket, str],
) -> None:
    """`systemctl status` is a terminal too: an API message that echoed the token, with an
    escape sequence and a line that would start another notify field, arrives inert."""
    sock, path = receiver
    SECRETS.register("sekrit-token-1234")
    with SystemdNotifier(path) as notifier:
        notifier.status("failing: echoed sekrit-token-1234 \x1b[2J\nREADY=1")
    assert _received(sock) == b"STATUS=failing: echoed *** \\x1b[2J READY=1"


def test_an_abstract_socket_name_with_at_prefix_is_reached() -> None:
    name = f"gradient-watcher-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2.0)
    try:
        notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": f"@{name}"})
        assert notifier is not None
        with notifier:
            assert notifier.ready() is True
        assert _received(sock) == b"READY=1"
    finally:
        sock.close()


@pytest.mark.parametrize(
    "env",
    [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "vsock:2:1234"}],
    ids=["unset", "empty", "vsock-unsupported"],
)
def test_no_notifier_without_a_usable_notify_socket(env: dict[str, str]) -> None:
    assert SystemdNotifier.from_env(env) is None


def test_a_vanished_socket_makes_sends_return_false_without_raising(tmp_path: Path) -> None:
    path = str(tmp_path / "gone.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.close()
    os.unlink(path)
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": path})
    assert notifier is not None
    with capture_logs() as logs, notifier:
        assert notifier.ready() is False
        assert notifier.watchdog() is False
    assert [entry["event"] for entry in logs] == ["sd_notify_failed", "sd_notify_failed"]
    assert all(entry["log_level"] == "debug" for entry in logs)


def test_sending_works_again_once_the_socket_comes_back(tmp_path: Path) -> None:
    path = str(tmp_path / "restarted.sock")
    notifier = SystemdNotifier(path)
    assert notifier.watchdog() is False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    try:
        assert notifier.watchdog() is True
        assert _received(sock) == b"WATCHDOG=1"
    finally:
        notifier.close()
        sock.close()


@pytest.mark.parametrize(
    "fields",
    [{"lower": "1"}, {"STATUS": "two\nlines"}, {}],
    ids=["lowercase-name", "newline-in-value", "no-fields"],
)
def test_a_malformed_message_is_refused_as_a_programming_error(fields: dict[str, str]) -> None:
    with SystemdNotifier("/nonexistent/notify.sock") as notifier, pytest.raises(ValueError):
        notifier.notify(**fields)


@pytest.mark.parametrize(
    ("env", "pid", "expected_timeout"),
    [
        # 5 minutes, no WATCHDOG_PID: the watchdog is meant for whoever reads it.
        ({"WATCHDOG_USEC": "300000000"}, 42, 300.0),
        # WATCHDOG_PID names us.
        ({"WATCHDOG_USEC": "300000000", "WATCHDOG_PID": "42"}, 42, 300.0),
        # WATCHDOG_PID names another process (we are a child that inherited the env).
        ({"WATCHDOG_USEC": "300000000", "WATCHDOG_PID": "41"}, 42, None),
        # No watchdog configured.
        ({}, 42, None),
        # Zero and garbage mean off.
        ({"WATCHDOG_USEC": "0"}, 42, None),
        ({"WATCHDOG_USEC": "soon"}, 42, None),
    ],
    ids=["no-pid", "our-pid", "other-pid", "unset", "zero", "garbage"],
)
def test_watchdog_timeout_and_ping_interval_follow_watchdog_usec_and_pid(
    env: dict[str, str], pid: int, expected_timeout: float | None
) -> None:
    assert watchdog_timeout(env, pid) == expected_timeout
    expected_interval = None if expected_timeout is None else expected_timeout / 2
    assert watchdog_interval(env, pid) == expected_interval


def test_watchdog_pid_defaults_to_our_own_process_id() -> None:
    env = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(env) == 1.0

"""The systemd notify protocol: readiness, status, watchdog, reload and stop messages.

A message is one datagram of `KEY=value` lines sent to the AF_UNIX socket named by
`$NOTIFY_SOCKET` (a filesystem path, or an abstract name written with a leading `@`).
Sending never raises: when systemd has gone away the daemon logs at debug and carries on.

Usage in the daemon:

    notifier = SystemdNotifier.from_env()          # None when not started by systemd
    if notifier: notifier.ready()
    interval = watchdog_interval()                 # ping this often, or None
    ...
    notifier.reloading(); <reload>; notifier.ready()
    notifier.stopping()
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from types import TracebackType

import structlog

from watcher.core.inert import inert
from watcher.core.redact import SECRETS

log = structlog.get_logger(__name__)

_FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_DEFAULT_SEND_TIMEOUT = 1.0


def _monotonic_usec() -> int:
    """Return CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC with."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def socket_address(notify_socket: str) -> str | bytes:
    """Translate a `$NOTIFY_SOCKET` value into an AF_UNIX address (`@name` is abstract)."""
    if notify_socket.startswith("@"):
        return b"\0" + notify_socket[1:].encode()
    return notify_socket


class SystemdNotifier:
    """Sends sd_notify messages to one socket; every send reports success as a bool."""

    def __init__(
        self,
        address: str | bytes,
        *,
        send_timeout: float = _DEFAULT_SEND_TIMEOUT,
        clock_usec: Callable[[], int] = _monotonic_usec,
    ) -> None:
        self._address = address
        self._send_timeout = send_timeout
        self._clock_usec = clock_usec
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SystemdNotifier | None:
        """Return a notifier for `$NOTIFY_SOCKET`, or None when it is unset or unusable."""
        value = env.get("NOTIFY_SOCKET", "")
        if not value:
            return None
        if not (value.startswith("@") or value.startswith("/")):
            # systemd 254+ may hand out vsock: addresses; we only speak AF_UNIX.
            log.debug("sd_notify_socket_unsupported", notify_socket=value)
            return None
        return cls(socket_address(value))

    def ready(self) -> bool:
        """Tell systemd that start-up (or a reload) is complete."""
        return self.notify(READY=1)

    def status(self, text: str) -> bool:
        """Set the one-line status shown by `systemctl status`: secrets masked, inert, one line
        (a line break would start another assignment of the notify protocol)."""
        return self.notify(STATUS=inert(SECRETS.redact(text)))

    def watchdog(self, timeout: float | None = None) -> bool:
        """Ping the service watchdog; with `timeout` (seconds), also set its timeout from now
        on (`WATCHDOG_USEC=`, systemd 236+): send that only when the unit enabled the
        watchdog, or it would switch one on."""
        if timeout is None:
            return self.notify(WATCHDOG=1)
        return self.notify(WATCHDOG=1, WATCHDOG_USEC=max(1, round(timeout * 1_000_000)))

    def stopping(self) -> bool:
        """Tell systemd that a graceful shutdown has begun."""
        return self.notify(STOPPING=1)

    def reloading(self) -> bool:
        """Tell systemd a reload has begun; send `ready()` when it is done."""
        # systemd 253+ requires MONOTONIC_USEC with RELOADING=1; older versions ignore it.
        return self.notify(RELOADING=1, MONOTONIC_USEC=self._clock_usec())

    def notify(self, **fields: str | int) -> bool:
        """Send one datagram of `KEY=value` lines; False (logged at debug) when it failed."""
        payload = _encode(fields)
        try:
            self._socket().sendto(payload, self._address)
        except OSError as exc:
            log.debug("sd_notify_failed", fields=sorted(fields), error=str(exc))
            self.close()
            return False
        return True

    def close(self) -> None:
        """Close the socket; the next send opens a new one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SystemdNotifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _socket(self) -> socket.socket:
        """Return the open datagram socket, creating it on first use."""
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            # A full receive queue must not stall the daemon's event loop for long.
            sock.settimeout(self._send_timeout)
            self._sock = sock
        return self._sock


def _encode(fields: Mapping[str, str | int]) -> bytes:
    """Render fields as newline-separated `KEY=value`; a malformed field is a programming error."""
    if not fields:
        raise ValueError("a notify message needs at least one field")
    lines = []
    for name, value in fields.items():
        text = str(value)
        if not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"invalid sd_notify field name: {name!r}")
        if "\n" in text:
            raise ValueError(f"sd_notify field {name} must not contain a newline")
        lines.append(f"{name}={text}")
    return "\n".join(lines).encode()


def watchdog_timeout(env: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """Return the watchdog timeout in seconds from `$WATCHDOG_USEC`, or None when it is off."""
    watchdog_pid = env.get("WATCHDOG_PID", "")
    if watchdog_pid and watchdog_pid != str(os.getpid() if pid is None else pid):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


def watchdog_interval(env: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """Return how often to ping, in seconds: half the watchdog timeout, or None when it is off."""
    timeout = watchdog_timeout(env, pid)
    return None if timeout is None else timeout / 2

"""Checks of the configuration against this machine: can the state path and the listen
address actually be used, by this user, now?

They run as part of validation when asked (`Preflight` flags in the validation context), so
their problems are reported with all the others, each naming its source (file or variable).
`check-config` asks for both; `run` and `once` for both too, so that a path or port that
cannot work exits 78 (a configuration error) instead of 1 and a restart loop; a reload asks
for the state path only (the daemon holds its own port). Nothing here opens the store:
SQLite's locks belong to the process, and closing any other descriptor of the file would
drop them (`stat` and `access` open nothing).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import Flag, auto
from pathlib import Path
from typing import Any


class Preflight(Flag):
    """Which machine checks validation runs (none unless asked)."""

    NONE = 0
    STATE_PATH = auto()
    LISTEN = auto()
    ALL = STATE_PATH | LISTEN

    @classmethod
    def of(cls, context: Any) -> Preflight:
        """The checks a pydantic validation context asks for."""
        found = context.get("preflight") if isinstance(context, dict) else None
        return found if isinstance(found, Preflight) else cls.NONE


# The files SQLite (WAL mode) keeps beside the database.
SIDE_FILES = ("-wal", "-shm")
_PROBE_TIMEOUT = 2.0


def state_path_problem(path: Path) -> str | None:
    """Why the store cannot live at `path` (None when it can): the file, if it exists, is a
    regular file this user can read and write; its directory exists or can be created, and
    is writable (for the -wal and -shm files); the parents are directories."""
    path = path.expanduser()
    if path.exists():
        return _existing_file_problem(path)
    if os.path.lexists(path):
        return f"{path} is a broken symbolic link"
    ancestor = path.parent
    while not ancestor.exists():
        if os.path.lexists(ancestor):
            return f"{path} cannot be created: {ancestor} is a broken symbolic link"
        if ancestor == ancestor.parent:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{path} cannot be created: {ancestor} is a file, not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        missing = "" if ancestor == path.parent else f"{path.parent} does not exist and "
        return (
            f"{path} cannot be created: {missing}the directory {ancestor} is not writable by "
            f"this user ({_user()})"
        )
    return None


def _existing_file_problem(path: Path) -> str | None:
    if path.is_dir():
        return f"{path} is a directory; name a file in it, e.g. {path / 'watcher.db'}"
    if not path.is_file():
        return f"{path} is not a regular file"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable by this user ({_user()})"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return (
            f"{path} cannot be used: the directory {path.parent} is not writable by this user "
            f"({_user()}), and the store keeps its -wal and -shm files beside the file"
        )
    for suffix in SIDE_FILES:
        side = Path(f"{path}{suffix}")
        if side.exists() and not os.access(side, os.R_OK | os.W_OK):
            return (
                f"{path} cannot be used: {side} is not readable and writable by this user "
                f"({_user()}); was a command run as another user (root) against this store?"
            )
    return None


def _user() -> str:
    return f"uid {os.geteuid()}"


@dataclass(frozen=True, slots=True)
class ListenCheck:
    """Whether the listen address can be bound: a problem, or a note (e.g. a watcher has it)."""

    problem: str | None = None
    note: str | None = None


def check_listen(host: str, port: int) -> ListenCheck:
    """Try to bind `host:port` (and let go at once); a port a running watcher holds is a note.

    The bind uses the options the health server uses (SO_REUSEADDR, v6-only IPv6 sockets),
    so it fails exactly when the daemon would.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return ListenCheck(problem=f"cannot resolve the host {host!r}: {exc.strerror}")
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                return _bind_failure(exc, host, port)
    return ListenCheck()


def _bind_failure(exc: OSError, host: str, port: int) -> ListenCheck:
    if exc.errno == errno.EADDRINUSE:
        if _is_watcher(host, port):
            return ListenCheck(
                note="in use by a running watcher (a reload keeps it; a second watcher "
                "could not start)"
            )
        return ListenCheck(problem=f"port {port} on {host} is already in use by another program")
    if exc.errno == errno.EADDRNOTAVAIL:
        return ListenCheck(problem=f"{host} is not an address of this machine")
    if exc.errno == errno.EACCES:
        return ListenCheck(
            problem=f"this user ({_user()}) may not listen on port {port}; use a port above 1023"
        )
    return ListenCheck(problem=f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def _is_watcher(host: str, port: int) -> bool:
    """Whether what holds the port answers `/healthz` like the watcher's health server."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    shown = f"[{target}]" if ":" in target else target
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with direct.open(f"http://{shown}:{port}/healthz", timeout=_PROBE_TIMEOUT) as answer:
            return _says_live(answer.read(4096))
    except urllib.error.HTTPError as exc:  # 503: a watcher that is stuck is still a watcher
        return exc.code == 503 and _says_live(exc.read(4096))
    except (OSError, ValueError):
        return False


def _says_live(body: bytes) -> bool:
    """Whether a body is the watcher's liveness answer: `{"live": bool, "reason": text}`."""
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and isinstance(answer.get("live"), bool)


def listen_note(listen: str | None) -> str | None:
    """What `check-config` says beside the listen address: who holds it, if a watcher does."""
    if not listen:
        return None
    host, _, port = listen.strip().rpartition(":")
    return check_listen(host.strip("[]"), int(port)).note

"""A guard for the whole test session: nothing opens a live SQLite store's files but SQLite.

SQLite's locks are POSIX locks owned by the process; closing any other descriptor of the
database file, its -wal or its -shm drops all of them, and the next process to open and close
the store unlinks the -wal under the live connection. This guard is an audit hook
(`sys.addaudithook`): it learns every database path from the `sqlite3.connect` event, and on
every `open` event (the builtin `open`, `io.open`, `os.open`, `pathlib`) for such a path, or
its -wal/-shm/-journal, it looks in `/proc/self/fd` for a descriptor this process already has
on that very file (device and inode). Having one means a connection is live: the open is a
violation. It is recorded (a test fails at teardown even when the code swallowed the error)
and refused with `StoreOpenedTwice`.

Child processes get the same guard through `guard_env` (a `sitecustomize` on PYTHONPATH): a
violation there prints `STORE GUARD:` with a stack to stderr and ends the process with exit
code 86, which no test can mistake for success.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

SUFFIXES: Final = ("-wal", "-shm", "-journal")
ENV_FLAG: Final = "GW_TEST_STORE_GUARD"
EXIT_CODE: Final = 86
SITE_DIR: Final = Path(__file__).resolve().parent / "guard_site"


class StoreOpenedTwice(RuntimeError):
    """A live SQLite store's file was opened outside SQLite."""


_watched: set[str] = set()
_names: set[str] = set()
violations: list[str] = []
_local = threading.local()
_installed = False
_abort = False
_allowed = 0


def _database_path(database: object) -> str | None:
    """The file behind a `sqlite3.connect` argument (paths and `file:` URIs)."""
    if isinstance(database, bytes):
        database = os.fsdecode(database)
    if isinstance(database, os.PathLike):
        database = os.fspath(database)
    if not isinstance(database, str) or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        database = unquote(urlsplit(database).path)
    return os.path.abspath(database)


def _watch(database: object) -> None:
    path = _database_path(database)
    if path is None:
        return
    for name in (path, *(path + s for s in SUFFIXES)):
        _watched.add(name)
        _names.add(os.path.basename(name))


def _held_open(path: str) -> bool:
    """Whether this process already has a descriptor on the file now at `path`."""
    try:
        target = os.stat(path)
    except OSError:
        return False  # a new file: no descriptor of this process can be on it
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            found = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False


def _check_open(path: object) -> None:
    if isinstance(path, int) or path is None:
        return
    try:
        name = os.fsdecode(os.fspath(path))  # type: ignore[arg-type]
    except TypeError:
        return
    if os.path.basename(name) not in _names:
        return
    full = os.path.abspath(name)
    if full not in _watched or _allowed or not _held_open(full):
        return
    stack = "".join(traceback.format_stack(limit=12)[:-2])
    message = f"{full} opened outside SQLite while a connection to it is live\n{stack}"
    violations.append(message)
    if _abort:
        sys.stderr.write(f"STORE GUARD: {message}\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)
    raise StoreOpenedTwice(message)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("open", "sqlite3.connect") or getattr(_local, "busy", False):
        return
    _local.busy = True
    try:
        if event == "sqlite3.connect":
            _watch(args[0])
        else:
            _check_open(args[0])
    finally:
        _local.busy = False


def install(*, abort: bool = False) -> None:
    """Install the hook once per process (audit hooks cannot be removed)."""
    global _installed, _abort
    _abort = abort
    if not _installed:
        _installed = True
        sys.addaudithook(_hook)


@contextmanager
def allowed() -> Iterator[None]:
    """For a test that damages a live store's file on purpose."""
    global _allowed
    _allowed += 1
    try:
        yield
    finally:
        _allowed -= 1


def guard_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a child Python process that runs with the guard installed (aborting)."""
    guarded = dict(env)
    paths = [str(SITE_DIR), str(SITE_DIR.parent.parent)]
    if guarded.get("PYTHONPATH"):
        paths.append(guarded["PYTHONPATH"])
    guarded["PYTHONPATH"] = os.pathsep.join(paths)
    guarded[ENV_FLAG] = "1"
    return guarded

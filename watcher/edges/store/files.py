"""The store's files: created whole, opened only by SQLite, watched by identity while open.

SQLite's locks are POSIX locks, owned by the process: closing *any* descriptor of the
database file (or of its -wal/-shm) drops all of them, and the next process that opens and
closes the store thinks it is alone and unlinks the -wal under the daemon ("How To Corrupt An
SQLite Database File", 2.2). So nothing here ever opens those files: it works with paths
(stat, chmod, link, unlink) and lets the store's one SQLite connection do every open.

- A new store is built by SQLite under a temporary name beside `path` (mode 0600, schema
  complete) and linked into place only then: a store in the making never sits at `path`, so an
  existing file that is empty is damaged, never a new store. Only a path that does not exist
  gets a new store, and never while a -wal or -shm of a vanished store, or a copy saved
  when a store vanished (`rescue`), lies beside it.
- `OpenedFiles` remembers the (device, inode) of the database and its -wal and -shm once
  open; `check` says whether the path still names them (a file deleted or replaced under the
  store), so the store stops writing instead of splitting its history between two files.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import quote

from watcher.core.errors import StoreError, StoreReplaced
from watcher.edges.store import schema

SIDE_SUFFIXES: Final = ("-wal", "-shm")


@dataclass(frozen=True, slots=True)
class FileId:
    """Which file a path names: its device and inode numbers."""

    device: int
    inode: int

    def __str__(self) -> str:
        return f"inode {self.inode} on device {self.device}"


def file_id(path: Path | str) -> FileId | None:
    """The identity of the file at `path` (symlinks followed), or None when there is none."""
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return FileId(found.st_dev, found.st_ino)


def side_path(path: Path, suffix: str) -> Path:
    return Path(f"{path}{suffix}")


@dataclass(frozen=True, slots=True)
class OpenedFiles:
    """The files a connection opened: the database, then its -wal and -shm (None if absent)."""

    path: Path
    database: FileId
    sides: tuple[FileId | None, ...]

    @classmethod
    def taken(cls, path: Path, database: FileId) -> OpenedFiles:
        """Note the side files' identities now (they exist once a WAL connection has read)."""
        return cls(path, database, tuple(file_id(side_path(path, s)) for s in SIDE_SUFFIXES))

    def database_change(self) -> str | None:
        """What happened to the database file since it was opened, or None when nothing."""
        now = file_id(self.path)
        if now == self.database:
            return None
        if now is None:
            return f"{self.path} was deleted or moved away (the store had {self.database} open)"
        return f"{self.path} is now another file ({now}; the store had {self.database} open)"

    def remove_sides(self) -> None:
        """Unlink the -wal and -shm this connection opened, if the path still names them."""
        for suffix, was in zip(SIDE_SUFFIXES, self.sides, strict=True):
            side = side_path(self.path, suffix)
            if was is not None and file_id(side) == was:
                with contextlib.suppress(FileNotFoundError):
                    side.unlink()

    def side_change(self) -> str | None:
        """Which -wal/-shm file was deleted or replaced since the connection opened it."""
        for suffix, was in zip(SIDE_SUFFIXES, self.sides, strict=True):
            if was is not None and file_id(side_path(self.path, suffix)) != was:
                return f"{self.path}{suffix} was deleted or replaced under the open store"
        return None


def _uri(path: Path) -> str:
    """A URI that opens `path` read-write and never creates it (a vanished file is an error)."""
    return f"file:{quote(str(path.absolute()))}?mode=rw"


def connect_existing(path: Path) -> sqlite3.Connection:
    """Open an SQLite connection to the existing file at `path` (never creating it)."""
    return sqlite3.connect(
        _uri(path), uri=True, isolation_level=None, timeout=schema.BUSY_TIMEOUT_MS / 1000
    )


def open_connection(
    path: Path, now: datetime, integrity_check: bool
) -> tuple[sqlite3.Connection, OpenedFiles]:
    """Open the store at `path` (creating it whole if no file is there), checked and migrated;
    the connection and the files it opened. Runs on the store's thread."""
    if check_existing(path) is None:
        create(path, now)
    found = check_existing(path)
    if found is None:
        raise StoreError(f"state store {path}: it vanished while it was being created")
    try:
        conn = connect_existing(path)
    except sqlite3.Error as exc:
        raise schema.translate(exc, path, "opening") from exc
    try:
        schema.check_integrity(conn, path, full=integrity_check)
        schema.configure(conn, path)
        schema.migrate(conn, path, now)
        if file_id(path) != found:
            raise StoreReplaced(f"state store {path} was replaced while it was being opened")
        return conn, OpenedFiles.taken(path, found)
    except sqlite3.Error as exc:
        conn.close()
        raise schema.translate(exc, path, "opening") from exc
    except BaseException:
        conn.close()
        raise


def check_existing(path: Path) -> FileId | None:
    """The identity of the file at `path`, None when there is none; refuse what is no store.

    Raises `StoreError` for a directory, a special file or a file this user may not write,
    and `StoreCorrupt` for an empty file: only a path that does not exist gets a new store.
    """
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise _cannot_open(path, exc.strerror or type(exc).__name__) from exc
    if stat.S_ISDIR(found.st_mode):
        raise _cannot_open(path, "it is a directory")
    if not stat.S_ISREG(found.st_mode):
        raise _cannot_open(path, "it is not a regular file")
    if found.st_size == 0:
        raise schema.corrupt(
            path, "it is empty (0 bytes): a new store is only ever made where no file exists"
        )
    if not os.access(path, os.W_OK):
        raise _cannot_open(path, "it is not writable for this user")
    return FileId(found.st_dev, found.st_ino)


def _cannot_open(path: Path, reason: str) -> StoreError:
    return StoreError(
        f"state store {path}: cannot create or open it for writing: {reason}; the watcher "
        f"needs write access to the file and to {path.parent} (for the -wal and -shm files)"
    )


def create(path: Path, now: datetime) -> None:
    """Make a new, complete store at `path` (mode 0600, directory 0700) unless one appears first.

    Refuses when a -wal or -shm lies at `path` without its database: a new database beside an
    old journal would be corrupted by it.
    """
    strays = [f"{path}{s}" for s in SIDE_SUFFIXES if file_id(side_path(path, s)) is not None]
    rescued = rescued_copies(path)
    if strays:
        raise StoreError(_strays_message(path, strays, rescued))
    if rescued:
        raise StoreError(
            f"state store {path} does not exist, but {rescued[-1]} does: a watcher saved it "
            "when the store vanished from under it, with every alert it still owed. Move it to "
            f"{path} to go on with it, or move it elsewhere to start a new store (which records "
            "the current state silently)"
        )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_open(path, exc.strerror or type(exc).__name__) from exc
    if not os.access(path.parent, os.W_OK):
        raise _cannot_open(path, f"{path.parent} is not writable for this user")
    building = path.with_name(f".{path.name}.new-{uuid.uuid4().hex[:12]}")
    try:
        _build(building, path, now)
        _publish(building, path)
    finally:
        for leftover in (building, *(side_path(building, s) for s in SIDE_SUFFIXES)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _build(building: Path, path: Path, now: datetime) -> None:
    """Create the schema in a fresh file; closing its only connection folds the WAL in."""
    try:
        conn = sqlite3.connect(building, isolation_level=None)
    except sqlite3.Error as exc:
        raise _cannot_open(path, str(exc)) from exc
    try:
        os.chmod(building, 0o600)  # before any content; -wal/-shm take the file's mode
        schema.configure(conn, path)
        schema.migrate(conn, path, now)
    except sqlite3.Error as exc:
        raise schema.translate(exc, path, "creating a new store") from exc
    finally:
        conn.close()


def _publish(building: Path, path: Path) -> None:
    """Put the built store at `path` without ever replacing a file that appeared meanwhile."""
    try:
        os.link(building, path)
    except FileExistsError:
        return  # another process made it first: that store is the one
    except OSError:
        if file_id(path) is None:  # a filesystem without hard links
            os.rename(building, path)


def rescued_copies(path: Path) -> list[Path]:
    """The copies `rescue` saved beside `path`, oldest first (names only: nothing is opened)."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    prefix = f"{path.name}.rescued-"
    return [path.parent / name for name in sorted(names) if name.startswith(prefix)]


def _strays_message(path: Path, strays: list[str], rescued: list[Path]) -> str:
    saved = f"{rescued[-1]}" if rescued else f"{path}.rescued-<time>"
    return (
        f"state store {path} does not exist, but {' and '.join(strays)} of a store do: the "
        "database file was deleted or moved while a watcher had it open (the one holding it "
        f"saves a copy as {saved}), or a copy left its journal behind. A new store beside "
        "that journal would be corrupted by it, so none was made. Stop every watcher using "
        f"this path, delete those files, then move the database (or {saved}) back to {path}, "
        "or leave it away to start afresh"
    )


def rescue(conn: sqlite3.Connection, path: Path, at: datetime) -> Path:
    """Save what `conn` sees into `<path>.rescued-<UTC time>` (mode 0600) and return that path.

    Used when the store's file vanished under the open connection: the connection still reads
    it, so nothing it held (undelivered alerts included) is lost with the process. The copy
    is a new file nothing else has open; its lease is let go.
    """
    stem = f"{path}.rescued-{at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    target, n = Path(stem), 1
    while file_id(target) is not None:
        n += 1
        target = Path(f"{stem}-{n}")
    conn.execute("VACUUM INTO ?", (str(target),))
    os.chmod(target, 0o600)
    # The copy is for whoever runs next: this process, which stopped writing, lets its lease
    # go there (its claims go back to the queue when the next holder takes the lease).
    with contextlib.closing(sqlite3.connect(target, isolation_level=None)) as copy:
        copy.execute("UPDATE lease SET holder = NULL")
    return target

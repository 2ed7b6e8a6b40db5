"""Who else has the store open: an advisory lock file beside it, held while a store is open.

Outbox claims carry a lease so that a row claimed by a process that died (kill -9, OOM, a
watchdog restart) goes back to the queue. The lease must outlast the slowest legitimate send,
so it is minutes long, and a restart would hold back the dead process's alerts that long. The
lock file closes that gap: every open store holds a shared `flock` on `<state>.lock`; a store
that can take it exclusively on open is the only one, so every claim in the file belongs to
a process that is gone and can be returned to the queue at once. The kernel drops a dead
process's lock, whatever killed it. Where the lock file cannot be made (a read-only place),
nothing changes: the lease still returns orphaned claims, only later.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class StoreLock:
    """A shared lock on the store's lock file, held until `release`."""

    def __init__(self, fd: int | None, sole: bool) -> None:
        self._fd = fd
        self.sole = sole
        """True when no other process had the store open when this lock was taken."""

    @classmethod
    def take(cls, store_path: Path) -> StoreLock:
        """Open (creating with mode 0600) `<store>.lock` and lock it; never raises OSError."""
        try:
            fd = os.open(f"{store_path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return cls(None, sole=False)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                sole = True
            except BlockingIOError:
                sole = False
            fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError:
            os.close(fd)
            return cls(None, sole=False)
        return cls(fd, sole)

    def release(self) -> None:
        """Drop the lock (closing the file drops it); releasing twice is harmless."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

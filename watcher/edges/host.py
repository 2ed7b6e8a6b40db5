"""This host as the SQLite store's lease sees it: the lease clock, this process, other processes.

SQLite serves processes of one host only (WAL needs shared memory), so every contender for a
SQLite store's lease reads the same boot-time clock (`CLOCK_BOOTTIME`: monotonic, counts
suspend, never stepped by NTP) and can look at the other contenders' processes. A holder is
proven gone when it ran on this boot, in this pid namespace, and its pid is gone, a zombie, or
now another process (another start time); proven running when its pid runs with its start
time. Anything else (another container's pid namespace, no /proc) is unknown, and the lease's
expiry decides. Only `/proc` files of processes are read here, never the store's files.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path

from watcher.core.lease import Holder, LeaseTime, Liveness

_PROC = Path("/proc")


@cache
def boot_id() -> str:
    """The kernel's id of this boot (`/proc/sys/kernel/random/boot_id`); "" where unknown."""
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def lease_time() -> LeaseTime:
    """Now on the lease clock: seconds since boot (suspend included), named by the boot id.

    Without a boot id (not Linux) the clock is named by the host name alone; a reboot then
    shows as an expiry further ahead than its duration, which `watcher.core.lease.decide` treats
    as another clock.
    """
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    seconds = time.clock_gettime(clock) if clock is not None else time.monotonic()
    return LeaseTime(f"boot:{boot_id() or socket.gethostname()}", seconds)


def _pid_ns() -> str:
    try:
        return os.readlink(_PROC / "self/ns/pid")
    except OSError:
        return ""


def _stat_fields(pid: int | str) -> list[str] | None:
    """`/proc/PID/stat` from field 3 (state) on, or None when it cannot be read."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _start_ticks(fields: list[str] | None) -> int:
    try:
        return int(fields[19]) if fields else 0  # field 22: starttime
    except (IndexError, ValueError):
        return 0


def this_process(command: str, started: datetime) -> Holder:
    """This process as a lease holder, with a fresh id and what proves it alive or gone."""
    return Holder(
        id=uuid.uuid4().hex,
        command=command,
        host=socket.gethostname(),
        pid=os.getpid(),
        since=started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        boot=boot_id(),
        pid_ns=_pid_ns(),
        start=_start_ticks(_stat_fields("self")),
    )


def liveness(holder: Holder) -> Liveness:
    """Whether `holder` provably still runs, is provably gone, or cannot be judged from here."""
    if not holder.boot or holder.boot != boot_id() or not holder.start:
        return Liveness.UNKNOWN
    if not holder.pid_ns or holder.pid_ns != _pid_ns():
        return Liveness.UNKNOWN
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return Liveness.GONE
    except PermissionError:
        pass  # it exists, under another user
    fields = _stat_fields(holder.pid)
    if fields is None:
        return Liveness.UNKNOWN  # hidden (hidepid, ProtectProc): cannot rule out pid reuse
    if fields[:1] == ["Z"] or _start_ticks(fields) != holder.start:
        return Liveness.GONE  # a zombie, or the pid now belongs to another process
    return Liveness.RUNNING


def login_name() -> str:
    """Who runs this command, for `watcher ack --by`: the login name (`LOGNAME`, `USER`, the
    password database), or "unknown" when none can be found (a container without a user)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"

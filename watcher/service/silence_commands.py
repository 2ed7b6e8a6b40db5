"""`watcher silence add|list|expire`: silences written to and read from the store.

Any process sharing the store may add or expire a silence (no lease needed): the poller reads
them at each delivery round, so a silence takes effect at the next delivery without a restart.
Ends are on the wall clock ("for 2h" from now), shown in the local time zone of the shell.
"""

from __future__ import annotations

import getpass
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

from watcher.config import Config
from watcher.core import silence_text
from watcher.core.errors import WatcherError
from watcher.core.silences import Silence
from watcher.edges.store.sqlite import SqliteStore
from watcher.service.runtime import utcnow

Echo = Callable[[str], None]


class SilenceRefused(WatcherError):
    """A silence command that cannot do what was asked (unknown KB, event or id)."""


def local_zone() -> tzinfo | None:
    """The shell's local time zone (people read silences in it)."""
    return datetime.now().astimezone().tzinfo


def default_author() -> str:
    """Who adds a silence when `--by` is not given: the login name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return "unknown"


async def _open(config: Config, now: datetime) -> SqliteStore:
    return await SqliteStore.open(config.state.path, now=now, integrity_check=False)


async def add_silence(
    config: Config,
    *,
    kb: str,
    event: str,
    duration: timedelta,
    comment: str,
    by: str | None,
    echo: Echo,
    note: Echo,
) -> int:
    """Store a silence of `kb` and `event` for `duration` from now; print its id (stdout) and
    what it holds until when (`note`, stderr). SilenceRefused for an unknown KB or event."""
    try:
        kind = silence_text.parse_event(event)
    except ValueError as exc:
        raise SilenceRefused(f"--event: {exc}") from None
    now = utcnow()
    store = await _open(config, now)
    try:
        known = await store.known_kbs()
        known += [(k.uuid, k.name) for k in config.knowledge_bases]
        try:
            matcher = silence_text.resolve_kb(kb, known)
        except ValueError as exc:
            raise SilenceRefused(f"--kb: {exc}") from None
        silence = Silence(
            id=uuid.uuid4().hex[:10],
            kb_uuid=matcher.uuid,
            kb_label=matcher.label,
            event=kind,
            starts_at=now,
            ends_at=now + duration,
            created_by=by or default_author(),
            comment=comment,
        )
        await store.add_silence(silence)
    finally:
        await store.close()
    echo(silence.id)
    if matcher.note:
        note(f"note: {matcher.note}")
    note(silence_text.added_line(silence, local_zone()))
    return 0


async def list_silences(config: Config, *, every: bool, as_json: bool, echo: Echo) -> int:
    """Print the active silences (or every one stored) as a table or JSON."""
    now = utcnow()
    if not config.state.path.exists():
        found: list[Silence] = []
    else:
        store = await _open(config, now)
        try:
            found = await store.silences(now, every=every)
        finally:
            await store.close()
    if as_json:
        echo(json.dumps([silence_text.as_json(s, now) for s in found], indent=2))
    elif not found:
        echo("no active silence" if not every else "no silence stored")
    else:
        for line in silence_text.table(found, now, local_zone()):
            echo(line)
    return 0


async def expire_silence(config: Config, silence_id: str, *, echo: Echo) -> int:
    """End an active silence now; SilenceRefused when no active silence has that id."""
    if not config.state.path.exists():
        raise SilenceRefused(f"no state file at {config.state.path}: no silence to expire")
    now = utcnow()
    store = await _open(config, now)
    try:
        done = await store.expire_silence(silence_id.strip(), now)
    finally:
        await store.close()
    shown = silence_text.quoted(silence_id)
    if not done:
        raise SilenceRefused(
            f"no active silence has the id {shown} (see `watcher silence list --all`)"
        )
    echo(
        f"silence {shown} expired: the problems it held that are still open are announced "
        "at the next cycle"
    )
    return 0

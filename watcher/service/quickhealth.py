"""`watcher health`'s fast path: the verdict without building the configuration's models.

A probe runs every 30 s, and building the pydantic configuration was most of its cold start.
`run` and `once` store a *config mark* with their heartbeat: a digest of the configuration
file they loaded and validated, and of every environment variable loading reads (`WATCHER_*`,
the CA bundle's, `CREDENTIALS_DIRECTORY`). When the file and environment this probe sees give
the same mark, the whole configuration is one that a watcher validated (strictly: with its
token, its URLs and its state path), so the probe needs only `state.path` from it, read here
by the loader's rules (`[state] path`, else `WATCHER_STATE__PATH`, else `watcher.db`).

Anything else returns None and the caller loads the whole configuration as before, so every
message and exit code stays the full path's: a file that cannot be read or parsed, `state.url`
(PostgreSQL) or any `WATCHER_STATE*` variable but a plain `WATCHER_STATE__PATH`, a path that
is not a non-empty string, no store file, a store that cannot be opened, no mark, another mark
(the file was edited, a variable changed, the watcher was upgraded, a reload was rejected),
and a heartbeat carrying a failed cycle's error (its words may quote a secret of the
configuration, which only the full path registers for masking).
What a mark cannot prove: that the files the configuration names (a CA bundle, a secret file)
are still there; the daemon reads those, and its own heartbeat tells when they fail it.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from watcher.core.errors import StoreError
from watcher.core.health import HEARTBEAT_KEY, Health, Heartbeat, Probe
from watcher.edges.store.conn import StoreConnection

__all__ = ["MARK_ENVS", "MARK_KEY", "config_mark", "file_mark", "quick_health"]

MARK_KEY = "config_mark"
# The loader's names (`watcher.config.load`, `.env`, `.trust`), repeated here so that this
# module imports no configuration model (`tests/service/test_quick_health.py` compares them).
CONFIG_ENV = "WATCHER_CONFIG"
DEFAULT_CONFIG = "watcher.toml"
ENV_PREFIX = "WATCHER_"
NESTING = "__"
MARK_ENVS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "CREDENTIALS_DIRECTORY")
# An upgrade may refuse what the old version took: the code's own stamp is part of the mark.
_CODE = f"watcher-config-mark/1 {os.stat(__file__).st_mtime_ns}".encode()


def config_mark(raw: bytes, env: Mapping[str, str]) -> str:
    """The digest of a configuration file's bytes and of the variables loading it reads."""
    digest = hashlib.sha256(_CODE)
    digest.update(b"\0" + raw)
    for name in sorted(env):
        upper = name.upper()
        if (upper.startswith(ENV_PREFIX) and upper != CONFIG_ENV) or name in MARK_ENVS:
            digest.update(f"\0{name}={env[name]}".encode(errors="surrogateescape"))
    return digest.hexdigest()


def file_mark(source: str, env: Mapping[str, str]) -> str | None:
    """The mark of the file a configuration was loaded from (None: built in code, unreadable)."""
    try:
        return config_mark(Path(source).read_bytes(), env)
    except OSError:
        return None


async def quick_health(
    cli_value: str | None, env: Mapping[str, str], probe: Probe
) -> Health | None:
    """The verdict `check_health` gives, when a watcher validated this very configuration;
    else None (load it whole). It never waits: the store is read on the calling thread (the
    connection alone, `StoreConnection.open_here`), so it can run without an event loop."""
    found = _located(cli_value, env)
    if found is None:
        return None
    raw, state_path = found
    try:
        # `watcher health` shows errors only: a warning on the way (a side file replaced) is
        # not logged, so this path sets up no logs.
        store = StoreConnection.open_here(
            state_path, now=datetime.now(UTC), integrity_check=False, quiet=True
        )
    except StoreError:
        return None
    try:
        same = await store.get_meta(MARK_KEY) == config_mark(raw, env)
        beat = Heartbeat.decode(await store.get_meta(HEARTBEAT_KEY))
    except StoreError:
        same, beat = False, None
    # A failed cycle's words may quote a secret of the configuration, which only the full
    # path registers for masking: those verdicts take it.
    if not same or (beat is not None and beat.error):
        await store.close()
        return None
    # here, not at the top: `watcher once` imports this module for `file_mark` alone
    from watcher.service.healthcheck import judge_store

    return await judge_store(store, probe)


def _located(cli_value: str | None, env: Mapping[str, str]) -> tuple[bytes, Path] | None:
    """The configuration file's bytes and an existing store file it names (`--config`, else
    `$WATCHER_CONFIG`, else `./watcher.toml`), or None."""
    path = Path(cli_value or env.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    state_path = _state_path(raw, env)
    if state_path is None or not state_path.exists():
        return None
    return raw, state_path


def _state_path(raw: bytes, env: Mapping[str, str]) -> Path | None:
    """`state.path` as the loader reads it, when it is plainly a file path; else None."""
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    state = data.get("state", {})
    if not isinstance(state, dict) or "url" in state:
        return None
    value = state.get("path", "watcher.db")
    overrides = [
        name
        for name in env
        if name.upper().startswith(ENV_PREFIX)
        and name.upper() != CONFIG_ENV
        and name[len(ENV_PREFIX) :].lower().split(NESTING)[0] == "state"
    ]
    if overrides:
        if len(overrides) > 1 or overrides[0][len(ENV_PREFIX) :].lower() != "state__path":
            return None
        value = env[overrides[0]]
    if not isinstance(value, str) or not value.strip():
        return None
    return Path(value)

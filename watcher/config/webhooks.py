"""What a `format = "event"` route needs: plain webhook URLs and its signing secrets.

The URLs are where events are POSTed (not apprise URLs): http(s) with a host, `http://` only
for loopback hosts (an event names knowledge bases and their errors). The secret file holds
one `whsec_` secret per line (the first signs, and every other line too: during a rotation
list the new secret and the old one, and receivers accept either); blank lines and `#`
comments are ignored. A relative path is looked up in `$CREDENTIALS_DIRECTORY` when systemd
sets it, as `api.token_file` is. No message here ever contains a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from watcher.config.sections import is_loopback_host
from watcher.core.signing import parse_secret

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"


def event_url(text: str, index: int) -> str:
    """A webhook URL events are POSTed to; ValueError naming URL #index+1 otherwise."""
    parts = urlsplit(text)
    which = f"URL #{index + 1}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f'{which} must be an https:// URL with a host: a format = "event" route posts '
            "JSON to plain webhook URLs, not apprise URLs"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"{which}: http:// is only allowed for loopback hosts; use https://")
    return text


def read_signing_keys(path: Path, env: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
    """The keys of the secrets in `path`, in order; ValueError saying what is wrong."""
    env = os.environ if env is None else env
    path = path.expanduser()
    if not path.is_absolute() and env.get(CREDENTIALS_ENV):
        path = Path(env[CREDENTIALS_ENV]) / path
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ValueError(f"secret_file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ValueError(f"cannot read secret_file {path}: {reason}") from None
    keys = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            keys.append(parse_secret(line))
        except ValueError as exc:
            raise ValueError(f"secret_file {path}, line {number}: {exc}") from None
    if not keys:
        raise ValueError(f"secret_file {path} holds no whsec_ secret")
    return tuple(keys)

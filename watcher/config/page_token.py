"""The page's access token: the content of `[http] auth_token_file`.

A relative path is looked up in `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`), as
for `api.token_file`. The token must be at least `MIN_LENGTH` characters of printable ASCII
without spaces (it travels in an HTTP header, and a short one could be guessed);
`openssl rand -hex 32 > token` makes a good one. Problems name the key and the file, never the
token.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pydantic import SecretStr

from watcher.config.sections import HttpConfig
from watcher.core.errors import ConfigProblem

CREDENTIALS_ENV: Final = "CREDENTIALS_DIRECTORY"
MIN_LENGTH: Final = 16
_KEY: Final = "http.auth_token_file"


def token_path(http: HttpConfig, env: Mapping[str, str]) -> Path | None:
    """Where the token file is (None when `auth_token_file` is not set)."""
    if http.auth_token_file is None:
        return None
    path = http.auth_token_file.expanduser()
    if not path.is_absolute() and env.get(CREDENTIALS_ENV):
        path = Path(env[CREDENTIALS_ENV]) / path
    return path


def resolve_page_token(
    http: HttpConfig | None, env: Mapping[str, str], source: str
) -> tuple[SecretStr | None, list[ConfigProblem]]:
    """The page's token (None when no file is set) and the problems reading it."""
    path = None if http is None else token_path(http, env)
    if path is None:
        return None, []
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, [ConfigProblem(_KEY, f"token file {path} does not exist", source)]
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        return None, [ConfigProblem(_KEY, f"cannot read token file {path}: {reason}", source)]
    if not (value.isascii() and value.isprintable()) or any(c.isspace() for c in value):
        problem = f"token file {path} holds spaces or characters a token cannot"
        return None, [ConfigProblem(_KEY, problem, source)]
    if len(value) < MIN_LENGTH:
        problem = (
            f"the token in {path} is shorter than {MIN_LENGTH} characters: make a longer one, "
            f"e.g. openssl rand -hex 32 > {path}"
        )
        return None, [ConfigProblem(_KEY, problem, source)]
    return SecretStr(value), []

"""Load the configuration: the TOML file, then `WATCHER_` overrides, then the API token.

The token comes from `DIGITALOCEAN_ACCESS_TOKEN`, else `DIGITALOCEAN_TOKEN`, else the file
named by `api.token_file` (relative to `$CREDENTIALS_DIRECTORY` when systemd sets it).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from watcher.config.build import collect, to_problems
from watcher.config.env import apply_env
from watcher.config.page_token import resolve_page_token
from watcher.config.preflight import Preflight
from watcher.config.sections import ApiConfig, HttpConfig
from watcher.config.tree import Config
from watcher.config.trust import resolve_ca_bundle
from watcher.core.errors import ConfigError, ConfigProblem

CONFIG_ENV = "WATCHER_CONFIG"
DEFAULT_CONFIG = "watcher.toml"
TOKEN_ENVS = ("DIGITALOCEAN_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN")
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"


def resolve_config_path(cli_value: str | None, env: Mapping[str, str]) -> Path:
    """`--config` if given, else `$WATCHER_CONFIG`, else `./watcher.toml`."""
    chosen = cli_value or env.get(CONFIG_ENV) or DEFAULT_CONFIG
    return Path(chosen).expanduser()


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    require_token: bool = True,
    check_urls: bool = True,
    preflight: Preflight = Preflight.NONE,
) -> Config:
    """Read, override, validate and complete the configuration; raise ConfigError listing all.

    Without `require_token`, a missing or unreadable token is not an error: the reason is
    kept in `Config.token_problem` (for `status`, `health`, `check-config --no-token`).
    `check_urls=False` skips asking apprise whether each route URL parses: that loads all of
    apprise's plugins (about 0.3 s), which `once`, `status` and `health` can do without.
    `preflight` checks the state path and the listen address on this machine
    (`watcher.config.preflight`).
    """
    env = os.environ if env is None else env
    path = resolve_config_path(None, env) if path is None else path
    source = str(path)
    data, where, problems = apply_env(_read_toml(path), env)
    parts, issues = collect(data, check_urls=check_urls, preflight=preflight, env=env)
    problems += to_problems(issues, source, where)
    api = parts.get("api", ApiConfig)
    token, token_source, token_problems = resolve_token(
        api, env, where.get(("api", "token_file"), where.get(("api",), source))
    )
    if token is None and not token_problems and api is not None:
        token_problems = [ConfigProblem("token", _NO_TOKEN, source)]
    if require_token:
        problems += token_problems
    http_source = where.get(("http", "ca_bundle"), where.get(("http",), source))
    ca_bundle, ca_source, ca_problems = resolve_ca_bundle(
        parts.get("http", HttpConfig), env, http_source
    )
    problems += ca_problems
    if Preflight.LISTEN in preflight:  # those that serve the page (run), or check for it
        page_source = where.get(("http", "auth_token_file"), http_source)
        problems += resolve_page_token(parts.get("http", HttpConfig), env, page_source)[1]
    if problems:
        raise ConfigError(problems)
    return Config.assemble(
        parts,
        token=token if not token_problems else None,
        token_source=token_source if not token_problems else None,
        token_problem="; ".join(p.message if p.key == "token" else str(p) for p in token_problems)
        or None,
        ca_bundle=ca_bundle,
        ca_bundle_source=ca_source,
        source=source,
        overrides=tuple(sorted(set(where.values()))),
        origins=tuple(where.items()),
    )


_NO_TOKEN = (
    "no API token found: set DIGITALOCEAN_ACCESS_TOKEN (or DIGITALOCEAN_TOKEN) in the "
    "environment, or point api.token_file at a file holding it"
)


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, or a ConfigError saying how to fix a missing or broken one."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        message = (
            "configuration file not found; create it by copying config.example.toml, "
            f"or choose another file with --config PATH or ${CONFIG_ENV}"
        )
    except tomllib.TOMLDecodeError as exc:
        message = f"not valid TOML: {exc}"
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot read the file: {getattr(exc, 'strerror', None) or type(exc).__name__}"
    raise ConfigError([ConfigProblem("file", message, str(path))])


def resolve_token(
    api: ApiConfig | None, env: Mapping[str, str], file_source: str
) -> tuple[SecretStr | None, str | None, list[ConfigProblem]]:
    """The token, where it came from, and any problem reading it (empty env vars are unset)."""
    for name in TOKEN_ENVS:
        value = env.get(name, "").strip()
        if value:
            return SecretStr(value), f"environment variable {name}", _sanity("token", value, name)
    if api is None or api.token_file is None:
        return None, None, []
    path = api.token_file.expanduser()
    if not path.is_absolute() and env.get(CREDENTIALS_ENV):
        path = Path(env[CREDENTIALS_ENV]) / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, None, [_file_problem(f"token file {path} does not exist", file_source)]
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        return None, None, [_file_problem(f"cannot read token file {path}: {reason}", file_source)]
    if not value:
        return None, None, [_file_problem(f"token file {path} is empty", file_source)]
    return SecretStr(value), f"token file {path}", _sanity("api.token_file", value, file_source)


def _file_problem(message: str, source: str) -> ConfigProblem:
    return ConfigProblem("api.token_file", message, source)


def _sanity(key: str, token: str, source: str) -> list[ConfigProblem]:
    """A token must fit in an HTTP header: no spaces, no control or non-ASCII characters."""
    if token.isascii() and token.isprintable() and not any(c.isspace() for c in token):
        return []
    return [ConfigProblem(key, "the token contains spaces or characters a token cannot", source)]

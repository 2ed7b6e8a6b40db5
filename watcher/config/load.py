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

from watcher.config.accounts import AccountConfig
from watcher.config.build import collect, loc_text, to_problems
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
    accounts = parts.entries("accounts", AccountConfig)
    account_tokens: tuple[tuple[str, SecretStr | None, str | None], ...] = ()
    if accounts:
        account_tokens, token_problems = resolve_account_tokens(accounts, env, source, where)
        first = account_tokens[0]
        token, token_source = first[1], first[2]
    else:
        token, token_source, token_problems = resolve_token(
            api, env, where.get(("api", "token_file"), where.get(("api",), source))
        )
    if token is None and not token_problems and api is not None and not accounts:
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
        account_tokens=account_tokens,
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
    return read_token_file(api.token_file, env, "api.token_file", file_source)


def read_token_file(
    file: Path, env: Mapping[str, str], key: str, source: str
) -> tuple[SecretStr | None, str | None, list[ConfigProblem]]:
    """The token in `file` (relative to `$CREDENTIALS_DIRECTORY` when set), where it came
    from, and any problem reading it, named by `key` in `source`."""
    path = file.expanduser()
    if not path.is_absolute() and env.get(CREDENTIALS_ENV):
        path = Path(env[CREDENTIALS_ENV]) / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, None, [ConfigProblem(key, f"token file {path} does not exist", source)]
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        return None, None, [ConfigProblem(key, f"cannot read token file {path}: {reason}", source)]
    if not value:
        return None, None, [ConfigProblem(key, f"token file {path} is empty", source)]
    return SecretStr(value), f"token file {path}", _sanity(key, value, source)


def resolve_account_tokens(
    accounts: list[tuple[int, AccountConfig]],
    env: Mapping[str, str],
    source: str,
    where: Mapping[tuple[str | int, ...], str],
) -> tuple[tuple[tuple[str, SecretStr | None, str | None], ...], list[ConfigProblem]]:
    """Each account's (name, token, where it came from), and the problems: a variable unset
    and no file, a file that cannot be read, a token another account already has."""
    found: list[tuple[str, SecretStr | None, str | None]] = []
    problems: list[ConfigProblem] = []
    owners: dict[str, tuple[int, str]] = {}  # token -> (index, name) of its first account
    for index, account in accounts:
        loc: tuple[str | int, ...] = ("accounts", index)
        origin = where.get(loc, where.get(("accounts",), source))
        token, token_source, trouble = _account_token(account, env, loc, origin, where)
        problems += trouble
        if token is not None and not trouble:
            text = token.get_secret_value()
            if text in owners:
                before, name = owners[text]
                problems.append(
                    ConfigProblem(
                        _token_key(account, loc, env),
                        f"account {account.name!r} has the same token ({token_source}) as "
                        f"account {name!r} (accounts[{before}]): each account needs its own "
                        "token",
                        origin,
                    )
                )
                token = None
            else:
                owners[text] = (index, account.name)
        label = f"{token_source} (account {account.name!r})" if token_source else None
        found.append((account.name, token, label if token is not None else None))
    return tuple(found), problems


def _token_key(account: AccountConfig, loc: tuple[str | int, ...], env: Mapping[str, str]) -> str:
    """The key that gave the account its token: `token_env` when its variable is set."""
    by_env = account.token_env is not None and env.get(account.token_env, "").strip()
    return loc_text((*loc, "token_env" if by_env else "token_file"))


def _account_token(
    account: AccountConfig,
    env: Mapping[str, str],
    loc: tuple[str | int, ...],
    origin: str,
    where: Mapping[tuple[str | int, ...], str],
) -> tuple[SecretStr | None, str | None, list[ConfigProblem]]:
    """An account's token: its `token_env` variable when set and not empty, else its
    `token_file`; a problem names the key, and the variable or file."""
    if account.token_env is not None:
        value = env.get(account.token_env, "").strip()
        if value:
            name = account.token_env
            key = loc_text((*loc, "token_env"))
            return SecretStr(value), f"environment variable {name}", _sanity(key, value, name)
        if account.token_file is None:
            message = (
                f"account {account.name!r}: the environment variable {account.token_env} is "
                "not set or empty (set it, or give the account a token_file)"
            )
            return None, None, [ConfigProblem(loc_text((*loc, "token_env")), message, origin)]
    if account.token_file is None:
        return None, None, []  # `account_issues` already said the account has no token source
    file_source = where.get((*loc, "token_file"), origin)
    token, token_source, problems = read_token_file(
        account.token_file, env, loc_text((*loc, "token_file")), file_source
    )
    problems = [
        ConfigProblem(p.key, f"account {account.name!r}: {p.message}", p.source) for p in problems
    ]
    return token, token_source, problems


def _sanity(key: str, token: str, source: str) -> list[ConfigProblem]:
    """A token must fit in an HTTP header: no spaces, no control or non-ASCII characters."""
    if token.isascii() and token.isprintable() and not any(c.isspace() for c in token):
        return []
    return [ConfigProblem(key, "the token contains spaces or characters a token cannot", source)]

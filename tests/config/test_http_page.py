"""`[http]` for the page: its token file, its connection limit, and what check-config says."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.config import describe, load_config
from watcher.config.preflight import Preflight
from watcher.core.errors import ConfigError

TOKEN_ENV = {"DIGITALOCEAN_ACCESS_TOKEN": "dop_v1_" + "5ec7e7" * 10 + "wxyz"}
ROUTE = '[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:8080/hook"]\n'
PAGE_TOKEN = "0123456789abcdef0123456789abcdef"


def _load(tmp_path: Path, http: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "watcher.toml"
    path.write_text(f"[http]\n{http}\n{ROUTE}", encoding="utf-8")
    return load_config(path, {**TOKEN_ENV, **(env or {})}, preflight=Preflight.LISTEN)


def _problem(tmp_path: Path, http: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, http, env)
    [found] = caught.value.problems
    assert PAGE_TOKEN not in str(found)
    return f"{found.key}: {found.message}"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # Missing, short, or not a token at all: named, never shown.
        (None, "http.auth_token_file: token file {path} does not exist"),
        ("short-token", "shorter than 16 characters: make a longer one"),
        ("has a space " * 3, "holds spaces or characters a token cannot"),
    ],
)
def test_a_token_file_that_cannot_serve_is_a_problem_naming_the_key(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    token = tmp_path / "page-token"
    if content is not None:
        token.write_text(content)
    message = _problem(tmp_path, f'auth_token_file = "{token}"')
    assert expected.format(path=token) in message


def test_a_relative_token_file_is_looked_up_in_the_credentials_directory(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "page-token").write_text(PAGE_TOKEN + "\n")
    config = _load(
        tmp_path, 'auth_token_file = "page-token"', {"CREDENTIALS_DIRECTORY": str(creds)}
    )
    assert config.http.auth_token_file == Path("page-token")


def test_the_token_file_is_checked_only_where_the_page_is_served(tmp_path: Path) -> None:
    """`status` and `health` (no preflight) do not need to read the page's token."""
    path = tmp_path / "watcher.toml"
    path.write_text(f'[http]\nauth_token_file = "/nowhere/token"\n{ROUTE}', encoding="utf-8")
    assert load_config(path, TOKEN_ENV).http.auth_token_file == Path("/nowhere/token")


@pytest.mark.parametrize("value", [0, 3, 5000])
def test_max_connections_is_bounded(tmp_path: Path, value: int) -> None:
    assert _problem(tmp_path, f"max_connections = {value}").startswith("http.max_connections")


@pytest.mark.parametrize(
    ("http", "says"),
    [
        ('listen = "127.0.0.1:0"', "the page and /api/v1 for this machine only; no writes"),
        ('listen = "0.0.0.0:0"', "only /healthz, /readyz and /metrics (the page needs"),
        ('listen = "0.0.0.0:0"\nauth_token_file = "{token}"', "with the token of {token}"),
        ("", "HTTP:       off"),
    ],
)
def test_check_config_says_who_may_reach_the_page(tmp_path: Path, http: str, says: str) -> None:
    token = tmp_path / "page-token"
    token.write_text(PAGE_TOKEN)
    text = describe(_load(tmp_path, http.format(token=token)))
    assert says.format(token=token) in text
    assert PAGE_TOKEN not in text

"""`[[accounts]]`: several tokens in one config, each with its KBs and budget; the errors name
the key and where it came from (the file, or the variable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.config import Config, describe, load_config
from watcher.core.errors import ConfigError, ConfigProblem

TOKEN_A = "dop_v1_" + "a1" * 32
TOKEN_B = "dop_v1_" + "b2" * 32
KB_A = "9f3c1b2a-4d5e-11ef-8a1b-0242ac120002"
ROUTE = '[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:8080/hook"]\n'
TWO = f"""
[[accounts]]
name = "prod"
token_env = "DO_TOKEN_PROD"
max_requests_per_minute = 40
[[accounts.knowledge_bases]]
uuid = "{KB_A}"
name = "docs"

[[accounts]]
name = "staging"
token_env = "DO_TOKEN_STAGING"
reserve = 100
"""
ENV = {"DO_TOKEN_PROD": TOKEN_A, "DO_TOKEN_STAGING": TOKEN_B}


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "watcher.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, ENV if env is None else env, check_urls=False)


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    for found in caught.value.problems:
        assert TOKEN_A not in str(found) and TOKEN_B not in str(found)
    return list(caught.value.problems)


def test_each_account_gets_its_token_kbs_and_budget_the_rest_from_api(tmp_path: Path) -> None:
    config = load(tmp_path, TWO + ROUTE)
    prod, staging = config.account_list()
    assert (prod.name, prod.token and prod.token.get_secret_value()) == ("prod", TOKEN_A)
    assert prod.token_source == "environment variable DO_TOKEN_PROD (account 'prod')"
    assert [kb.uuid for kb in prod.knowledge_bases] == [KB_A]
    assert (prod.max_requests_per_minute, prod.reserve) == (40, 500)
    assert staging.knowledge_bases == ()  # every KB of that account
    assert (staging.max_requests_per_minute, staging.reserve) == (60, 100)
    one = config.for_account(staging)
    assert one.account == "staging" and one.token is not None
    assert one.token.get_secret_value() == TOKEN_B and one.watched() == ()
    assert one.api.max_requests_per_minute == 60 and one.api.reserve == 100


def test_a_config_without_accounts_is_one_account_named_default(tmp_path: Path) -> None:
    config = load(tmp_path, ROUTE, {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN_A})
    (only,) = config.account_list()
    assert only.name == "default" and not config.several_accounts
    assert config.for_account(only) is config


def test_an_account_token_may_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "staging-token").write_text(TOKEN_B + "\n")
    text = TWO.replace('token_env = "DO_TOKEN_STAGING"', 'token_file = "staging-token"')
    text = text.replace('"staging-token"', f'"{tmp_path / "staging-token"}"')
    config = load(tmp_path, text + ROUTE, {"DO_TOKEN_PROD": TOKEN_A})
    staging = config.account_list()[1]
    assert staging.token is not None and staging.token.get_secret_value() == TOKEN_B
    assert staging.token_source == f"token file {tmp_path / 'staging-token'} (account 'staging')"


def test_top_level_knowledge_bases_cannot_be_mixed_with_accounts(tmp_path: Path) -> None:
    text = f'[[knowledge_bases]]\nuuid = "{KB_A}"\n' + TWO + ROUTE
    (found,) = [p for p in problems(tmp_path, text) if p.key == "knowledge_bases"]
    assert "cannot be used together with [[accounts]]" in found.message
    assert found.source == str(tmp_path / "watcher.toml")


def test_duplicate_account_names_are_refused(tmp_path: Path) -> None:
    text = TWO.replace('name = "staging"', 'name = "prod"') + ROUTE
    (found,) = problems(tmp_path, text)
    assert found.key == "accounts[1].name"
    assert found.message == "duplicate account name; see accounts[0]"


def test_two_accounts_with_the_same_token_are_refused(tmp_path: Path) -> None:
    env = {"DO_TOKEN_PROD": TOKEN_A, "DO_TOKEN_STAGING": TOKEN_A}
    (found,) = problems(tmp_path, TWO + ROUTE, env)
    assert found.key == "accounts[1].token_env"
    assert "'staging' has the same token (environment variable DO_TOKEN_STAGING)" in found.message
    assert "'prod' (accounts[0])" in found.message


def test_an_account_without_a_token_source_is_refused(tmp_path: Path) -> None:
    text = TWO.replace('token_env = "DO_TOKEN_STAGING"\n', "") + ROUTE
    (found,) = problems(tmp_path, text)
    assert found.key == "accounts[1]"
    assert "account 'staging' has no token: set token_env" in found.message


def test_an_unset_token_variable_names_the_variable(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, TWO + ROUTE, {"DO_TOKEN_PROD": TOKEN_A})
    assert found.key == "accounts[1].token_env"
    assert "the environment variable DO_TOKEN_STAGING is not set or empty" in found.message


def test_an_unreadable_token_file_names_the_file(tmp_path: Path) -> None:
    text = TWO.replace('token_env = "DO_TOKEN_STAGING"', 'token_file = "/nonexistent/tok"')
    (found,) = problems(tmp_path, text + ROUTE, {"DO_TOKEN_PROD": TOKEN_A})
    assert found.key == "accounts[1].token_file"
    assert found.message == "account 'staging': token file /nonexistent/tok does not exist"


def test_an_account_set_by_a_variable_names_that_variable(tmp_path: Path) -> None:
    env = {**ENV, "WATCHER_ACCOUNTS__1__NAME": "prod"}
    (found,) = problems(tmp_path, TWO + ROUTE, env)
    assert (found.key, found.source) == ("accounts[1].name", "WATCHER_ACCOUNTS__1__NAME")


def test_a_route_may_hear_only_some_accounts_and_must_name_real_ones(tmp_path: Path) -> None:
    config = load(tmp_path, TWO + ROUTE + 'accounts = ["staging"]\n')
    assert config.deaf_routes("prod") == {"ops"} and config.deaf_routes("staging") == set()
    (found,) = problems(tmp_path, TWO + ROUTE + 'accounts = ["prod", "qa"]\n')
    assert found.key == "routes[0].accounts[1]"
    assert found.message == "'qa' is not an account (accounts: 'prod', 'staging')"


def test_route_kb_names_are_checked_against_every_accounts_kbs(tmp_path: Path) -> None:
    load(tmp_path, TWO + ROUTE + 'knowledge_bases = ["docs"]\n')
    (found,) = problems(tmp_path, TWO + ROUTE + 'knowledge_bases = ["nope"]\n')
    assert found.key == "routes[0].knowledge_bases[0]"


def test_check_config_lists_each_account_with_its_token_masked(tmp_path: Path) -> None:
    text = describe(load(tmp_path, TWO + ROUTE))
    assert "  Accounts:   2 (each polled on its own, alerts name it)" in text
    assert "    - prod: token dop_v1_… (sha256 " in text
    assert "from environment variable DO_TOKEN_PROD (account 'prod'); watching 1 knowledge" in text
    assert "    - staging: token" in text and "at most 60 requests/min, leaving 100" in text
    assert TOKEN_A not in text and TOKEN_B not in text


def test_the_readmes_two_account_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Several accounts\n", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = load(tmp_path, example, {"DO_TOKEN_PROD": TOKEN_A, "DO_TOKEN_STAGING": TOKEN_B})
    assert [a.name for a in config.account_list()] == ["prod", "staging"]
    assert config.deaf_routes("prod") == {"staging-team"}
    prod, staging = config.account_list()
    assert prod.max_requests_per_minute == 120 and staging.reserve == 100

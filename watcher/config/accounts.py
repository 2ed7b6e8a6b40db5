"""`[[accounts]]`: several DigitalOcean accounts (tokens) watched by one deployment.

Each account has a `name`, a token source (`token_env`, the environment variable holding its
token, and/or `token_file`, read like `api.token_file`; the variable wins when both give one),
its own `[[accounts.knowledge_bases]]` (shaped like the top-level `[[knowledge_bases]]`; none
means every KB of that account) and its own rate budget (`max_requests_per_minute`, `reserve`,
`[api]`'s by default). Everything else (`[api] base_url`, `[poll]`, the store, the routes) is
shared. A config without `[[accounts]]` is one account named `default` (`DEFAULT_ACCOUNT`),
whose token comes from `DIGITALOCEAN_ACCESS_TOKEN` or `api.token_file` as before.

Rules (`account_issues`): the top-level `[[knowledge_bases]]` cannot be used together with
`[[accounts]]`; account names are unique; each account names a token source. Two accounts with
the same token are refused once the tokens are read (`watcher.config.load`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from watcher.config.checks import Issue
from watcher.config.sections import KnowledgeBaseConfig, Section

DEFAULT_ACCOUNT = "default"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class AccountConfig(Section):
    """`[[accounts]]`: one account: its name, token source, KBs and rate budget."""

    name: str
    token_env: str | None = None
    token_file: Path | None = None
    knowledge_bases: tuple[KnowledgeBaseConfig, ...] = ()
    max_requests_per_minute: int | None = Field(default=None, ge=1, le=250)
    reserve: int | None = Field(default=None, ge=0, le=4500)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value.strip()):
            raise ValueError(
                "must be 1 to 32 characters: lower-case letters, digits, '_', '.' or '-', "
                "starting with a letter or digit (it names the account in alerts and metrics)"
            )
        return value.strip()

    @field_validator("token_env")
    @classmethod
    def _check_env(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not _ENV_NAME.fullmatch(value.strip()):
            raise ValueError("must be the name of an environment variable, e.g. DO_TOKEN_PROD")
        return value.strip()

    @field_validator("token_file", mode="before")
    @classmethod
    def _blank_file_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


@dataclass(frozen=True, slots=True)
class Account:
    """One account as the service runs it: its name, token (None when not loaded), where the
    token came from, its KBs and its rate budget."""

    name: str
    token: SecretStr | None
    token_source: str | None
    knowledge_bases: tuple[KnowledgeBaseConfig, ...]
    max_requests_per_minute: int
    reserve: int


def account_issues(
    accounts: Sequence[tuple[int, AccountConfig]], top_level_kbs: int, *, present: bool
) -> list[Issue]:
    """Names are unique, each account names a token source, and `[[knowledge_bases]]` is not
    mixed with `[[accounts]]` (`present`: the config has an `[[accounts]]` array at all)."""
    issues: list[Issue] = []
    if present and top_level_kbs:
        issues.append(
            Issue(
                ("knowledge_bases",),
                "cannot be used together with [[accounts]]: move each entry into its account's "
                "[[accounts.knowledge_bases]]",
            )
        )
    seen: dict[str, int] = {}
    for index, account in accounts:
        if account.name in seen:
            where = f"accounts[{seen[account.name]}]"
            message = f"duplicate account name; see {where}"
            issues.append(Issue(("accounts", index, "name"), message))
        seen.setdefault(account.name, index)
        if account.token_env is None and account.token_file is None:
            issues.append(
                Issue(
                    ("accounts", index),
                    f"account {account.name!r} has no token: set token_env (the environment "
                    "variable holding its token) or token_file",
                )
            )
        issues.extend(_kb_issues(index, account))
    return issues


def _kb_issues(index: int, account: AccountConfig) -> list[Issue]:
    issues = []
    uuids: dict[str, int] = {}
    names: dict[str, int] = {}
    for position, kb in enumerate(account.knowledge_bases):
        loc = ("accounts", index, "knowledge_bases", position)
        if kb.uuid in uuids:
            issues.append(Issue((*loc, "uuid"), f"repeats knowledge_bases[{uuids[kb.uuid]}]"))
        uuids.setdefault(kb.uuid, position)
        if kb.name is not None and kb.name in names:
            issues.append(Issue((*loc, "name"), f"repeats knowledge_bases[{names[kb.name]}]"))
        if kb.name is not None:
            names.setdefault(kb.name, position)
    return issues

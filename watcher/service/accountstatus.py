"""What `status` (and the page) tell of each account, when the config has several.

Each KB row names its account (from the account's KB list, `watcher.service.accountscope`),
and each account gets a line: its KBs, and whether its API answers (its own `api_health`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from watcher.config import Config
from watcher.core.apihealth import ApiHealth
from watcher.core.ports import MetaStore
from watcher.core.snapshot import StoreSnapshot
from watcher.service.accountscope import KBS_KEY, account_key


async def kb_accounts(store: MetaStore, config: Config) -> dict[str, str]:
    """Each recorded KB's account, by KB uuid (empty with a single account)."""
    found: dict[str, str] = {}
    for account in config.accounts:
        raw = await store.get_meta(account_key(account.name, KBS_KEY))
        try:
            uuids = json.loads(raw) if raw else []
        except ValueError:
            continue
        found.update(dict.fromkeys(uuids, account.name))
    return found


async def with_accounts(store: MetaStore, config: Config, snapshot: StoreSnapshot) -> StoreSnapshot:
    """The snapshot with each KB row naming its account (unchanged with a single account)."""
    if not config.several_accounts:
        return snapshot
    owners = await kb_accounts(store, config)
    kbs = tuple(replace(kb, account=owners.get(kb.uuid)) for kb in snapshot.kbs)
    return replace(snapshot, kbs=kbs)


async def accounts_json(
    store: MetaStore, config: Config, snapshot: StoreSnapshot
) -> list[dict[str, Any]]:
    """One entry per account: its name, KB count and API health (empty with one account)."""
    entries = []
    for account in config.accounts:
        health = ApiHealth.decode(await store.get_meta(account_key(account.name, "api_health")))
        since = health.failing_since
        entries.append(
            {
                "name": account.name,
                "knowledge_bases": sum(1 for kb in snapshot.kbs if kb.account == account.name),
                "api_failing_since": since.isoformat() if since else None,
                "api_error": health.last_error,
            }
        )
    return entries


def account_lines(entries: list[dict[str, Any]]) -> list[str]:
    """`Account prod: 3 knowledge base(s); API answering` (or failing since when, and why)."""
    lines = []
    for entry in entries:
        api = "API answering"
        if entry["api_failing_since"]:
            api = f"API failing since {entry['api_failing_since']}: {entry['api_error']}"
        kbs = entry["knowledge_bases"]
        lines.append(f"Account {entry['name']}: {kbs} knowledge base(s); {api}")
    return lines

"""The cycle's check of the setup against the account: route entries that match nothing and
watched knowledge bases the account does not list (the rules are in `watcher.core.account`).

What it finds is logged once per process and per reload (a new `AccountCheck` comes with
each runtime), alerted once (`knowledge_base_missing` / `knowledge_base_found`) and kept in the
store's meta table for `watcher status`: everything it writes goes into the cycle's own
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

import structlog

from watcher.core.account import (
    MissingKb,
    RouteRefs,
    UnmatchedRef,
    presence,
    unmatched_refs,
)
from watcher.core.model import EventKind, KnowledgeBase, WatchedKb
from watcher.core.ports import MetaStore
from watcher.core.state import Transition, WatchState

log = structlog.get_logger(__name__)

MISSING_KEY = "missing_knowledge_bases"
UNMATCHED_KEY = "unmatched_route_entries"


class AccountCheck:
    """Checks each listing of the account against the configured routes and watched KBs."""

    def __init__(
        self, meta: MetaStore, watched: Sequence[WatchedKb], routes: Sequence[RouteRefs]
    ) -> None:
        self.meta, self.watched, self.routes = meta, tuple(watched), tuple(routes)
        self._unmatched: tuple[UnmatchedRef, ...] | None = None
        self._reminded = False

    async def check_routes(self, account: Sequence[KnowledgeBase]) -> dict[str, str | None]:
        """Log the route entries that match nothing when that set changes (so: at start and
        at every reload); the meta to record with the cycle when the stored one differs."""
        found = unmatched_refs(self.routes, self.watched, account)
        if found != self._unmatched:
            for ref in found:
                log.warning(
                    "route_entry_matches_nothing",
                    route=ref.route,
                    key=ref.key,
                    reason=ref.reason,
                    suggestion=ref.suggestion,
                )
            if self._unmatched and not found:
                log.info("route_entries_all_match")
            self._unmatched = found
        encoded = encode_unmatched(found)
        if await self.meta.get_meta(UNMATCHED_KEY) == encoded:
            return {}
        return {UNMATCHED_KEY: encoded}

    async def presence(
        self, account: Sequence[KnowledgeBase], known: WatchState, now: datetime
    ) -> tuple[tuple[Transition, ...], dict[str, str | None]]:
        """The missing/found transitions of this listing, and the meta to record with them."""
        if not self.watched:
            return (), {}
        before = decode_missing(await self.meta.get_meta(MISSING_KEY))
        watched = [
            WatchedKb(kb.uuid, kb.name or _known_name(known, kb.uuid)) for kb in self.watched
        ]
        after, transitions = presence(
            {kb.uuid: kb for kb in before}, watched, {kb.uuid for kb in account}, now
        )
        self._log(transitions, after)
        if list(after.values()) == before:
            return transitions, {}
        return transitions, {MISSING_KEY: encode_missing(after.values())}

    def _log(self, transitions: Sequence[Transition], after: dict[str, MissingKb]) -> None:
        """Each change once; at the first listing also what was already missing before."""
        new = {t.kb_uuid for t in transitions}
        for kb in after.values():
            if kb.uuid in new or not self._reminded:
                log.warning(
                    "knowledge_base_missing",
                    kb=kb.uuid,
                    name=kb.name,
                    since=kb.since.isoformat(timespec="seconds"),
                )
        for t in transitions:
            if t.kind is EventKind.KNOWLEDGE_BASE_FOUND:
                log.info("knowledge_base_found", kb=t.kb_uuid, name=t.kb_name)
        self._reminded = True


def _known_name(known: WatchState, uuid: str) -> str | None:
    state = known.kbs.get(uuid)
    return state.name if state else None


def encode_missing(kbs: Iterable[MissingKb]) -> str:
    """The missing set as JSON for the meta table."""
    return json.dumps(
        [{"uuid": kb.uuid, "name": kb.name, "since": kb.since.isoformat()} for kb in kbs]
    )


def decode_missing(raw: str | None) -> list[MissingKb]:
    """The missing set from the meta table (empty when never written)."""
    if not raw:
        return []
    return [
        MissingKb(item["uuid"], item.get("name"), datetime.fromisoformat(item["since"]))
        for item in json.loads(raw)
    ]


def encode_unmatched(refs: Sequence[UnmatchedRef]) -> str:
    """Unmatched route entries as JSON for the meta table; an entry that is not a plain
    word is stored as its placeholder (it may be a secret pasted into the wrong key)."""
    return json.dumps(
        [
            {
                "route": ref.route,
                "index": ref.index,
                "position": ref.position,
                "ref": ref.ref if ref.shown != "this entry" else "",
                "suggestion": ref.suggestion,
            }
            for ref in refs
        ]
    )


def decode_unmatched(raw: str | None) -> list[UnmatchedRef]:
    """Unmatched route entries from the meta table (empty when never written)."""
    if not raw:
        return []
    return [
        UnmatchedRef(
            item["route"], item["index"], item["position"], item["ref"], item.get("suggestion")
        )
        for item in json.loads(raw)
    ]

"""One account's view of the shared store, when a config has several `[[accounts]]`.

Knowledge base uuids are account-scoped: one token never sees another account's KBs. So every
"whole account" judgement a cycle makes (a followed job no list showed, a watched KB missing,
the first run's baseline, the API's health, costs, remediations) must be made over that
account's part of the store alone, or account A's cycle would judge account B's KBs gone.
`AccountScope` wraps the store a cycle is given (state and meta):

- `load` returns only the KBs this account has recorded, their jobs and incidents; the
  account's KBs are kept in the meta value `account/<name>/knowledge_bases`, written in the
  same transaction as the cycle that first saw them (so no schema change);
- the meta values of whole-account judgements (`SCOPED_KEYS`) live under `account/<name>/`;
- `record` stamps each event with the account (the alert names it), gives the account's API
  events ids of their own (`api/<name>/...`: two accounts can fail at the same second), and
  leaves out the outbox rows of routes whose `accounts = [...]` does not name this account.

Everything else (the outbox, delivery health, digests, silences) stays shared. A single-account
config never uses this: its store, keys and alerts are the ones it always had.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any, Final

from watcher.core.model import EventKind
from watcher.core.state import Change, Transition, WatchState

SCOPED_KEYS: Final = frozenset(
    {
        "api_health",
        "api_baseline",
        "missing_knowledge_bases",
        "unmatched_route_entries",
        "model_prices_read",
        "kb_prices",
        "recent_costs",
        "remediations",
        "poll_pace",
    }
)
"""The meta values that judge a whole account (each account keeps its own)."""
KBS_KEY: Final = "knowledge_bases"
# The deployment's own events: never stamped with an account, their ids left alone.
_SHARED_EVENTS: Final = frozenset(
    {
        EventKind.DELIVERY_FAILING,
        EventKind.DELIVERY_RECOVERED,
        EventKind.DIGEST,
        EventKind.SILENCE_ENDED,
    }
)


def account_key(account: str, key: str) -> str:
    """The meta key of `key` for `account`: `account/<name>/<key>`."""
    return f"account/{account}/{key}"


class AccountScope:
    """The store as one account's cycle sees it (see the module docstring); everything it
    does not scope is handed to `inner` unchanged."""

    def __init__(self, inner: Any, account: str, deaf_routes: Collection[str] = ()) -> None:
        self._inner = inner
        self.account = account
        self._deaf = frozenset(deaf_routes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _key(self, key: str) -> str:
        return account_key(self.account, key) if key in SCOPED_KEYS else key

    async def owned(self) -> frozenset[str]:
        """The uuids of the KBs this account has recorded."""
        raw = await self._inner.get_meta(account_key(self.account, KBS_KEY))
        try:
            return frozenset(json.loads(raw)) if raw else frozenset()
        except (ValueError, TypeError):
            return frozenset()

    async def load(self, job_uuids: Collection[str]) -> WatchState:
        """This account's KBs, their jobs and open incidents (and no other account's)."""
        state: WatchState = await self._inner.load(job_uuids)
        mine = await self.owned()
        return replace(
            state,
            kbs={uuid: kb for uuid, kb in state.kbs.items() if uuid in mine},
            jobs={uuid: job for uuid, job in state.jobs.items() if job.kb_uuid in mine},
            incidents={uuid: i for uuid, i in state.incidents.items() if uuid in mine},
        )

    async def record(self, change: Change, *, meta: Mapping[str, str | None] | None = None) -> None:
        """The change, its events stamped with the account, in one transaction with the
        account's KB list (when it grew) and its meta values."""
        scoped = {self._key(k): v for k, v in (meta or {}).items()}
        new = {kb.uuid for kb in change.kbs}
        if new:
            mine = await self.owned()
            if not new <= mine:
                scoped[account_key(self.account, KBS_KEY)] = json.dumps(sorted(mine | new))
        await self._inner.record(self._stamped(change), meta=scoped)

    def _stamped(self, change: Change) -> Change:
        ids: dict[str, str] = {}
        transitions = []
        for t in change.transitions:
            if t.kind in _SHARED_EVENTS:
                transitions.append(t)
                continue
            event_id = self._event_id(t)
            ids[t.event_id] = event_id
            transitions.append(replace(t, account=self.account, event_id=event_id))
        deliveries = tuple(
            replace(d, event_id=ids.get(d.event_id, d.event_id))
            for d in change.deliveries
            if not (d.route in self._deaf and d.event_id in ids)
        )
        return replace(change, transitions=tuple(transitions), deliveries=deliveries)

    def _event_id(self, t: Transition) -> str:
        """The API's own events get the account in their id (job and KB ids are unique)."""
        if t.event_id.startswith("api/"):
            return f"api/{self.account}/{t.event_id.removeprefix('api/')}"
        return t.event_id

    async def get_meta(self, key: str) -> str | None:
        value: str | None = await self._inner.get_meta(self._key(key))
        return value

    async def set_meta(self, key: str, value: str) -> None:
        await self._inner.set_meta(self._key(key), value)

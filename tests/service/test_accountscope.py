"""One account's view of the shared store: its own KBs and meta values, its events stamped."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from watcher.core.model import EventKind
from watcher.core.state import Change, Delivery, KbState, Transition, WatchState
from watcher.service.accountscope import AccountScope

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KB_A, KB_B = "a" * 8 + "-0000-0000-0000-" + "0" * 12, "b" * 8 + "-0000-0000-0000-" + "0" * 12


class FakeStore:
    """The shared store: every KB recorded, the meta values, the changes written."""

    def __init__(self) -> None:
        self.kbs: dict[str, KbState] = {}
        self.meta: dict[str, str] = {}
        self.changes: list[Change] = []

    async def load(self, job_uuids: Collection[str]) -> WatchState:
        return WatchState(kbs=dict(self.kbs))

    async def record(self, change: Change, *, meta: Mapping[str, str | None] | None = None) -> None:
        self.changes.append(change)
        self.kbs.update({kb.uuid: kb for kb in change.kbs})
        for key, value in (meta or {}).items():
            if value is not None:
                self.meta[key] = value

    async def get_meta(self, key: str) -> str | None:
        return self.meta.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.meta[key] = value


async def test_each_account_loads_only_the_kbs_it_recorded() -> None:
    shared = FakeStore()
    alpha, beta = AccountScope(shared, "alpha"), AccountScope(shared, "beta")
    await alpha.record(Change("c1", NOW, kbs=(KbState(KB_A, "docs", NOW),)))
    await beta.record(Change("c2", NOW, kbs=(KbState(KB_B, "faq", NOW),)))
    assert set((await alpha.load(())).kbs) == {KB_A}
    assert set((await beta.load(())).kbs) == {KB_B}
    assert set((await shared.load(())).kbs) == {KB_A, KB_B}


async def test_whole_account_meta_values_are_the_accounts_own_and_shared_ones_are_shared() -> None:
    shared = FakeStore()
    alpha, beta = AccountScope(shared, "alpha"), AccountScope(shared, "beta")
    await alpha.set_meta("api_health", "alpha's")
    await alpha.set_meta("delivery_health", "everyone's")
    assert await beta.get_meta("api_health") is None
    assert await alpha.get_meta("api_health") == "alpha's"
    assert await beta.get_meta("delivery_health") == "everyone's"
    assert shared.meta["account/alpha/api_health"] == "alpha's"


async def test_events_are_stamped_api_ids_are_the_accounts_and_deaf_routes_are_left_out() -> None:
    shared = FakeStore()
    beta = AccountScope(shared, "beta", deaf_routes={"alpha-team"})
    down = Transition("api/api_unreachable/2026-12-01T12:00:00", EventKind.API_UNREACHABLE, NOW)
    failing = Transition("delivery/ops/delivery_failing/x", EventKind.DELIVERY_FAILING, NOW)
    deliveries = (
        Delivery(down.event_id, "ops"),
        Delivery(down.event_id, "alpha-team"),
        Delivery(failing.event_id, "alpha-team"),
    )
    await beta.record(Change("c", NOW, transitions=(down, failing), deliveries=deliveries))
    (written,) = shared.changes
    stamped, untouched = written.transitions
    assert stamped.account == "beta"
    assert stamped.event_id == "api/beta/api_unreachable/2026-12-01T12:00:00"
    assert untouched == failing  # the deployment's own event: no account
    assert written.deliveries == (
        Delivery(stamped.event_id, "ops"),
        Delivery(failing.event_id, "alpha-team"),
    )

"""The cycle checks the setup against each listing of the account (hand-written fakes).

A watched knowledge base the account does not list is alerted once (`knowledge_base_missing`,
routed like any event about that KB), logged once with its configured name, kept for
`status`, and alerted once more when it is back (`knowledge_base_found`). A route entry that
matches no knowledge base is a warning with a did-you-mean at start and at every reload (a new
`Cycle` comes with each runtime), and kept for `status`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from tests.clocks import WallClock
from tests.service.test_cycle import ALL, T0, FakeNotifier, FakeSource, FakeStore, job
from watcher.core.account import RouteRefs
from watcher.core.decide import RouteRule
from watcher.core.errors import RetryableSourceError, StoreError
from watcher.core.model import EventKind, KnowledgeBase, WatchedKb
from watcher.core.state import Change
from watcher.service.accountcheck import MISSING_KEY, UNMATCHED_KEY, decode_missing
from watcher.service.cycle import Cycle, CycleSettings

DOCS = "9f3c1b2a-4d5e-11ef-8a1b-0242ac120002"
TYPO = "9f3c1b2a-4d5e-11ef-8a1b-0242ac120003"
E = EventKind


def make_cycle(
    source: FakeSource,
    store: FakeStore,
    notifier: FakeNotifier,
    clock: WallClock,
    *,
    watched: tuple[WatchedKb, ...] = (),
    routes: tuple[RouteRefs, ...] = (),
    rules: tuple[RouteRule, ...] = (RouteRule("ops", ALL),),
) -> Cycle:
    settings = CycleSettings(watched=watched, route_refs=routes, rules=rules, storm_threshold=50)
    return Cycle(source, store, store, store, notifier, settings, clock)


async def test_a_watched_kb_missing_from_the_account_is_alerted_logged_and_kept_once() -> None:
    source, store, notifier, clock = FakeSource(), FakeStore(), FakeNotifier(), WallClock(T0)
    source.show(DOCS, job(1, kb=DOCS, state="completed", minute=-60))  # history: no alert
    watched = (WatchedKb(DOCS, "product-docs"), WatchedKb(TYPO, "legal-archive"))
    rules = (RouteRule("ops", ALL), RouteRule("legal", ALL, frozenset({"legal-archive"})))
    cycle = make_cycle(source, store, notifier, clock, watched=watched, rules=rules)

    with capture_logs() as first:
        report = await cycle.run()
    clock.now += timedelta(minutes=1)
    with capture_logs() as second:
        await cycle.run()

    assert report.ok and report.events == (E.KNOWLEDGE_BASE_MISSING,)
    title = "⚠️ legal-archive: knowledge base not found in the account"
    assert notifier.sent == [("ops", title), ("legal", title)]
    logged = [e for e in first if e["event"] == "knowledge_base_missing"]
    assert logged == [
        {
            "event": "knowledge_base_missing",
            "log_level": "warning",
            "kb": TYPO,
            "name": "legal-archive",
            "since": T0.isoformat(timespec="seconds"),
        }
    ]
    assert not [e for e in second if "knowledge_base" in e["event"]]
    (missing,) = decode_missing(store.meta[MISSING_KEY])
    assert (missing.uuid, missing.name, missing.since) == (TYPO, "legal-archive", T0)


async def test_a_missing_kb_that_comes_back_is_found_once_and_leaves_the_status() -> None:
    source, store, notifier, clock = FakeSource(), FakeStore(), FakeNotifier(), WallClock(T0)
    cycle = make_cycle(source, store, notifier, clock, watched=(WatchedKb(DOCS, "product-docs"),))
    await cycle.run()
    clock.now += timedelta(minutes=5)
    source.show(DOCS, job(1, kb=DOCS, state="completed", minute=-60))  # history: no alert

    with capture_logs() as logs:
        report = await cycle.run()
    clock.now += timedelta(minutes=1)
    again = await cycle.run()

    assert report.events == (E.KNOWLEDGE_BASE_FOUND,) and again.events == ()
    assert [title for _, title in notifier.sent] == [
        "⚠️ product-docs: knowledge base not found in the account",
        "✅ product-docs: knowledge base found again",
    ]
    assert [e["event"] for e in logs if e["event"].startswith("knowledge_base")] == [
        "knowledge_base_found"
    ]
    assert json.loads(store.meta[MISSING_KEY]) == []


async def test_after_a_restart_a_kb_still_missing_is_logged_again_but_not_alerted_again() -> None:
    source, store, notifier, clock = FakeSource(), FakeStore(), FakeNotifier(), WallClock(T0)
    watched = (WatchedKb(TYPO, "legal-archive"),)
    await make_cycle(source, store, notifier, clock, watched=watched).run()
    clock.now += timedelta(hours=1)

    with capture_logs() as logs:
        report = await make_cycle(source, store, notifier, clock, watched=watched).run()

    assert report.events == () and len(notifier.sent) == 1
    (line,) = [e for e in logs if e["event"] == "knowledge_base_missing"]
    assert line["since"] == T0.isoformat(timespec="seconds")


async def test_a_route_entry_matching_nothing_is_warned_at_start_and_at_each_reload() -> None:
    source, store, notifier, clock = FakeSource(), FakeStore(), FakeNotifier(), WallClock(T0)
    source.kbs["kb-support"] = KnowledgeBase("kb-support", name="support-articles")
    routes = (RouteRefs("ops", 0, ("suport-articles",)),)
    cycle = make_cycle(source, store, notifier, clock, routes=routes)

    with capture_logs() as start:
        await cycle.run()
    with capture_logs() as later:
        await cycle.run()
    with capture_logs() as reload:
        await make_cycle(source, store, notifier, clock, routes=routes).run()

    warned = [e for e in start if e["event"] == "route_entry_matches_nothing"]
    assert warned == [
        {
            "event": "route_entry_matches_nothing",
            "log_level": "warning",
            "route": "ops",
            "key": "routes[0].knowledge_bases[0]",
            "reason": "'suport-articles' matches no knowledge base of the account; "
            "did you mean 'support-articles'?",
            "suggestion": "support-articles",
        }
    ]
    assert not [e for e in later if e["event"] == "route_entry_matches_nothing"]
    assert [e["event"] for e in reload if e["event"] == "route_entry_matches_nothing"] == [
        "route_entry_matches_nothing"
    ]
    (kept,) = json.loads(store.meta[UNMATCHED_KEY])
    assert (kept["route"], kept["ref"], kept["suggestion"]) == (
        "ops",
        "suport-articles",
        "support-articles",
    )


class FailingSource(FakeSource):
    """An account that cannot be listed."""

    async def list_knowledge_bases(self) -> list[KnowledgeBase]:
        raise RetryableSourceError("HTTP 503", status=503)


async def test_a_listing_that_failed_judges_no_kb_missing() -> None:
    store, notifier, clock = FakeStore(), FakeNotifier(), WallClock(T0)
    watched = (WatchedKb(DOCS, "docs"),)
    report = await make_cycle(FailingSource(), store, notifier, clock, watched=watched).run()
    assert not report.ok and MISSING_KEY not in store.meta and notifier.sent == []


class FlakyStore(FakeStore):
    """A store whose first write fails (disk full, say)."""

    failures: int = 1

    async def record(self, change: Change, *, meta: Mapping[str, str | None] | None = None) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("disk full")
        await super().record(change, meta=meta)


async def test_what_a_failed_write_lost_is_written_by_the_next_cycle() -> None:
    source, store, notifier, clock = FakeSource(), FlakyStore(), FakeNotifier(), WallClock(T0)
    source.kbs["kb-support"] = KnowledgeBase("kb-support", name="support-articles")
    routes = (RouteRefs("ops", 0, ("suport-articles",)),)
    watched = (WatchedKb("kb-support"), WatchedKb(DOCS, "docs"))
    cycle = make_cycle(source, store, notifier, clock, routes=routes, watched=watched)
    with pytest.raises(StoreError):
        await cycle.run()
    assert store.meta == {}

    report = await cycle.run()

    assert report.events == (E.KNOWLEDGE_BASE_MISSING,)
    assert json.loads(store.meta[UNMATCHED_KEY])[0]["ref"] == "suport-articles"
    assert decode_missing(store.meta[MISSING_KEY])[0].uuid == DOCS

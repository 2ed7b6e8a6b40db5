"""The setup against the account, table-driven: route entries that match nothing, and watched
knowledge bases missing from the account (`knowledge_base_missing` / `knowledge_base_found`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.account import MissingKb, RouteRefs, presence, unmatched_refs
from watcher.core.model import EventKind, KnowledgeBase, WatchedKb

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(hours=3)
SUPPORT = "0b5b8a6e-1d2f-4c3b-9a8e-7f6d5c4b3a21"
DOCS = "9f3c1b2a-4d5e-11ef-8a1b-0242ac120002"
GONE = "11111111-2222-3333-4444-555555555555"
ACCOUNT = (
    KnowledgeBase(SUPPORT, name="support-articles"),
    KnowledgeBase(DOCS, name="product-docs"),
)
E = EventKind


def refs(*entries: str) -> tuple[RouteRefs, ...]:
    return (RouteRefs("ops", 0, entries),)


@pytest.mark.parametrize(
    ("entries", "watched", "expected"),
    [
        # "*", an exact API name, a uuid in any case: all match
        (("*", "support-articles", DOCS.upper()), (), []),
        # the case: a typo in a name, watching the whole account
        (("suport-articles",), (), [(0, "support-articles")]),
        # a name that differs only in case never matches (routing is exact): suggest the name
        (("Product-Docs",), (), [(0, "product-docs")]),
        # a uuid with one wrong character: the close uuid is suggested
        ((DOCS[:-1] + "3",), (), [(0, DOCS)]),
        # nothing close: no suggestion, the position is still named
        (("*", "billing"), (), [(1, None)]),
        # a configured name or uuid matches even when the KB is missing (reported elsewhere)
        (("docs", GONE), (WatchedKb(DOCS, "docs"), WatchedKb(GONE)), []),
        # with a watch list, the name of a KB outside it can never match an event
        (("support-articles",), (WatchedKb(DOCS, "docs"),), [(0, None)]),
    ],
)
def test_route_entries_that_match_no_knowledge_base_are_found_with_a_suggestion(
    entries: tuple[str, ...],
    watched: tuple[WatchedKb, ...],
    expected: list[tuple[int, str | None]],
) -> None:
    found = unmatched_refs(refs(*entries), watched, ACCOUNT)
    assert [(ref.position, ref.suggestion) for ref in found] == expected
    for ref in found:
        assert ref.key == f"routes[0].knowledge_bases[{ref.position}]"
        assert ref.route == "ops"


def test_an_unmatched_entry_names_itself_and_the_suggestion() -> None:
    (ref,) = unmatched_refs(refs("suport-articles"), (), ACCOUNT)
    assert ref.reason == (
        "'suport-articles' matches no knowledge base of the account; "
        "did you mean 'support-articles'?"
    )


def test_an_entry_that_looks_like_a_secret_is_never_repeated() -> None:
    (ref,) = unmatched_refs(refs("mailto://user:hunter2@example.com"), (), ACCOUNT)
    assert "hunter2" not in ref.reason and ref.reason.startswith("this entry matches no")


def test_each_route_is_checked_with_its_own_index() -> None:
    routes = (RouteRefs("ops", 0, ("*",)), RouteRefs("docs-team", 1, ("*", "prodcut-docs")))
    (ref,) = unmatched_refs(routes, (), ACCOUNT)
    assert (ref.route, ref.key, ref.suggestion) == (
        "docs-team",
        "routes[1].knowledge_bases[1]",
        "product-docs",
    )


W_DOCS = WatchedKb(DOCS, "product-docs")
W_GONE = WatchedKb(GONE, "legal-archive")


@pytest.mark.parametrize(
    ("missing", "watched", "listed", "expected_missing", "expected_events"),
    [
        # every watched KB listed: nothing to say
        ({}, (W_DOCS,), {DOCS}, {}, []),
        # a watched KB not listed: missing since now, alerted once
        ({}, (W_DOCS, W_GONE), {DOCS}, {GONE: NOW}, [(E.KNOWLEDGE_BASE_MISSING, GONE)]),
        # still missing: the first moment is kept, nothing new is alerted
        ({GONE: EARLIER}, (W_GONE,), {DOCS}, {GONE: EARLIER}, []),
        # listed again: found, once, and no longer missing
        ({GONE: EARLIER}, (W_GONE,), {GONE}, {}, [(E.KNOWLEDGE_BASE_FOUND, GONE)]),
        # no longer configured: forgotten silently (no `found` for a KB nobody watches)
        ({GONE: EARLIER}, (W_DOCS,), {DOCS}, {}, []),
        # first cycle ever on an account that lacks both: two alerts
        (
            {},
            (W_DOCS, W_GONE),
            set(),
            {DOCS: NOW, GONE: NOW},
            [(E.KNOWLEDGE_BASE_MISSING, DOCS), (E.KNOWLEDGE_BASE_MISSING, GONE)],
        ),
    ],
)
def test_watched_knowledge_bases_missing_from_the_account_are_alerted_once_each_way(
    missing: dict[str, datetime],
    watched: tuple[WatchedKb, ...],
    listed: set[str],
    expected_missing: dict[str, datetime],
    expected_events: list[tuple[EventKind, str]],
) -> None:
    before = {uuid: MissingKb(uuid, None, since) for uuid, since in missing.items()}
    after, transitions = presence(before, watched, listed, NOW)
    assert {uuid: kb.since for uuid, kb in after.items()} == expected_missing
    assert [(t.kind, t.kb_uuid) for t in transitions] == expected_events


def test_missing_and_found_carry_the_configured_name_and_since_and_distinct_ids() -> None:
    after, (missing,) = presence({}, (W_GONE,), set(), EARLIER)
    assert after[GONE] == MissingKb(GONE, "legal-archive", EARLIER)
    assert (missing.kb_name, missing.at) == ("legal-archive", EARLIER)
    assert missing.detail is not None and EARLIER.isoformat(timespec="seconds") in missing.detail
    _, (found,) = presence(after, (W_GONE,), {GONE}, NOW)
    assert (found.kind, found.kb_name, found.at) == (E.KNOWLEDGE_BASE_FOUND, "legal-archive", NOW)
    assert found.detail is not None and "again" in found.detail
    # A second disappearance later is a new event (its own id), not a replay of the first.
    _, (again,) = presence({}, (W_GONE,), set(), NOW)
    assert len({missing.event_id, found.event_id, again.event_id}) == 3


def test_a_name_learned_from_the_api_replaces_none_while_missing() -> None:
    before = {GONE: MissingKb(GONE, None, EARLIER)}
    after, _ = presence(before, (WatchedKb(GONE, "legal-archive"),), set(), NOW)
    assert after[GONE].label == "legal-archive"

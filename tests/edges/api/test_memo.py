"""`ParseMemo`: a list read every cycle parses only the items that changed since the last
complete read, keeps no more than one read's worth, and never serves a stale value."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from watcher.edges.api.memo import ParseMemo


class CountingParser:
    """Parses an item into (uuid, name) and counts the calls; refuses an item without a name."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def __call__(self, raw: object) -> tuple[str, str]:
        self.calls.append(raw)
        if not isinstance(raw, dict) or "name" not in raw:
            raise ValueError("no name")
        return (str(raw.get("uuid")), str(raw["name"]))


def read(memo: ParseMemo[tuple[str, str]], items: Sequence[object]) -> list[tuple[str, str]]:
    """One complete read of a list, as the API client does it."""
    values = [memo(item) for item in items]
    memo.complete()
    return values


def test_an_item_equal_to_the_last_read_is_not_parsed_again() -> None:
    parse = CountingParser()
    memo = ParseMemo(parse)
    first = read(memo, [{"uuid": "a", "name": "docs"}, {"uuid": "b", "name": "wiki"}])
    again = read(memo, [{"uuid": "a", "name": "docs"}, {"uuid": "b", "name": "wiki"}])
    assert again == first and again[0] is first[0]  # the very value of the last read
    assert len(parse.calls) == 2 and memo.hits == 2


def test_a_changed_item_is_parsed_again_and_its_new_value_returned() -> None:
    parse = CountingParser()
    memo = ParseMemo(parse)
    read(memo, [{"uuid": "a", "name": "docs"}])
    assert read(memo, [{"uuid": "a", "name": "docs v2"}]) == [("a", "docs v2")]
    assert read(memo, [{"uuid": "a", "name": "docs v2"}]) == [("a", "docs v2")]
    assert len(parse.calls) == 2 and memo.hits == 1


@pytest.mark.parametrize(
    "item",
    [
        {"name": "no uuid"},  # nothing to key it by
        {"uuid": None, "name": "a null uuid"},
        {"uuid": 7, "name": "a number for a uuid"},
    ],
)
def test_an_item_without_a_text_uuid_is_always_parsed(item: dict[str, object]) -> None:
    parse = CountingParser()
    memo = ParseMemo(parse)
    read(memo, [item])
    read(memo, [item])
    assert len(parse.calls) == 2 and memo.hits == 0


def test_an_item_the_parser_refuses_is_refused_every_time_never_remembered() -> None:
    parse = CountingParser()
    memo = ParseMemo(parse)
    for _ in range(2):
        with pytest.raises(ValueError, match="no name"):
            memo({"uuid": "a"})
        memo.abandon()
    assert len(parse.calls) == 2


def test_a_failed_read_forgets_its_partial_results_and_keeps_the_last_complete_one() -> None:
    parse = CountingParser()
    memo = ParseMemo(parse)
    docs, wiki = {"uuid": "a", "name": "docs"}, {"uuid": "b", "name": "wiki"}
    read(memo, [docs])
    memo(wiki)  # a page of a read that then fails
    memo.abandon()
    assert read(memo, [docs]) == [("a", "docs")]  # the last complete read still serves
    read(memo, [docs, wiki])  # the failed read's item was not kept
    assert parse.calls == [docs, wiki, wiki] and memo.hits == 2


def test_only_the_last_complete_read_is_kept() -> None:
    """An item the last read did not see is forgotten: memory stays one list's worth."""
    parse = CountingParser()
    memo = ParseMemo(parse)
    read(memo, [{"uuid": "a", "name": "docs"}, {"uuid": "b", "name": "wiki"}])
    read(memo, [{"uuid": "a", "name": "docs"}])  # b deleted
    read(memo, [{"uuid": "a", "name": "docs"}, {"uuid": "b", "name": "wiki"}])  # b back
    assert [call for call in parse.calls if call == {"uuid": "b", "name": "wiki"}] == [
        {"uuid": "b", "name": "wiki"},
        {"uuid": "b", "name": "wiki"},
    ]

"""One pass over a paged list (`watcher.edges.api.paging`): every uuid once, in the order first
seen with the last value read, each uuid seen again counted as a duplicate (the list moved),
and the passes merged newest first."""

from __future__ import annotations

import pytest

from watcher.edges.api.paging import Sweep, merge
from watcher.edges.api.wire import Page


def page(*items: tuple[str, int]) -> Page[tuple[str, int]]:
    """A page that does not say its number (the pass takes it for the one it asked)."""
    return Page(tuple(items), (), len(items), has_next=False)


def sweep(*pages: Page[tuple[str, int]]) -> Sweep[tuple[str, int]]:
    s: Sweep[tuple[str, int]] = Sweep(lambda item: item[0], per_page=3)
    for number, p in enumerate(pages, start=1):
        s.add(number, p)
    return s


@pytest.mark.parametrize(
    ("pages", "items", "duplicates"),
    [
        # a list that held still: each uuid once, no duplicate
        ([page(("a", 1), ("b", 1)), page(("c", 1))], [("a", 1), ("b", 1), ("c", 1)], 0),
        # a job created while paging pushed "b" onto the next page: the later value, first place
        ([page(("a", 1), ("b", 1)), page(("b", 2), ("c", 1))], [("a", 1), ("b", 2), ("c", 1)], 1),
        # the same uuid twice on one page counts too
        ([page(("a", 1), ("a", 2), ("b", 1))], [("a", 2), ("b", 1)], 1),
        # three copies of one uuid over two pages: two duplicates
        ([page(("a", 1), ("a", 2)), page(("a", 3))], [("a", 3)], 2),
        # an empty page changes nothing
        ([page(("a", 1)), page()], [("a", 1)], 0),
    ],
)
def test_a_pass_keeps_each_uuid_once_and_counts_each_one_seen_again(
    pages: list[Page[tuple[str, int]]], items: list[tuple[str, int]], duplicates: int
) -> None:
    s = sweep(*pages)
    assert list(s.items.values()) == items
    assert s.duplicates == duplicates
    assert (s.shift is None) == (duplicates == 0)
    assert s.raw_items == sum(p.raw_count for p in pages)


def test_one_pass_is_taken_as_it_is_and_several_are_merged_newest_first() -> None:
    older = sweep(page(("a", 1), ("b", 1), ("gone", 1)))
    newer = sweep(page(("b", 2), ("c", 1)))
    assert merge([newer]) == [("b", 2), ("c", 1)]
    # the newest pass's order and values, then what only the older one saw
    assert merge([older, newer]) == [("b", 2), ("c", 1), ("a", 1), ("gone", 1)]

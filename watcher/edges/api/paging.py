"""Reading a paged list that may shift while it is read, within bounds the answers set.

Pure: the client feeds pages in, this decides whether the pass saw a stable list, whether
another page may be asked for, and when the answers cannot be a finite list.

Why a second sweep and not a re-read of one page: a job created while we page pushes items
down (harmless: the last item of a page shows up again on the next one, and is de-duplicated),
but a job pruned (DigitalOcean keeps 15 per knowledge base) or deleted on a page already read
pulls items up, and the first item of the next page slides onto the page we already left. We
cannot tell from one answer which page lost an item, so a pass that saw the list change
(`meta.total` moved between pages, or a uuid came back twice) is followed by a whole new pass,
and the passes are merged: the newest pass wins for a uuid seen in both, and items only the
older pass saw are kept (absent from a pass never means deleted). A pass that saw no change
is taken as is. The client bounds the number of passes, so a list that never settles costs a
few sweeps, never a loop.

Bounds (each broken one is a failed read, `MalformedResponse`, never a partial list: a list
cut short would make present knowledge bases look missing):
- a pass asks for pages 1, 2, 3... and never for one twice; an answer for another page than
  the one asked (`meta.page`), or a `next` link back to a page already read, is a loop;
- it asks for at most `ceil(meta.total / per_page) + PAGE_SLACK` pages (the largest total
  seen; without one, as many as `max_items` allow): a list that says "next" past that never
  ends (`meta.pages` of 10⁹, a `next` link forever);
- it accepts at most `max_items` items, and a `meta.total` above that is refused at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from watcher.core.errors import MalformedResponse
from watcher.edges.api.wire import Page

T = TypeVar("T")

PAGE_SLACK = 1
"""Pages asked beyond what `meta.total` and `per_page` allow: the list may grow by a page's
worth between the answer that told the total and the last page."""


@dataclass(slots=True)
class Sweep(Generic[T]):
    """One pass over every page of a list, keyed by uuid, noting any sign that the list moved.

    `per_page` is the page size asked for; `max_items` the most items the pass accepts.
    """

    identity: Callable[[T], str]
    per_page: int = 200
    max_items: int = 20_000
    items: dict[str, T] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    duplicates: int = 0
    pages_read: int = 0
    raw_items: int = 0

    def add(self, number: int, page: Page[T]) -> None:
        """Take page `number` in; a uuid already seen in this pass counts as a duplicate.

        Raises `MalformedResponse` when the answer shows a loop or more than `max_items`.
        """
        if page.page is not None and page.page != number:
            raise MalformedResponse(f"asked for page {number}, the API answered page {page.page}")
        if page.next_page is not None and page.next_page <= number:
            raise MalformedResponse(
                f"page {number}'s next link points back to page {page.next_page}: a loop"
            )
        if page.total is not None and page.total > self.max_items:
            raise MalformedResponse(
                f"meta.total says {page.total:,} items, more than the {self.max_items:,} a "
                "list may hold (api.max_list_items)"
            )
        self.raw_items += page.raw_count
        if self.raw_items > self.max_items:
            raise MalformedResponse(
                f"more than {self.max_items:,} items by page {number} "
                "(api.max_list_items): not a list the watcher takes"
            )
        self.pages_read += 1
        self.skipped.extend(page.skipped)
        if page.total is not None:
            self.totals.append(page.total)
        items, identity = self.items, self.identity
        before = len(items) + len(page.items)
        items.update({identity(item): item for item in page.items})
        # a uuid twice on the page or again from an earlier one: `before` counted it twice
        self.duplicates += before - len(items)

    def more(self, number: int, page: Page[T]) -> bool:
        """Whether to ask for page `number + 1` after `page`; `MalformedResponse` when the
        API still says there is more past every page its own figures allow."""
        if not page.has_next:
            return False
        if number >= self.page_limit:
            raise MalformedResponse(
                f"page {number} still says there is a next page, past the {self.page_limit} "
                f"pages that {self._limit_reason} allow: a list without end"
            )
        return True

    @property
    def items_left(self) -> int:
        """How many more items this pass accepts."""
        return max(0, self.max_items - self.raw_items)

    @property
    def page_limit(self) -> int:
        """The most pages this pass may ask for."""
        return math.ceil(self._limit_items / self.per_page) + PAGE_SLACK

    @property
    def _limit_items(self) -> int:
        return max(self.totals) if self.totals else self.max_items

    @property
    def _limit_reason(self) -> str:
        if self.totals:
            return f"meta.total ({max(self.totals):,}) at {self.per_page} per page"
        return f"api.max_list_items ({self.max_items:,}) at {self.per_page} per page"

    @property
    def shift(self) -> str | None:
        """Why this pass cannot be trusted to be complete, or None when the list held still."""
        if self.duplicates:
            return f"{self.duplicates} item(s) came back on a later page"
        if len(set(self.totals)) > 1:
            return f"meta.total moved from {self.totals[0]} to {self.totals[-1]} while paging"
        return None


def merge(sweeps: Sequence[Sweep[T]]) -> list[T]:
    """Every item of every pass, once: the newest pass's order and values, then older extras."""
    if len(sweeps) == 1:  # a list that held still: the usual case, read every cycle
        return list(sweeps[0].items.values())
    merged: dict[str, T] = {}
    for sweep in reversed(sweeps):
        for key, item in sweep.items.items():
            merged.setdefault(key, item)
    return list(merged.values())

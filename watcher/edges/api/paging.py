"""Reading a paged list that may shift while it is read: de-duplication and shift detection.

Pure: the client feeds pages in, this decides whether the pass saw a stable list.

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from watcher.edges.api.wire import Page

T = TypeVar("T")


@dataclass(slots=True)
class Sweep(Generic[T]):
    """One pass over every page of a list, keyed by uuid, noting any sign that the list moved."""

    identity: Callable[[T], str]
    items: dict[str, T] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    duplicates: int = 0
    pages_read: int = 0
    capped: bool = False

    def add(self, page: Page[T]) -> None:
        """Take one page in; a uuid already seen in this pass counts as a duplicate."""
        self.pages_read += 1
        self.skipped.extend(page.skipped)
        if page.total is not None:
            self.totals.append(page.total)
        for item in page.items:
            key = self.identity(item)
            if key in self.items:
                self.duplicates += 1
            self.items[key] = item

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
    merged: dict[str, T] = {}
    for sweep in reversed(sweeps):
        for key, item in sweep.items.items():
            merged.setdefault(key, item)
    return list(merged.values())

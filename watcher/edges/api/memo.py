"""Parsing a list that is read again and again: reuse what did not change since the last read.

Every cycle reads the whole knowledge-base list, and on an idle account nearly every item is
exactly what it was a minute ago. Parsing an item again (datetimes, enums, data sources) costs
about three times as much as fingerprinting it: a 128-bit digest (`watcher.core.fingerprint`)
of the `repr` of its decoded JSON, which is exact for JSON values (a different value has a
different `repr`). `ParseMemo` keeps, per uuid, the digest and the parsed value for one read
(not the raw item, which weighs three times the parsed value), and drops what the next
complete read did not see: at most one list's worth.

`PageMemo` goes one step before: a page whose body bytes equal those of the same page at the
last complete read is neither decoded nor parsed again, nor settled (`copies`) again (decoding
a 338 KB page of 200 KBs takes about 10 ms; its XXH3 digest 6 µs, where BLAKE2b took 365 µs,
SHA-1 180 µs and CRC-32 65 µs, and comparing the bytes themselves would keep every page in
memory between reads); its parsed page is returned as it was, and the items on it stay
remembered by the item memo (`ParseMemo.keep`). Any byte that differs (one job's status, a new
`updated_at`, the order of the items) parses the whole page again, item by item.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from watcher.core.fingerprint import fingerprint

T = TypeVar("T")
P = TypeVar("P")


class ParseMemo(Generic[T]):
    """A parse function that returns the previous value for an item equal to the last one seen."""

    def __init__(self, parse: Callable[[object], T]) -> None:
        self._parse = parse
        self._last: dict[str, tuple[bytes, T]] = {}
        self._seen: dict[str, tuple[bytes, T]] = {}
        self.hits = 0

    def __call__(self, raw: object) -> T:
        """Parse `raw` (raising what the parser raises), or reuse the value for an equal item."""
        key = raw.get("uuid") if isinstance(raw, Mapping) else None
        if not isinstance(key, str):
            return self._parse(raw)
        digest = fingerprint(repr(raw).encode())
        kept = self._last.get(key)
        if kept is not None and kept[0] == digest:
            self.hits += 1
            value = kept[1]
        else:
            value = self._parse(raw)
        self._seen[key] = (digest, value)
        return value

    def keep(self, keys: Iterable[str]) -> None:
        """The items of these uuids were seen again unchanged (on a page `PageMemo` reused)."""
        last = self._last
        self._seen.update({key: last[key] for key in keys if key in last})

    def complete(self) -> None:
        """The read finished: keep only what it saw for the next one."""
        self._last, self._seen = self._seen, {}

    def abandon(self) -> None:
        """The read failed: forget its partial results, keep the last complete read."""
        self._seen = {}


class PageMemo(Generic[P]):
    """Pages of a list read every cycle: the parsed page again for the same bytes at the same
    place (`key`: the page number and whatever else shapes the parse), else a fresh parse."""

    def __init__(self, on_reuse: Callable[[P], None] | None = None) -> None:
        self._on_reuse = on_reuse
        self._last: dict[Hashable, tuple[bytes, P]] = {}
        self._seen: dict[Hashable, tuple[bytes, P]] = {}
        self.hits = 0

    def reuse(self, key: Hashable) -> Callable[[bytes, Callable[[], P]], P]:
        """For the answer at `key`: given its body and how to parse it, the page."""

        def page(body: bytes, parse: Callable[[], P]) -> P:
            digest = fingerprint(body)
            kept = self._last.get(key)
            if kept is not None and kept[0] == digest:
                self.hits += 1
                value = kept[1]
                if self._on_reuse is not None:
                    self._on_reuse(value)
            else:
                value = parse()  # raises what the parse raises: nothing is remembered then
            self._seen[key] = (digest, value)
            return value

        return page

    def complete(self) -> None:
        """The read finished: keep only its pages for the next one."""
        self._last, self._seen = self._seen, {}

    def abandon(self) -> None:
        """The read failed: forget its pages, keep the last complete read."""
        self._seen = {}

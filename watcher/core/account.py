"""How the configuration meets the account: route entries that match no knowledge base, and
watched knowledge bases the account does not list. Pure: the time is a parameter.

- A route's `knowledge_bases` entry matches when it is "*", a `[[knowledge_bases]]` uuid or
  name (whether that KB exists is the next rule's business), or the uuid (any case) or the
  exact name the API reports for a knowledge base of the account: exactly what routing
  matches on. Anything else never matches an event; it is reported with the closest name or
  uuid of the account as a suggestion.
- A watched knowledge base that a complete listing of the account lacks is missing since
  that moment: `knowledge_base_missing`, once. When a listing shows it again:
  `knowledge_base_found`, once. One that leaves the configuration is forgotten silently.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from watcher.core.model import EventKind, KnowledgeBase, WatchedKb
from watcher.core.state import Transition

ALL = "*"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A reference shown in a message is a plain word; anything else may be a secret pasted into
# the wrong key (an apprise URL), and is never repeated.
_PLAIN = re.compile(r"[\w .*-]{1,64}")


@dataclass(frozen=True, slots=True)
class RouteRefs:
    """A route's `knowledge_bases` entries, in order; `index` is its place in `[[routes]]`."""

    route: str
    index: int
    refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnmatchedRef:
    """A route entry that matches no knowledge base, and the closest one if any."""

    route: str
    index: int
    position: int
    ref: str
    suggestion: str | None = None

    @property
    def key(self) -> str:
        """The config key of the entry, e.g. `routes[0].knowledge_bases[1]`."""
        return f"routes[{self.index}].knowledge_bases[{self.position}]"

    @property
    def shown(self) -> str:
        """The entry for a message: quoted when it is a plain word, else a placeholder."""
        return repr(self.ref) if _PLAIN.fullmatch(self.ref) else "this entry"

    @property
    def reason(self) -> str:
        """One sentence: what is wrong and what was probably meant."""
        hint = f"; did you mean {self.suggestion!r}?" if self.suggestion else ""
        return f"{self.shown} matches no knowledge base of the account{hint}"


def unmatched_refs(
    routes: Sequence[RouteRefs],
    watched: Sequence[WatchedKb],
    account: Sequence[KnowledgeBase],
) -> tuple[UnmatchedRef, ...]:
    """Every route entry that can never match an event, with a did-you-mean."""
    configured = {kb.uuid for kb in watched} | {kb.name for kb in watched if kb.name}
    open_refs = [
        (route, position, ref)
        for route in routes
        for position, ref in enumerate(route.refs)
        if ref != ALL and ref not in configured and ref.lower() not in configured
    ]
    if not open_refs:
        return ()  # the usual case, every cycle: nothing to look up in the account
    watched_uuids = {kb.uuid for kb in watched}
    kbs = [kb for kb in account if not watched or kb.uuid in watched_uuids]
    uuids = {kb.uuid.lower() for kb in kbs}
    names = {kb.name for kb in kbs if kb.name}
    found = []
    for route, position, ref in open_refs:
        if ref in names or ref.lower() in uuids:
            continue
        suggestion = _closest(ref, sorted(names), sorted(uuids))
        found.append(UnmatchedRef(route.route, route.index, position, ref, suggestion))
    return tuple(found)


def _closest(ref: str, names: Sequence[str], uuids: Sequence[str]) -> str | None:
    """The name that differs only in case, else a close name, else a close uuid."""
    same = [name for name in names if name.lower() == ref.lower()]
    if same:
        return same[0]
    if _UUID.fullmatch(ref.lower()):
        close = difflib.get_close_matches(ref.lower(), uuids, n=1, cutoff=0.8)
    else:
        close = difflib.get_close_matches(ref, names, n=1, cutoff=0.6)
    return close[0] if close else None


@dataclass(frozen=True, slots=True)
class MissingKb:
    """A watched knowledge base the account did not list, since `since` (a listing's time)."""

    uuid: str
    name: str | None
    since: datetime

    @property
    def label(self) -> str:
        return self.name or self.uuid


def presence(
    missing: Mapping[str, MissingKb],
    watched: Sequence[WatchedKb],
    listed: Collection[str],
    now: datetime,
) -> tuple[dict[str, MissingKb], tuple[Transition, ...]]:
    """Fold one complete listing (`listed` uuids, read at `now`) into the missing set.

    Returns the new missing set and its transitions: `knowledge_base_missing` for a watched
    KB newly absent, `knowledge_base_found` for one listed again. `watched` names carry the
    configured name, else the name the API last reported, for people.
    """
    after: dict[str, MissingKb] = {}
    transitions: list[Transition] = []
    for kb in watched:
        before = missing.get(kb.uuid)
        if kb.uuid in listed:
            if before is not None:
                transitions.append(_event(EventKind.KNOWLEDGE_BASE_FOUND, before, kb, now))
            continue
        if before is None:
            before = MissingKb(kb.uuid, kb.name, now)
            transitions.append(_event(EventKind.KNOWLEDGE_BASE_MISSING, before, kb, now))
        after[kb.uuid] = MissingKb(kb.uuid, kb.name or before.name, before.since)
    return after, tuple(transitions)


def _event(kind: EventKind, gone: MissingKb, kb: WatchedKb, now: datetime) -> Transition:
    since = gone.since.isoformat(timespec="seconds")
    if kind is EventKind.KNOWLEDGE_BASE_MISSING:
        detail = (
            f"Not found in the account since {since}: the uuid in [[knowledge_bases]] has a "
            "typo, the token sees another account or project, or the knowledge base was "
            "deleted. Its jobs are not watched until it is listed again."
        )
    else:
        detail = f"Listed in the account again (missing since {since}); its jobs are watched."
    return Transition(
        event_id=f"kb/{kb.uuid}/{kind.value}/{gone.since.isoformat()}",
        kind=kind,
        at=now,
        kb_uuid=kb.uuid,
        kb_name=kb.name or gone.name,
        detail=detail,
    )

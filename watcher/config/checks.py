"""Rules that span fields or sections, run on the parts that validated on their own.

Each check returns `Issue`s (a location and a reason) rather than raising, so that one load
reports every problem at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watcher.config.intervals import TimeIntervalsConfig
from watcher.config.routes import ALL_KBS, RouteConfig
from watcher.config.sections import DeliveryConfig, KnowledgeBaseConfig, PollConfig
from watcher.config.urls import quoted
from watcher.core.durations import format_setting

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem before it is tied to a source: where in the tree, and why."""

    loc: Loc
    message: str


def poll_issues(poll: PollConfig) -> list[Issue]:
    """The active interval may not exceed the interval, and jitter must stay below it."""
    issues = []
    if poll.active_interval > poll.interval:
        issues.append(
            Issue(
                ("poll", "active_interval"),
                f"must not be longer than poll.interval ({format_setting(poll.interval)})",
            )
        )
    if poll.jitter >= poll.active_interval:
        issues.append(
            Issue(
                ("poll", "jitter"),
                "must be shorter than poll.active_interval "
                f"({format_setting(poll.active_interval)})",
            )
        )
    return issues


def delivery_issues(delivery: DeliveryConfig) -> list[Issue]:
    """The backoff ceiling may not be below its base."""
    if delivery.retry_max < delivery.retry_base:
        return [
            Issue(
                ("delivery", "retry_max"),
                "must not be shorter than delivery.retry_base "
                f"({format_setting(delivery.retry_base)})",
            )
        ]
    return []


def kb_issues(kbs: Sequence[tuple[int, KnowledgeBaseConfig]]) -> list[Issue]:
    """Each watched knowledge base appears once, and names are unambiguous."""
    issues: list[Issue] = []
    uuids: dict[str, int] = {}
    names: dict[str, int] = {}
    for index, kb in kbs:
        if kb.uuid in uuids:
            where = f"knowledge_bases[{uuids[kb.uuid]}]"
            issues.append(Issue(("knowledge_bases", index, "uuid"), f"repeats {where}"))
        uuids.setdefault(kb.uuid, index)
        if kb.name is not None and kb.name in names:
            where = f"knowledge_bases[{names[kb.name]}]"
            issues.append(Issue(("knowledge_bases", index, "name"), f"repeats {where}"))
        if kb.name is not None:
            names.setdefault(kb.name, index)
    return issues


def route_issues(
    routes: Sequence[tuple[int, RouteConfig]],
    kbs: Sequence[KnowledgeBaseConfig] | None,
    *,
    complete: bool = True,
) -> list[Issue]:
    """Route names are unique, each names only watched KBs (`kbs` None: cannot tell), and
    escalations name routes (`complete` False: some routes did not validate, cannot tell)."""
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for index, route in routes:
        if route.name in seen:
            where = f"routes[{seen[route.name]}]"
            issues.append(Issue(("routes", index, "name"), f"duplicate route name; see {where}"))
        seen.setdefault(route.name, index)
        if kbs:
            issues.extend(_unwatched(index, route, kbs))
    return issues + escalation_issues(routes, complete=complete)


def route_account_issues(
    routes: Sequence[tuple[int, RouteConfig]], accounts: Sequence[str]
) -> list[Issue]:
    """Each name in a route's `accounts` is an account's (`default` without [[accounts]])."""
    issues = []
    for index, route in routes:
        for position, name in enumerate(route.accounts):
            if name not in accounts:
                known = ", ".join(quoted(a) for a in accounts)
                issues.append(
                    Issue(
                        ("routes", index, "accounts", position),
                        f"{quoted(name)} is not an account (accounts: {known})",
                    )
                )
    return issues


def escalation_issues(
    routes: Sequence[tuple[int, RouteConfig]], *, complete: bool = True
) -> list[Issue]:
    """Each `escalate_to` names another route (checked when the routes are `complete`), and
    no chain of them comes back round."""
    targets = {route.name: route.escalate_to for _, route in routes}
    issues = []
    for index, route in routes:
        target = route.escalate_to
        if target is None:
            continue
        loc: Loc = ("routes", index, "escalate_to")
        if target not in targets and not complete:
            continue
        if target not in targets:
            known = ", ".join(quoted(name) for name in targets) or "none"
            issues.append(Issue(loc, f"{quoted(target)} is not a route (routes: {known})"))
            continue
        chain = [route.name]
        while target is not None and target not in chain:
            chain.append(target)
            target = targets.get(target)
        if target == route.name:
            loop = " -> ".join(quoted(name) for name in [*chain, route.name])
            issues.append(Issue(loc, f"escalation goes round in a cycle: {loop}"))
    return issues


def _unwatched(index: int, route: RouteConfig, kbs: Sequence[KnowledgeBaseConfig]) -> list[Issue]:
    known = {kb.uuid for kb in kbs} | {kb.name for kb in kbs if kb.name}
    unnamed = any(kb.name is None for kb in kbs)
    issues = []
    for position, ref in enumerate(route.knowledge_bases):
        if ref == ALL_KBS or ref in known or ref.lower() in known:
            continue
        hint = "; give that [[knowledge_bases]] entry a name, or use its uuid" if unnamed else ""
        issues.append(
            Issue(
                ("routes", index, "knowledge_bases", position),
                f"{quoted(ref)} is not a watched knowledge base (not a uuid or name listed in "
                f"[[knowledge_bases]]){hint}",
            )
        )
    return issues


def window_issues(
    windows: Sequence[tuple[int, TimeIntervalsConfig]], routes: Sequence[tuple[int, RouteConfig]]
) -> list[Issue]:
    """Window names are unique; every name in a route's `mute_during` is a window's."""
    issues: list[Issue] = []
    names: set[str] = set()
    for index, window in windows:
        if window.name in names:
            issues.append(Issue(("time_intervals", index, "name"), f"{window.name!r} is taken"))
        names.add(window.name)
    for index, route in routes:
        for position, name in enumerate(route.mute_during):
            if name not in names:
                known = ", ".join(sorted(names)) or "none defined"
                issues.append(
                    Issue(
                        ("routes", index, "mute_during", position),
                        f"route {route.name!r}: {name!r} names no [[time_intervals]] "
                        f"(known: {known})",
                    )
                )
    return issues

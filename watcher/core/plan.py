"""What goes out in a round, and when: messages planned from the claimed rows, paced. Pure.

- `plan` turns the claimed rows into sends at send time: a route's rows due together are
  one message each, or one grouped message when there are more than `storm_threshold`,
  whatever poll produced them. Each send carries, per URL, the alert rendered within that
  URL's `Budget` (and shorter after a size refusal, see `decide.budget_caps`).
- A service's size limit never hides an alert: a grouped message (a storm, or what quiet
  hours held) that cannot name every one of its events within each of its URLs' budgets is
  split into as many parts as it takes (`part 1 of 3`, worst events first), each naming all
  of its own. Only a single alert's details (its data sources, its error texts) are cut to
  fit, with a count of what was left out; and a URL too short for even one event's line
  gets each part cut with its count, without splitting the message further.
- `pace_wait` spaces the messages to one URL by the route's send interval, so a backlog
  never trips a service's own rate limit (Slack and Mattermost webhooks take about one
  message a second). The round itself (`watcher.core.delivery`) leaves for a later cycle
  what would hold it longer than it may wait.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial

from watcher.core.decide import budget_caps
from watcher.core.model import EventKind
from watcher.core.outbox import Budget, Message, OutboxItem, Part, Send
from watcher.core.present import Presentation, RouteFormat, render_templated, with_event
from watcher.core.quiet import render_released, settle_held, told_together
from watcher.core.render import render, render_group, worst_first


def plan(
    items: Sequence[OutboxItem],
    storm_threshold: int,
    dashboard: str,
    budgets: Mapping[str, Sequence[Budget]] | None = None,
    presentations: Mapping[str, Presentation] | None = None,
) -> list[Send]:
    """Group claimed rows into sends per route, fitted to each URL's budget, each shown as
    its route's `Presentation` says (`watcher.core.present`).

    Only rows that reached the same URLs so far are grouped, so each send can skip exactly
    the URLs that already have all of its rows. Rows held by quiet hours go out as one message
    per route (`watcher.core.quiet.render_released`); a digest always alone. A
    route that posts events gets one send per event, never a grouped one; a route with
    templates gets them on each single alert (a grouped alert keeps the built-in text).
    """
    budgets, presentations = budgets or {}, presentations or {}
    sends, groups = _special_sends(items, dashboard, budgets, presentations)
    for (route_name, skip), group in groups.items():
        limits = tuple(budgets.get(route_name, ()))
        shown = presentations.get(route_name, _BUILT_IN)
        if shown.format is RouteFormat.EVENT:
            sends += [_event_send(route_name, item, skip, dashboard) for item in group]
            continue
        if len(group) > storm_threshold:
            storm = _drawing(render_group, dashboard)
            sends += _whole_parts(route_name, group, skip, limits, storm, _one_each)
            continue
        for item in group:
            if shown.templated:
                sends.append(_templated(route_name, item, skip, limits, shown, dashboard))
                continue
            single = partial(render, item.transition, dashboard)
            sends.append(_fitted(route_name, [item], skip, limits, single))
    return sends


_BUILT_IN = Presentation()
Groups = dict[tuple[str, frozenset[int]], list[OutboxItem]]


def _special_sends(
    items: Sequence[OutboxItem],
    dashboard: str,
    budgets: Mapping[str, Sequence[Budget]],
    presentations: Mapping[str, Presentation],
) -> tuple[list[Send], Groups]:
    """The sends of digests (each alone) and of rows released by quiet hours (one per route);
    and the other rows grouped by route and the URLs they reached, for `plan`."""
    sends: list[Send] = []
    groups: Groups = {}
    released: Groups = {}
    for item in items:
        key = (item.route, item.delivered)
        if presentations.get(item.route, _BUILT_IN).format is RouteFormat.EVENT:
            groups.setdefault(key, []).append(item)  # an event route posts each event
        elif item.transition.kind is EventKind.DIGEST:
            single = partial(render, item.transition, dashboard)
            limits = tuple(budgets.get(item.route, ()))
            sends.append(_fitted(item.route, [item], item.delivered, limits, single))
        elif item.held_by is not None:
            released.setdefault(key, []).append(item)
        else:
            groups.setdefault(key, []).append(item)
    for (route_name, skip), group in released.items():
        windows = " and ".join(dict.fromkeys(item.held_by or "" for item in group))
        limits = tuple(budgets.get(route_name, ()))
        release = _drawing(render_released, windows, dashboard)
        sends += _whole_parts(route_name, group, skip, limits, release, told_together)
    return sends, groups


def _event_send(route_name: str, item: OutboxItem, skip: frozenset[int], dashboard: str) -> Send:
    message = with_event(render(item.transition, dashboard), item.transition, route_name, dashboard)
    return Send(route_name, (item,), message, skip)


def _templated(
    route_name: str,
    item: OutboxItem,
    skip: frozenset[int],
    limits: Sequence[Budget],
    shown: Presentation,
    dashboard: str,
) -> Send:
    """A single alert drawn with the route's templates; what failed travels with the send."""
    failures: list[str] = []

    def draw(budget: Budget) -> Message:
        message, failure = render_templated(item.transition, shown, dashboard, budget)
        if failure is not None and failure not in failures:
            failures.append(failure)
        return message

    send = _fitted(route_name, [item], skip, limits, draw)
    return replace(send, template_failures=tuple(failures))


def _fitted(
    route_name: str,
    items: Sequence[OutboxItem],
    skip: frozenset[int],
    limits: Sequence[Budget],
    draw: Callable[[Budget], Message],
    caps: Mapping[int, int] | None = None,
    drawn: Mapping[Budget, Message] | None = None,
) -> Send:
    """A send whose message is drawn once per distinct budget among the URLs it goes to
    (`caps`: the most a URL takes after a size refusal, by default from `items`; `drawn`:
    what was drawn of it already)."""
    drawn = dict(drawn or {})
    if Budget() not in drawn:
        drawn[Budget()] = draw(Budget())
    fitted: list[tuple[int, Message]] = []
    for index, budget in _targets(items, skip, limits, caps):
        if budget not in drawn:
            drawn[budget] = draw(budget)
        fitted.append((index, drawn[budget]))
    return Send(route_name, tuple(items), drawn[Budget()], skip, tuple(fitted))


def _targets(
    items: Sequence[OutboxItem],
    skip: frozenset[int],
    limits: Sequence[Budget],
    caps: Mapping[int, int] | None = None,
) -> list[tuple[int, Budget]]:
    """The URLs a send of `items` goes to that have a limit, each with its `Budget` (shorter
    after a size refusal: `decide.budget_caps`)."""
    caps = budget_caps(items) if caps is None else caps
    found: list[tuple[int, Budget]] = []
    for index in sorted(set(range(len(limits))) | set(caps)):
        if index in skip:
            continue
        budget = limits[index] if index < len(limits) else Budget()
        cap = caps.get(index)
        if cap is not None and (budget.body is None or cap < budget.body):
            budget = replace(budget, body=cap)
        if budget != Budget():
            found.append((index, budget))
    return found


# Draws the message of some rows (a part of a split list when `Part` is given) in a budget.
PartDraw = Callable[[Sequence[OutboxItem], Part | None], Callable[[Budget], Message]]


def _drawing(render_list: Callable[..., Message], *args: str) -> PartDraw:
    """The `PartDraw` of a list renderer (`render_group`, `render_released`) called as
    `render_list(transitions, *args, budget, part=part)`."""

    def draw(items: Sequence[OutboxItem], part: Part | None) -> Callable[[Budget], Message]:
        transitions = [item.transition for item in items]
        return partial(render_list, transitions, *args, part=part)

    return draw


# The rows of a grouped message in the units a split keeps whole, worst first.
Units = Callable[[Sequence[OutboxItem]], list[list[OutboxItem]]]


def _one_each(items: Sequence[OutboxItem]) -> list[list[OutboxItem]]:
    """A storm's rows: each its own line, worst first."""
    return [[item] for item in sorted(items, key=lambda item: worst_first(item.transition))]


def _whole_parts(
    route_name: str,
    items: Sequence[OutboxItem],
    skip: frozenset[int],
    limits: Sequence[Budget],
    draw: PartDraw,
    units: Units,
) -> list[Send]:
    """One send of `items`, or, when some URL's budget cannot name them all, parts that name
    every one (worst first), each within every URL's budget. `units` are the rows a part
    keeps together (a held job's `started` and outcome, told as one line; a unit is at least
    a line).

    A part is found by offering the next units (at first as many as the whole message named,
    then a quarter more than the last part held and two, so one long line early never keeps
    every later part short) and keeping those every URL named (a storm's are a prefix of one
    line each, which fits alone; a release's are checked once more on their own); the label is
    the longest (`part N of N`, N the units), so the real labels only shorten them. A size
    refusal's cap (`decide.budget_caps`) holds for every part to that URL, not only those
    with the refused rows. A URL that cannot name a part's first unit alone (a line too long
    for it, or a URL too short for any) does not size that part: it gets it cut with a count,
    the others size it. When no URL can name it, the unit is a part alone; after three such
    parts in a row the URLs are taken as too short for any unit, and the rest is one part
    (all of it one message when nothing was named): never as many useless parts as events."""
    caps = budget_caps(items)
    targets = _targets(items, skip, limits, caps)
    groups, exact = units(items), units is _one_each
    whole, drawn = draw(items, None), dict[Budget, Message]()
    left = _left_out(targets, whole, drawn)  # the unlimited message only if it is one
    if not any(left.values()) or len(groups) < 2:
        return [_fitted(route_name, items, skip, limits, whole, caps, drawn)]
    events = len(groups) if exact else len(settle_held([i.transition for i in items]).told)
    widest = Part(len(groups), len(groups), events)
    offer = len(groups) - min(left.values())  # what the URL that names most named
    parts: list[list[OutboxItem]] = []
    rest, unnamed = groups, 0  # unnamed: parts in a row whose unit no URL could name
    while rest and unnamed < _UNNAMED_RUN:
        size, sizing = max(1, min(offer, len(rest))), targets
        offered = _left_out(sizing, draw(_rows(rest[:size]), widest))
        left, first = offered, size
        while True:
            most = max(left.values(), default=0)
            if not most:
                break
            if size > 1:
                named = size - most
                size = max(1, named)
                if exact and named:  # a storm names a prefix, one line each: it fits alone
                    break
            else:  # the first unit is too long for these URLs: the others size this part
                sizing = [(index, budget) for index, budget in sizing if not left[index]]
                if not sizing:
                    break
                size = max(1, first - max(offered[index] for index, _ in sizing))
            left = _left_out(sizing, draw(_rows(rest[:size]), widest))
        unnamed = unnamed + 1 if not sizing else 0
        parts.append(_rows(rest[:size]))
        rest = rest[size:]
        offer = size + size // 4 + 2
    if rest:  # units no URL can name alone, three in a row: its URLs are too short for any
        if len(parts) == unnamed:
            return [_fitted(route_name, items, skip, limits, whole, caps, drawn)]
        parts.append(_rows(rest))
    return [
        _fitted(route_name, part, skip, limits, draw(part, Part(n, len(parts), events)), caps)
        for n, part in enumerate(parts, start=1)
    ]


_UNNAMED_RUN = 3  # parts in a row that no URL could name anything of: the split stops


def _rows(units: Sequence[Sequence[OutboxItem]]) -> list[OutboxItem]:
    return [item for unit in units for item in unit]


def _left_out(
    targets: Sequence[tuple[int, Budget]],
    draw: Callable[[Budget], Message],
    drawn: dict[Budget, Message] | None = None,
) -> dict[int, int]:
    """Per URL, the list entries its message had to leave out (each budget drawn once, kept
    in `drawn` when given)."""
    drawn = {} if drawn is None else drawn
    for _, budget in targets:
        if budget not in drawn:
            drawn[budget] = draw(budget)
    return {index: drawn[budget].left_out for index, budget in targets}


def pace_wait(
    last_sent: Mapping[int, float], send: Send, urls: int, now: float, interval: float
) -> float:
    """Seconds to wait before `send` so that no URL it goes to gets two messages closer than
    `interval` seconds (all times on the monotonic clock)."""
    if interval <= 0:
        return 0.0
    targets = [i for i in range(urls) if i not in send.skip] if urls else list(last_sent)
    due = max((last_sent[i] + interval for i in targets if i in last_sent), default=now)
    return max(due - now, 0.0)

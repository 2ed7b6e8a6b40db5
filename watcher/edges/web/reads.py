"""What each page and each `/api/v1` list shows, read from the host: one loader per view.

The HTML pages and the JSON API call the same loaders and get the same dicts
(`watcher.edges.web.views`), so the page never shows what the API would not say. A bad query
(an unknown filter, a foreign cursor) raises `BadQuery` with what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from watcher.core.browse import Filter, Order, clamp_limit, select_kbs
from watcher.core.cost import PRICES_KEY, decode_prices
from watcher.core.outbox import DeliveryState
from watcher.edges.web import views
from watcher.edges.web.charts import (
    bars,
    duration_of,
    short_count,
    short_duration,
    timeline,
    tokens_of,
)
from watcher.edges.web.host import WatcherHost

Json = dict[str, Any]
API_LIMIT: Final = 100
PAGE_LIMIT: Final = 1000
_DELIVERY_STATES: Final = {
    "pending": (DeliveryState.PENDING, DeliveryState.SENDING),
    "dead": (DeliveryState.DEAD,),
    "sent": (DeliveryState.SENT,),
    "silenced": (DeliveryState.SILENCED,),  # held by a silence: recorded, not sent
}


class BadQuery(ValueError):
    """A query parameter the view does not take (the message says what it takes)."""


class NotFound(LookupError):
    """The thing asked for is not in the store (the message says which)."""


def _choice(query: Mapping[str, str], name: str, default: str, allowed: list[str]) -> str:
    value = query.get(name, default) or default
    if value not in allowed:
        raise BadQuery(f"{name} must be one of: {', '.join(allowed)}")
    return value


def limit_of(query: Mapping[str, str], default: int) -> int:
    """The `limit` parameter (1 to the maximum), or `default`."""
    raw = query.get("limit")
    if raw is None or raw == "":
        return clamp_limit(default)
    if not raw.isdigit():
        raise BadQuery("limit must be a whole number")
    return clamp_limit(int(raw))


def _cursor(query: Mapping[str, str]) -> str | None:
    return query.get("cursor") or None


async def overview(host: WatcherHost, query: Mapping[str, str], default_limit: int) -> Json:
    """The knowledge bases passing the filter, in order, one page; with every standing's count.

    Query: `state` (a `Filter` word), `sort` (an `Order` word), `limit`, `cursor`.
    """
    where = Filter(_choice(query, "state", "all", [f.value for f in Filter]))
    order = Order(_choice(query, "sort", "name", [o.value for o in Order]))
    _, api_now = host.clocks()
    kbs = await host.store.knowledge_bases()
    try:
        page = select_kbs(
            kbs,
            where=where,
            order=order,
            limit=limit_of(query, default_limit),
            after=_cursor(query),
        )
    except ValueError as exc:
        raise BadQuery(f"cursor: {exc}") from exc
    base = f"{views.API}/knowledge_bases?state={where.value}&sort={order.value}"
    listed = views.page_view((views.kb_view(kb, api_now) for kb in page.items), page.next, base)
    listed.update(state=where.value, sort=order.value, counts=views.summary(kbs))
    accounts = await host.kb_accounts()
    for item in listed["items"]:  # with several [[accounts]], each names its account
        item["account"] = accounts.get(item["uuid"])
    return listed


async def knowledge_base(host: WatcherHost, uuid: str) -> Json:
    """One knowledge base with its charts over the whole retention (SVG, for the page)."""
    _, api_now = host.clocks()
    found = await host.store.knowledge_bases([uuid])
    if not found:
        raise NotFound(f"no knowledge base {uuid} in the store")
    view = views.kb_view(found[0], api_now)
    view["account"] = (await host.kb_accounts()).get(uuid)
    points = await host.store.job_points(uuid)
    view["history"] = {
        "jobs": len(points),
        "first_created_at": views.iso(points[0].created_at) if points else None,
    }
    view["charts"] = {
        "timeline": timeline(points, api_now),
        "durations": bars(points, duration_of, title="Duration of each job", unit=short_duration),
        "tokens": bars(points, tokens_of, title="Tokens of each job", unit=short_count),
    }
    return view


async def history(host: WatcherHost, uuid: str) -> Json:
    """Every kept job of a knowledge base as chart points, oldest first (the API's view)."""
    if not await host.store.knowledge_bases([uuid], recent=0):
        raise NotFound(f"no knowledge base {uuid} in the store")
    points = await host.store.job_points(uuid)
    price = decode_prices(await host.store.get_meta(PRICES_KEY)).get(uuid)
    return {"kb_uuid": uuid, "items": [views.point_view(p, price) for p in points]}


async def jobs(host: WatcherHost, uuid: str, query: Mapping[str, str], default_limit: int) -> Json:
    """A page of a knowledge base's jobs, newest first."""
    _, api_now = host.clocks()
    if not await host.store.knowledge_bases([uuid], recent=0):
        raise NotFound(f"no knowledge base {uuid} in the store")
    try:
        page = await host.store.jobs(
            uuid, limit=limit_of(query, default_limit), after=_cursor(query)
        )
    except ValueError as exc:
        raise BadQuery(f"cursor: {exc}") from exc
    base = f"{views.API}/knowledge_bases/{uuid}/jobs"
    return views.page_view((views.job_view(s, api_now) for s in page.items), page.next, base)


async def events(
    host: WatcherHost, uuid: str | None, query: Mapping[str, str], default_limit: int
) -> Json:
    """A page of events (of one knowledge base, or all), newest first, with their deliveries."""
    now, _ = host.clocks()
    try:
        page = await host.store.events(
            kb_uuid=uuid, limit=limit_of(query, default_limit), after=_cursor(query)
        )
    except ValueError as exc:
        raise BadQuery(f"cursor: {exc}") from exc
    base = f"{views.API}/knowledge_bases/{uuid}/events" if uuid else f"{views.API}/events"
    return views.page_view((views.event_view(e, now) for e in page.items), page.next, base)


async def job(host: WatcherHost, uuid: str) -> Json:
    """One job in detail: data sources, events and their deliveries."""
    now, api_now = host.clocks()
    record = await host.store.job(uuid)
    if record is None:
        raise NotFound(f"no job {uuid} in the store")
    return views.job_record_view(record, now, api_now)


async def deliveries(host: WatcherHost, query: Mapping[str, str], default_limit: int) -> Json:
    """A page of deliveries in one state (`pending` by default, `dead`, `sent`), newest first,
    with the counts of every state and route. Query: `state`, `route`, `limit`, `cursor`."""
    now, _ = host.clocks()
    state = _choice(query, "state", "pending", list(_DELIVERY_STATES))
    route = query.get("route") or None
    try:
        page = await host.store.deliveries(
            _DELIVERY_STATES[state],
            route=route,
            limit=limit_of(query, default_limit),
            after=_cursor(query),
        )
    except ValueError as exc:
        raise BadQuery(f"cursor: {exc}") from exc
    base = f"{views.API}/deliveries?state={state}"
    listed = views.page_view((views.delivery_view(d, now) for d in page.items), page.next, base)
    listed.update(state=state, route=route)
    listed["counts"] = views.counts_view(await host.store.outbox_counts(), now)
    return listed


async def watcher(host: WatcherHost) -> Json:
    """The watcher itself."""
    return views.facts_view(await host.facts())

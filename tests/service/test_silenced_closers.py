"""A closer (`api_recovered`, ...) whose opener a silence held is held too, on a real store:
nobody hears "reachable again" without the "unreachable" the silence kept from them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from tests.edges.store.test_sqlite import ENGINES, LEASE, NOW, change, count
from tests.service.test_dispatch import Clocks, Receiver
from tests.stores import Engine
from watcher.core.decide import RetryPolicy, RouteRule
from watcher.core.model import EventKind
from watcher.core.silences import Silence
from watcher.core.state import Transition
from watcher.edges.store.sqlite import SqliteStore
from watcher.service.dispatch import Dispatcher, DispatchSettings
from watcher.service.silencing import Silencer


@pytest.fixture
async def store(engine: Engine) -> AsyncIterator[SqliteStore]:
    opened = await engine.open_held(NOW, lease=LEASE)
    ENGINES[id(opened)] = engine
    try:
        yield opened
    finally:
        ENGINES.pop(id(opened), None)
        await opened.close()


def dispatcher(store: SqliteStore, receiver: Receiver, at: list[datetime]) -> Dispatcher:
    options = DispatchSettings(
        rules=(RouteRule("ops", frozenset(EventKind)),),
        retry=RetryPolicy(base=timedelta(seconds=30)),
        storm_threshold=5,
    )
    clocks = Clocks()
    deliver = Dispatcher(
        store, store, store, receiver, options, lambda: at[0],
        monotonic=clocks.monotonic, sleep=clocks.sleep,
    )  # fmt: skip
    deliver.silences = store
    return deliver


def api(kind: EventKind, n: int, at: datetime) -> Transition:
    return Transition(f"api/{kind.value}/{n}", kind, at)


def api_silence(sid: str, event: EventKind | None, hours: float) -> Silence:
    end = NOW + timedelta(hours=hours)
    return Silence(sid, None, event, NOW, end, "alice", "maintenance")


async def test_an_outage_that_outlives_its_silence_is_sent_at_its_end_then_its_recovery(
    store: SqliteStore,
) -> None:
    at, receiver = [NOW], Receiver()
    deliver = dispatcher(store, receiver, at)
    await store.add_silence(api_silence("s1", None, 1))
    await store.record(change(api(EventKind.API_UNREACHABLE, 1, NOW)))
    await deliver.deliver()
    assert receiver.sent == [] and count(store, "outbox", "silence_id = 's1'") == 1
    end = NOW + timedelta(minutes=10)
    assert await store.expire_silence("s1", end)
    at[0] = end  # the silence is over, the API still unreachable: now they hear it
    assert await Silencer(store, {"ops"}, lambda: at[0]).end_silences() == 1
    await deliver.deliver()
    titles = [message.title for _, _, message in receiver.sent]
    assert len(titles) == 1 and "unreachable" in titles[0]
    later = NOW + timedelta(minutes=20)  # the API comes back: they hear that too
    at[0] = later
    await store.record(change(api(EventKind.API_RECOVERED, 1, later), at=later))
    await deliver.deliver()
    titles = [message.title for _, _, message in receiver.sent]
    assert len(titles) == 2 and "reachable again" in titles[1]


async def test_an_outage_held_and_over_within_its_silence_is_never_heard_of(
    store: SqliteStore,
) -> None:
    at, receiver = [NOW], Receiver()
    deliver = dispatcher(store, receiver, at)
    await store.add_silence(api_silence("s1", None, 1))
    await store.record(change(api(EventKind.API_UNREACHABLE, 1, NOW)))
    await store.record(change(api(EventKind.API_RECOVERED, 1, NOW)))
    await deliver.deliver()
    at[0] = NOW + timedelta(hours=2)  # it timed out
    assert await Silencer(store, {"ops"}, lambda: at[0]).end_silences() == 1
    await deliver.deliver()
    assert receiver.sent == []
    assert count(store, "outbox", "state = 'silenced' AND silence_id = 's1'") == 2


async def test_a_recovery_after_its_silence_ended_unannounced_is_held_with_its_outage(
    store: SqliteStore,
) -> None:
    """Between the end and its announcement (another process's cycle), the closer waits with
    its opener: held by the silence, never a lone "reachable again"."""
    at, receiver = [NOW], Receiver()
    deliver = dispatcher(store, receiver, at)
    await store.add_silence(api_silence("s1", None, 1))
    await store.record(change(api(EventKind.API_UNREACHABLE, 1, NOW)))
    await deliver.deliver()
    later = NOW + timedelta(hours=2)
    at[0] = later
    await store.record(change(api(EventKind.API_RECOVERED, 1, later), at=later))
    await deliver.deliver()
    assert receiver.sent == []
    assert count(store, "outbox", "state = 'silenced' AND silence_id = 's1'") == 2


async def test_a_silence_of_an_event_also_holds_the_event_that_closes_it(
    store: SqliteStore,
) -> None:
    at, receiver = [NOW], Receiver()
    deliver = dispatcher(store, receiver, at)
    await store.add_silence(api_silence("s1", EventKind.API_UNREACHABLE, 1))
    await store.record(change(api(EventKind.API_UNREACHABLE, 1, NOW)))
    await store.record(change(api(EventKind.API_RECOVERED, 1, NOW)))
    await deliver.deliver()
    assert receiver.sent == []
    assert count(store, "outbox", "state = 'silenced' AND silence_id = 's1'") == 2

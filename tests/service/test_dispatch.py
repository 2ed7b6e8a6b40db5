"""The deliver stage against hand-written fakes: pacing, re-rendering after a size refusal,
delivery news told to the other routes (no mocks, no I/O)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from structlog.testing import capture_logs

from tests.service.test_cycle import T0, FakeStore, job
from watcher.core.decide import RetryPolicy, RouteRule
from watcher.core.model import EventKind
from watcher.core.outbox import (
    Budget,
    DeliveryState,
    FailureCause,
    Message,
    SendResult,
    TargetResult,
)
from watcher.core.ports import SilenceAnnouncer
from watcher.core.silences import Silence
from watcher.core.state import Change, Transition
from watcher.service.dispatch import Dispatcher, DispatchSettings

ALL = frozenset(EventKind)


@dataclass
class Clocks:
    """A monotonic clock that only moves when the dispatcher sleeps."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Receiver:
    """One URL per route; answers by route: ok, a cause, or a size limit on the body."""

    sent: list[tuple[str, float, Message]] = field(default_factory=list)
    causes: dict[str, FailureCause] = field(default_factory=dict)
    max_body: dict[str, int] = field(default_factory=dict)
    clocks: Clocks | None = None

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return (Budget(body=32768),)

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        chosen = (fitted or {}).get(0, message)
        at = self.clocks.now if self.clocks else 0.0
        size = len(chosen.body)
        if route in self.max_body and size > self.max_body[route]:
            cause, status = FailureCause.TOO_LARGE, 413
        elif route in self.causes:
            cause, status = self.causes[route], None
        else:
            self.sent.append((route, at, chosen))
            return SendResult(ok=True, targets=(TargetResult("svc", "svc://", True, "", 0),))
        target = TargetResult("svc", "svc://", False, cause.explanation, 0, cause, status, size)
        return SendResult(ok=False, error=cause.explanation, targets=(target,))

    def to(self, route: str) -> list[Message]:
        return [message for name, _, message in self.sent if name == route]


def started(n: int, **changes: object) -> Transition:
    return Transition(f"job-{n}/started", EventKind.STARTED, T0, "kb-1", "docs", job(n))


async def record(store: FakeStore, rules: tuple[RouteRule, ...], *ts: Transition) -> None:
    from watcher.core.decide import route

    await store.record(Change("c1", T0, transitions=ts, deliveries=route(ts, rules)))


def dispatcher(
    store: FakeStore,
    receiver: Receiver,
    rules: tuple[RouteRule, ...],
    clocks: Clocks,
    **settings: object,
) -> Dispatcher:
    options = DispatchSettings(
        rules=rules,
        retry=RetryPolicy(base=timedelta(seconds=30)),
        storm_threshold=settings.pop("storm_threshold", 5),  # type: ignore[arg-type]
        **settings,  # type: ignore[arg-type]
    )
    return Dispatcher(
        store,
        store,
        store,
        receiver,
        options,
        lambda: T0,
        monotonic=clocks.monotonic,
        sleep=clocks.sleep,
    )


async def test_messages_to_one_url_are_paced_at_the_send_interval() -> None:
    """Five alerts due at once (below the storm threshold) go one second apart, not in 60 ms."""
    clocks = Clocks()
    store, receiver = FakeStore(), Receiver(clocks=clocks)
    rules = (RouteRule("slack", ALL), RouteRule("mail", ALL))
    await record(store, rules, *(started(n) for n in range(5)))
    await dispatcher(store, receiver, rules, clocks, send_interval=timedelta(seconds=1)).deliver()

    for name in ("slack", "mail"):
        times = [at for route, at, _ in receiver.sent if route == name]
        assert len(times) == 5
        assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [1.0] * 4


@dataclass
class Small(Receiver):
    """A service that takes 900 characters: a grouped alert's part names about 8 events."""

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return (Budget(body=900),)


async def test_a_storm_larger_than_one_claim_is_planned_as_one_worst_first() -> None:
    """26 rows due at once with claims of 10: before, 10 went now as a storm of two parts
    'of 2', and the rest in later rounds or a poll later, the failure among them last."""
    clocks = Clocks()
    store, receiver = FakeStore(), Small(clocks=clocks)
    rules = (RouteRule("chat", ALL),)
    failed = Transition("job-99/failed", EventKind.FAILED, T0, "kb-1", "docs", job(99))
    await record(store, rules, *(started(n) for n in range(25)), failed)
    settings = {"batch": 10, "send_interval": timedelta(0)}
    await dispatcher(store, receiver, rules, clocks, **settings).deliver()

    sent = receiver.to("chat")
    assert len(sent) > 1
    assert all(f"of {len(sent)}; 26 events in all" in m.body for m in sent)
    assert "job-99" in sent[0].body  # the failure first, whatever claim it came in
    assert sum(m.body.count("`job-") for m in sent) == 26

    clocks = Clocks()
    store, receiver = FakeStore(), Receiver(clocks=clocks)
    rules = (RouteRule("discord", ALL),)
    await record(store, rules, *(started(n) for n in range(3)))
    await dispatcher(
        store,
        receiver,
        rules,
        clocks,
        send_interval=timedelta(seconds=1),
        route_send_intervals={"discord": timedelta(seconds=0.4)},
    ).deliver()
    times = [at for _, at, _ in receiver.sent]
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [0.4, 0.4]


async def test_a_size_refusal_is_sent_again_at_once_shorter_in_the_same_delivery() -> None:
    """A receiver stricter than its service's known limit: refused whole, taken shortened."""
    from tests.core.test_plan import partial_job

    clocks = Clocks()
    store, receiver = FakeStore(), Receiver(clocks=clocks, max_body={"ops": 1500})
    rules = (RouteRule("ops", ALL),)
    t = Transition("job-1/partial", EventKind.PARTIAL, T0, "kb-1", "docs", partial_job(60))
    await record(store, rules, t)
    outcomes = await dispatcher(store, receiver, rules, clocks).deliver()

    [message] = receiver.to("ops")
    assert len(message.body) <= 1500
    assert "more data sources" in message.body
    reasons = [reason.value for _, reason in outcomes]
    assert reasons[-1] == "delivered" and set(reasons[:-1]) == {"resized"}
    [row] = store.rows.values()
    assert (row.state, row.attempts) == (DeliveryState.SENT, 1)  # the refusals spent nothing


async def test_a_failing_route_is_news_for_the_other_routes_and_never_for_itself() -> None:
    clocks = Clocks()
    store, receiver = FakeStore(), Receiver(clocks=clocks)
    receiver.causes["mail"] = FailureCause.CREDENTIALS
    rules = (RouteRule("mail", ALL), RouteRule("ops", ALL))
    await record(store, rules, started(1))
    work = dispatcher(store, receiver, rules, clocks, failing_after=timedelta(0))
    await work.deliver()

    news = [m.title for m in receiver.to("ops") if "route mail" in m.title]
    assert news == ["❌ gradient-watcher: route mail: alerts not getting through"]
    assert not any("route mail" in m.title for m in receiver.to("mail"))
    [failing] = [r for (event, name), r in store.rows.items() if "delivery_failing" in event]
    assert failing.route == "ops"
    body = receiver.to("ops")[-1].body
    assert "credentials refused" in body

    receiver.causes.clear()
    for row in store.rows.values():
        row.due = T0  # due again now
    await work.deliver()
    back = [m.title for m in receiver.to("ops") if "route mail" in m.title]
    assert back[-1] == "✅ gradient-watcher: route mail: alerts getting through again"


async def test_each_send_is_logged_under_the_event_named_for_what_became_of_its_rows() -> None:
    clocks = Clocks()
    store, receiver = FakeStore(), Receiver(clocks=clocks, causes={"down": FailureCause.TIMEOUT})
    rules = (RouteRule("up", ALL), RouteRule("down", ALL))
    await record(store, rules, started(1))
    with capture_logs() as logs:
        await dispatcher(store, receiver, rules, clocks).deliver()

    said = {(line["event"], line["route"]) for line in logs if "events" in line}
    assert said == {("alert_delivered", "up"), ("alert_failed", "down")}


@dataclass
class Silences:
    """The silences in the store: a list a test appends to, as the CLI would beside it."""

    book: list[Silence] = field(default_factory=list)

    async def current_silences(self, now: datetime) -> list[Silence]:
        return list(self.book)

    async def silenced_openers(
        self, route: str, kind: EventKind, before: int
    ) -> list[tuple[Transition, str | None]]:
        return []

    async def announce_silence_end(
        self, silence_id: str, now: datetime, build: SilenceAnnouncer
    ) -> Change | None:
        return None


async def test_a_silence_added_between_rounds_holds_a_retrying_alert_at_the_next_delivery() -> None:
    """Read each round: no restart; the held row is recorded silenced, never sent."""
    clocks, silences = Clocks(), Silences()
    store, receiver = FakeStore(), Receiver(clocks=clocks, causes={"ops": FailureCause.TIMEOUT})
    rules = (RouteRule("ops", ALL), RouteRule("mail", ALL))
    await record(store, rules, started(1))
    deliver = dispatcher(store, receiver, rules, clocks)
    deliver.silences = silences
    await deliver.deliver()
    assert store.states("ops") == [("job-1/started", DeliveryState.PENDING, 1)]  # retrying
    assert len(receiver.to("mail")) == 1
    silences.book.append(
        Silence("s1", "kb-1", None, T0, T0 + timedelta(hours=2), "alice", "maintenance")
    )
    receiver.causes.clear()
    deliver.clock = lambda: T0 + timedelta(minutes=5)  # the retry is due
    with capture_logs() as logs:
        await deliver.deliver()
    assert store.states("ops") == [("job-1/started", DeliveryState.SILENCED, 1)]
    assert receiver.to("ops") == []
    assert [e["silence"] for e in logs if e["event"] == "alert_silenced"] == ["s1"]

"""The spent hour of `ReadsBudget` kept across processes, on DigitalOcean's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from structlog.testing import capture_logs

from tests.harness import TOKEN, open_harness
from tests.receivers import WebhookReceiver
from watcher.core.clocks import Elapsed
from watcher.core.extras import Bucket, spent_bucket
from watcher.core.model import RateLimit
from watcher.edges.store.lease import token_lease
from watcher.service.budget import (
    SPENT_KEY,
    ReadsBudget,
    decode_spent,
    encode_spent,
    spent_key,
)

API = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


class Gauge:
    requests_sent = 0
    rate_limit: RateLimit | None = None

    def minute_left(self) -> int:
        return 1000


def test_the_key_is_the_stores_own_or_one_per_token_lease() -> None:
    assert spent_key("store") == SPENT_KEY
    assert spent_key("token:0123456789abcdef") == f"{SPENT_KEY}:token:0123456789abcdef"


def test_what_one_process_spent_is_what_the_next_starts_from_whatever_its_elapsed_clock() -> None:
    first = ReadsBudget(Gauge(), per_hour=360)
    first.restore(None, API, Elapsed(500.0, "a"))
    for minute in range(5):
        first.spent.append((500.0 + 60 * minute, 12))  # 60 requests over five minutes
    text = first.dump(API + timedelta(minutes=5), Elapsed(800.0, "a"))
    assert sum(decode_spent(text).values()) == 60

    later = ReadsBudget(Gauge(), per_hour=360)  # another boot: its clock starts elsewhere
    later.restore(text, API + timedelta(minutes=10), Elapsed(7.0, "b"))
    assert later.spent_hour(Elapsed(7.0, "b")) == 60
    # the bucket spent what the stored hour says: 30 at most, minus 60, plus 15 min at 6/min
    assert later.room(Elapsed(7.0, "b")).spent_hour == 60
    assert later.bucket.tokens < 30
    # an hour after the last of them, it is all forgotten
    assert later.spent_hour(Elapsed(7.0 + 3600, "b")) == 0


def test_the_replayed_bucket_refills_between_the_charges_and_is_full_before_them() -> None:
    assert spent_bucket([], 0.0, 360) == Bucket(30.0, 0.0)
    bucket = spent_bucket([(0.0, 30), (600.0, 30)], 0.0, 360)
    assert bucket == Bucket(0.0, 600.0)  # emptied, refilled to its cap in ten minutes, emptied


def test_a_value_from_the_future_or_malformed_is_ignored_with_a_warning() -> None:
    future = encode_spent({int(API.timestamp() // 60) + 5: 300})
    for bad in ("[]", "{", '{"v":1,"minutes":[[1,2,3]]}', '{"v":1,"minutes":[[true,1]]}', future):
        budget = ReadsBudget(Gauge(), per_hour=360)
        with capture_logs() as logs:
            budget.restore(bad, API, Elapsed(0.0, "x"))
        assert [e["event"] for e in logs] == ["extra_reads_spent_ignored"], bad
        assert budget.spent_hour(Elapsed(0.0, "x")) == 0
        assert budget.bucket == Bucket()  # fresh: it fills at its first use


def _charged(budget: ReadsBudget) -> int:
    return sum(n for kind, n in budget.by_kind.items() if kind != "prices")


async def test_a_restarted_runtime_goes_on_from_the_hour_its_store_keeps(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """40 KBs never read: the first process spends its bucket (five minutes of a 360/h share,
    30 requests); the next, a minute later, has a minute's refill (6), not a fresh 30."""
    scenario = {
        "knowledge_bases": [
            {"key": f"kb{i}", "name": f"kb{i}", "data_sources": [{"key": "s", "items": 5}]}
            for i in range(40)
        ]
    }
    api = {"max_requests_per_minute": 60, "reserve": 0}
    async with open_harness(scenario, tmp_path, webhook_receiver, api=api) as harness:
        await harness.cycle()
        assert harness.runtime is not None and harness.runtime.cycle.budget is not None
        first = harness.runtime.cycle.budget
        assert 25 <= _charged(first) <= 32
        key = harness.runtime.cycle.settings.extras.spent_key  # type: ignore[union-attr]
        assert key == spent_key(token_lease(TOKEN))  # the token's, whatever the store
        assert await harness.runtime.store.get_meta(key) is not None

        harness.sim.advance(60)
        await harness.restart()
        await harness.cycle()
        assert harness.runtime.cycle.budget is not None
        second = harness.runtime.cycle.budget
        assert second is not first and second.restored
        assert _charged(second) <= 8
        now = harness.runtime.cycle.elapsed()
        assert second.spent_hour(now) == _charged(first) + _charged(second)

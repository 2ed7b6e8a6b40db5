"""The test harness itself: the API client's own waits pass on its clock, not in real time.

The harness makes the client's waits free (`Harness._api_sleep`). Its rate budget measures
its sliding minute on a clock of its own: when that was the real monotonic clock, a wait for
the minute slept 0 s, found the minute still full, and slept again, thousands of times, until
a real minute had passed (a 56 s cycle in a storm test); tests that send more than the
ceiling in a minute turned their extra reads off to avoid it. Now the clock moves by what the
client waited."""

from __future__ import annotations

from pathlib import Path

from tests.harness import open_harness
from tests.receivers import WebhookReceiver


async def test_a_poll_over_the_clients_ceiling_waits_once_per_request_in_its_own_time(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    kbs = [
        {"key": f"kb{n}", "name": f"kb{n}", "data_sources": [{"key": "s", "items": 5}]}
        for n in range(70)
    ]
    api = {"max_requests_per_minute": 30, "per_page": 1, "extra_reads_share": "0%"}
    async with open_harness({"knowledge_bases": kbs}, tmp_path, webhook_receiver, api=api) as h:
        report = await h.cycle()
    assert report.ok and report.knowledge_bases == 70  # 70 pages of one KB each
    assert len(h.api_waits) <= 70  # one wait per request at most, no spinning
    assert sum(h.api_waits) >= 60  # 70 requests at 30 a minute: over a minute of the client's

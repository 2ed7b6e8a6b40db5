"""Planning a route's messages within each URL's limits, and pacing them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Status
from watcher.core.outbox import Budget, FailureCause, OutboxItem, Send, TargetResult
from watcher.core.plan import pace_wait, plan
from watcher.core.state import Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DISCORD = Budget(body=2000, title=250, title_in_body=True)
EMAIL = Budget(body=32768, title=250)


def partial_job(sources: int, error_chars: int = 200) -> Job:
    """A partial job with `sources` data sources, every third failed with a long error."""
    found = tuple(
        DataSourceJob(
            data_source_uuid=f"ds-{n:03d}",
            status=DataSourceStatus.FAILED if n % 3 == 0 else DataSourceStatus.UPDATED,
            indexed_item_count=10,
            error_msg="crawl_failed" if n % 3 == 0 else None,
            error_details=("x" * error_chars) if n % 3 == 0 else None,
        )
        for n in range(sources)
    )
    return Job(
        uuid="job-1",
        knowledge_base_uuid="kb-1",
        phase=Phase.SUCCEEDED,
        status=Status.PARTIAL,
        data_source_jobs=found,
    )


def item(n: int, job: Job | None = None, **changes: object) -> OutboxItem:
    kind = EventKind.PARTIAL if job is not None else EventKind.FAILED
    t = Transition(
        event_id=f"job-{n}/{kind.value}",
        kind=kind,
        at=NOW,
        kb_uuid="kb-1",
        kb_name="docs",
        job=job or Job(uuid=f"job-{n}"),
    )
    row = OutboxItem(id=n, route="ops", transition=t, cycle_id="c", created_at=NOW)
    return replace(row, **changes)  # type: ignore[arg-type]


def test_each_url_gets_the_alert_rendered_within_its_services_limits() -> None:
    """24 sources with 200-character errors render to far more than Discord's 2,000."""
    [send] = plan([item(1, partial_job(24))], 5, "https://x", {"ops": (DISCORD, EMAIL)})
    discord, email = send.message_for(0), send.message_for(1)
    assert len(discord.title) + 2 + len(discord.body) <= 2000
    assert len(email.body) > 2000  # the mail takes the whole list
    assert email.body.count("- `ds-") == 24
    assert "… and" in discord.body and "more data sources" in discord.body


def test_a_url_that_refused_for_size_gets_a_shorter_rendering_next_time() -> None:
    refused = TargetResult("JSON", "json://", False, "", 0, FailureCause.TOO_LARGE, 400, 3000)
    row = item(1, partial_job(60), last_targets=(refused,))
    [send] = plan([row], 5, "https://x", {"ops": (Budget(body=32768),)})
    assert len(send.message_for(0).body) <= 1500


def test_rows_that_reached_a_url_before_are_not_rendered_for_it_again() -> None:
    row = item(1, partial_job(3), delivered=frozenset({0}))
    [send] = plan([row], 5, "https://x", {"ops": (DISCORD, EMAIL)})
    assert [index for index, _ in send.fitted] == [1]


# --- pacing -------------------------------------------------------------------------------


def one_send(skip: set[int]) -> Send:
    [send] = plan([item(1)], 5, "https://x")
    return replace(send, skip=frozenset(skip))


@pytest.mark.parametrize(
    ("last", "skip", "now", "interval", "wait"),
    [
        # first message to the URL: no wait
        ({}, set(), 100.0, 1.0, 0.0),
        # 0.25 s after the last one: wait the rest of the second
        ({0: 99.75}, set(), 100.0, 1.0, 0.75),
        # long ago: no wait
        ({0: 10.0}, set(), 100.0, 1.0, 0.0),
        # the busiest URL of the send decides
        ({0: 99.0, 1: 99.5}, set(), 100.0, 1.0, 0.5),
        # a URL the send skips does not hold it back
        ({0: 99.0, 1: 99.9}, {1}, 100.0, 1.0, 0.0),
        # pacing off
        ({0: 99.9}, set(), 100.0, 0.0, 0.0),
    ],
)
def test_messages_to_one_url_are_spaced_by_the_send_interval(
    last: dict[int, float], skip: set[int], now: float, interval: float, wait: float
) -> None:
    assert pace_wait(last, one_send(skip), 2, now, interval) == pytest.approx(wait)

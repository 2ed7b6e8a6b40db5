"""The charts drawn on the server: one path per outcome, sized to the data, no inline style."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.model import EventKind
from watcher.core.records import JobPoint
from watcher.core.state import JobCondition
from watcher.edges.web.charts import bars, duration_of, short_count, short_duration, timeline

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
OUTCOMES = [EventKind.COMPLETED, EventKind.FAILED, EventKind.PARTIAL]
OUTCOMES_S = [kind.value for kind in OUTCOMES]


def _points(n: int) -> list[JobPoint]:
    made = []
    for i in range(n):
        started = NOW - timedelta(hours=n - i)
        made.append(
            JobPoint(
                f"job-{i}",
                started - timedelta(minutes=1),
                started,
                started + timedelta(minutes=5 + i % 4),
                OUTCOMES[i % 3],
                JobCondition.DONE,
                tokens=1000 * (i + 1),
            )
        )
    made.append(JobPoint("running", NOW, NOW, None, None, JobCondition.RUNNING))
    return made


def test_thousands_of_jobs_are_one_path_per_outcome_and_stay_small() -> None:
    drawn = str(timeline(_points(2160), NOW)) + str(
        bars(_points(2160), duration_of, title="Durations", unit=short_duration)
    )
    paths = re.findall(r'<path class="o-(\w+)"', drawn)
    # the timeline: three outcomes and the running job; the bars: the three finished outcomes
    assert sorted(paths) == sorted(["completed", "failed", "partial", "running", *OUTCOMES_S])
    assert len(drawn) < 200_000
    assert "style=" not in drawn and "<script" not in drawn


def test_each_bar_is_as_high_as_its_value_against_the_largest() -> None:
    points = _points(3)[:3]  # 1,000, 2,000 and 3,000 tokens
    drawn = str(bars(points, lambda p: float(p.tokens or 0), title="Tokens", unit=short_count))
    heights = [float(h) for h in re.findall(r"v(\d+\.\d)h", drawn)]
    assert heights[0] * 3 == pytest.approx(heights[2], abs=0.2)
    assert heights[1] * 3 == pytest.approx(heights[2] * 2, abs=0.2)
    assert ">3k<" in drawn and 'role="img"' in drawn and "<title>Tokens</title>" in drawn


def test_charts_without_data_say_so() -> None:
    assert "no jobs yet" in str(timeline([], NOW))
    running_only = [JobPoint("j", NOW, NOW, None, None, JobCondition.RUNNING)]
    assert "no data yet" in str(bars(running_only, duration_of, title="D", unit=short_duration))

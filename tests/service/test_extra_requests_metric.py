"""`gradient_watcher_extra_requests_total{kind}`: the requests of the reads beyond the polling,
by kind, from the cycle's budget. A real runtime against the simulator on loopback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.service.quiet_runtime import quiet_runtime
from watcher.edges.metrics import Metrics
from watcher.service.runtime import Runtime
from watcher.service.upkeep import EXTRA_KINDS, Upkeep

TOKEN = "dop_v1_" + "5182" * 16
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with quiet_runtime(tmp_path, TOKEN, NOW) as opened:
        yield opened


def exported(metrics: Metrics) -> dict[str, float]:
    text = metrics.render().decode()
    found = re.findall(
        r'^gradient_watcher_extra_requests_total\{kind="([^"]+)"\} (\S+)$', text, re.M
    )
    return {kind: float(n) for kind, n in found}


async def test_the_extra_requests_are_counted_by_kind_once_each(runtime: Runtime) -> None:
    metrics = Metrics()
    upkeep = Upkeep(runtime, metrics)
    assert exported(metrics) == dict.fromkeys(EXTRA_KINDS, 0.0)  # every kind from the start

    report = await runtime.cycle.run()
    await upkeep.after_cycle(report, 0.1, NOW)
    budget = runtime.cycle.budget
    assert budget is not None
    by_kind = dict(budget.by_kind)
    assert by_kind["data_sources"] > 0 and by_kind["prices"] > 0
    assert exported(metrics) == {kind: float(by_kind.get(kind, 0)) for kind in EXTRA_KINDS}

    # the next cycle adds only what it sent
    report = await runtime.cycle.run()
    await upkeep.after_cycle(report, 0.1, NOW + timedelta(minutes=1))
    assert exported(metrics) == {kind: float(budget.by_kind.get(kind, 0)) for kind in EXTRA_KINDS}

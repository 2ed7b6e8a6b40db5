"""Which extra reads (beyond the polling) are due this cycle: for now, the KBs' schedules.

THE ONE SEAM FOR THE READS BUDGET: `schedule_reads_due` is the only place that decides when a
knowledge base's schedule is read. Until the shared budget of extra reads lands (issue 17a's
planner: a share of the token's hourly budget), it reads each schedule at its own cadence
(`every`, an hour by default), at most `limit` a cycle, the longest unread first. At merge
it is pointed at that planner, and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from watcher.core.clocks import Elapsed

SCHEDULE_READS_PER_CYCLE = 20


def schedule_reads_due(
    kb_uuids: Sequence[str],
    last_read: Mapping[str, Elapsed],
    now: Elapsed,
    every: timedelta = timedelta(hours=1),
    limit: int = SCHEDULE_READS_PER_CYCLE,
) -> tuple[str, ...]:
    """The KBs whose schedule to read now: never read by this process (or on another boot),
    or last read `every` ago or more (the elapsed clock); never read ones first, then the
    oldest reads; at most `limit`."""
    due: list[tuple[float, str]] = []
    for uuid in kb_uuids:
        before = last_read.get(uuid)
        age = now.since(before) if before is not None else None
        if age is None:
            due.append((float("-inf"), uuid))
        elif age >= every:
            due.append((-age.total_seconds(), uuid))
    due.sort()
    return tuple(uuid for _, uuid in due[: max(limit, 0)])

"""Running one cycle per account, one after the other, and telling them as one report.

Each account's cycle runs in its own logging context (`account=<name>`), so its lines (a 401
naming the account's token source included) say whose they are. A cycle that fails (the API
refused its token, could not be reached) is that account's: the next account's cycle runs
all the same. The combined report is ok when at least one account's cycle was (the daemon's
health then stays on: one revoked token must not get every account restarted by a watchdog);
its `error` names each account that failed, and `failed_accounts` which (`watcher once` exits
non-zero when any did).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import structlog

from watcher.service.cycle import CycleReport
from watcher.service.runtime import AccountRuntime

log = structlog.get_logger(__name__)


async def run_account(account: AccountRuntime, *, several: bool) -> CycleReport:
    """One account's cycle, its log lines bound to the account when there are several."""
    if not several:
        return await account.cycle.run()
    with structlog.contextvars.bound_contextvars(account=account.name):
        report = await account.cycle.run()
        if not report.ok:
            log.warning("account_cycle_failed", account=account.name, error=report.error)
        return report


def combine(reports: Sequence[tuple[str, CycleReport]]) -> CycleReport:
    """The accounts' reports as one: ok when any was; counts and events added up; the error
    names each account that failed (a single report is returned as it is)."""
    if len(reports) == 1:
        return reports[0][1]
    failed = [(name, r) for name, r in reports if not r.ok]
    error = "; ".join(f"account {name}: {r.error or 'failed'}" for name, r in failed) or None
    first = reports[0][1]
    return replace(
        first,
        ok=any(r.ok for _, r in reports),
        knowledge_bases=sum(r.knowledge_bases for _, r in reports),
        active_jobs=sum(r.active_jobs for _, r in reports),
        events=tuple(e for _, r in reports for e in r.events),
        deliveries=tuple(d for _, r in reports for d in r.deliveries),
        extra_requests=sum(r.extra_requests for _, r in reports),
        error=error,
        by_account=tuple(reports),
    )


def failed_accounts(reports: Sequence[tuple[str, CycleReport]]) -> tuple[str, ...]:
    """The names of the accounts whose cycle failed."""
    return tuple(name for name, r in reports if not r.ok)

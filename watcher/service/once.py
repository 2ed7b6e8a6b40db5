"""`watcher once`: one poll cycle plus delivery of what is due, recorded for `watcher health`.

Apart from `watcher.service.commands` so that the one-shot (from cron, every `poll.interval`)
imports the cycle and its store, not the status, cost and silence views of the other commands.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta

from watcher.config import Config
from watcher.core.health import HEARTBEAT_KEY, Heartbeat, health_limit
from watcher.edges.hostclock import monotonic_now
from watcher.service.accountruns import combine, failed_accounts, run_account
from watcher.service.cycle import CycleReport
from watcher.service.heartbeat import HeartbeatSender
from watcher.service.quickhealth import MARK_KEY, file_mark
from watcher.service.runtime import NO_METRICS, open_runtime, utcnow

__all__ = ["once_limit", "run_once"]


async def run_once(config: Config) -> CycleReport:
    """One poll cycle plus delivery of what is due (`watcher once`).

    The cycle is recorded for `watcher health` as the daemon records its own, so that `once`
    from cron every `poll.interval` is judged by the same rule.
    """
    mark = file_mark(config.source, os.environ)  # the file validated, for `health`'s fast path
    runtime = await open_runtime(config, metrics=NO_METRICS)  # no `/metrics` to serve
    heartbeat = HeartbeatSender(config.heartbeat.plan(), ca_bundle=config.ca_bundle)
    try:
        several = config.several_accounts
        reports = [(a.name, await run_account(a, several=several)) for a in runtime.accounts()]
        report = combine(reports)  # ok when any account's cycle was (health, last cycle)
        heartbeat.after_cycle(report)  # runs while delivery drains
        for account in runtime.accounts():
            await account.cycle.dispatcher.drain()  # each send is bounded by delivery.timeout
        await heartbeat.wait()  # bounded by heartbeat.timeout
        if report.ok:
            await runtime.store.set_last_cycle_at(utcnow())
        at, limit = monotonic_now(), once_limit(config)
        before = Heartbeat.decode(await runtime.store.get_meta(HEARTBEAT_KEY))
        if before is None or at.since(before.finished) is None:  # none yet, or another boot
            before = Heartbeat(at, False, limit)
        beat = before.after(report.ok, at, limit, report.error, runtime.client.api_now())
        await runtime.store.set_meta(HEARTBEAT_KEY, beat.encode())
        await runtime.store.set_meta(MARK_KEY, mark)
        # `once` fails (exit 1) when any account's cycle did
        return replace(report, ok=False) if failed_accounts(reports) else report
    finally:
        await heartbeat.close()
        await runtime.close()


def once_limit(config: Config) -> timedelta:
    """The health limit for cycles run by `watcher once` every `poll.interval`."""
    poll = config.poll
    return health_limit(poll.interval, poll.cycle_deadline, config.delivery.timeout)

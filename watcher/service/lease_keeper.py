"""Holding the store's lease for this process: acquire, renew, stand by, release.

The shell's side of `watcher.core.lease`. A `LeaseKeeper` steps the lease through the store on the
event loop's monotonic clock: every `duration / 3` while it holds the lease, every
`duration / 15` (or at the expiry) while another process holds it. Each change is logged
once: `store_lease_acquired` (with why, the epoch and how many earlier claims went back to the
queue), `store_standing_by` (naming the holder), `store_lease_lost`, `store_replaced` (the file
vanished from under the store) and `store_restored`. A failed step (a busy or full disk)
changes nothing: fencing, not the keeper, keeps a stale holder from writing.

`watcher once` takes the lease or stops with `StoreHeld` (exit 75); `watcher run` stands by
until it can take it: during a rolling restart it takes over as soon as the old process lets
go, after a kill -9 as soon as the old process is proven gone (or its lease runs out).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

import structlog

from watcher.core.errors import StoreError, StoreHeld, StoreReplaced
from watcher.core.lease import STANDBY_EVERY, Holder, LeaseReason
from watcher.edges.store.lease import LeaseOutcome, held_message

log = structlog.get_logger(__name__)

LEASE_DURATION: Final = 30.0
"""Seconds a lease lasts unrenewed: how long a process standing by in another pid namespace
(another container) waits for a holder that vanished without letting go."""


class LeaseStore(Protocol):
    """What the keeper needs of a store (`watcher.edges.store.sqlite.SqliteStore`)."""

    @property
    def path(self) -> Path: ...

    async def lease_step(self, holder: Holder, duration: float) -> LeaseOutcome: ...

    async def release_lease(self) -> None: ...


class Tenure(StrEnum):
    """Where this process stands with the store."""

    STARTING = "starting"  # no step yet
    HOLDING = "holding"  # it holds the lease: it polls and writes
    STANDING_BY = "standing_by"  # another process holds it
    REPLACED = "replaced"  # the file at the state path is no longer the one opened


class LeaseKeeper:
    """Steps one holder's lease on one store; `tenure` and `problem` say where it stands."""

    def __init__(self, store: LeaseStore, holder: Holder, duration: float = LEASE_DURATION) -> None:
        self.store, self.holder, self.duration = store, holder, duration
        self.tenure = Tenure.STARTING
        self.problem: str | None = None
        """Why this process does not hold the lease (for readiness, STATUS= and errors)."""
        self.on_change: Callable[[Tenure], None] | None = None
        self.on_step: Callable[[], None] | None = None
        """Called after each background step: a process standing by lives by these."""
        self.holding = asyncio.Event()
        self._last: LeaseOutcome | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    @property
    def held(self) -> bool:
        return self.tenure is Tenure.HOLDING

    async def acquire(self) -> None:
        """Take the lease now, or raise `StoreHeld` naming its holder (`watcher once`, a reload
        to another state file)."""
        await self.step()
        if self.tenure is Tenure.REPLACED:
            raise StoreReplaced(self.problem or "the state store was replaced")
        if not self.held:
            raise StoreHeld(
                f"{self.problem}. One store has one poller, and {self.holder.command} would be "
                "a second one: stop that process first, or point state.path at another file"
            )

    async def step(self) -> float:
        """One lease step; returns the seconds until the next one."""
        try:
            outcome = await self.store.lease_step(self.holder, self.duration)
        except StoreReplaced as exc:
            if self.tenure is not Tenure.REPLACED:
                log.error("store_replaced", error=str(exc))
            self._change(Tenure.REPLACED, str(exc))
            return self.duration * STANDBY_EVERY
        except StoreError as exc:
            log.warning("store_lease_step_failed", error=str(exc))
            return self.duration * STANDBY_EVERY
        self._observe(outcome)
        return outcome.decision.recheck_in

    def _observe(self, outcome: LeaseOutcome) -> None:
        decision, before = outcome.decision, self._last
        self._last = outcome
        if self.tenure is Tenure.REPLACED:
            log.warning("store_restored", path=str(self.store.path))
        if decision.held:
            if self.tenure is not Tenure.HOLDING:
                log.info(
                    "store_lease_acquired",
                    epoch=decision.epoch,
                    reason=decision.reason.value,
                    claims_returned=outcome.returned,
                )
            self._change(Tenure.HOLDING, None)
            return
        if decision.reason is LeaseReason.SUPERSEDED or self.tenure is Tenure.HOLDING:
            log.error("store_lease_lost", holder=_who(decision.holder), epoch=decision.epoch)
        moved = before is None or before.decision.holder != decision.holder
        if moved or self.tenure is not Tenure.STANDING_BY:
            log.warning(
                "store_standing_by",
                holder=_who(decision.holder),
                epoch=decision.epoch,
                reason=decision.reason.value,
            )
        self._change(Tenure.STANDING_BY, self._held_text(outcome))

    def _held_text(self, outcome: LeaseOutcome) -> str:
        d = outcome.decision
        text = held_message(self.store.path, d.holder, d.epoch)
        if d.reason is LeaseReason.HOLDER_RUNNING:
            text += " (it has not renewed the lease, but it still runs on this host)"
        return text

    def _change(self, tenure: Tenure, problem: str | None) -> None:
        changed = tenure is not self.tenure
        self.tenure, self.problem = tenure, problem
        if tenure is Tenure.HOLDING:
            self.holding.set()
        else:
            self.holding.clear()
        if changed and self.on_change is not None:
            self.on_change(tenure)

    def start(self) -> None:
        """Step the lease in the background until `stop` (renewing, standing by, taking over)."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.ensure_future(self._keep())

    def wake(self) -> None:
        """Step now rather than at the next turn (a write was just refused by the store)."""
        self._wake.set()

    async def _keep(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = await self.step()
            except Exception:  # the keeper must outlive any one bad step, like the cycle
                log.exception("store_lease_step_crashed")
                wait = self.duration * STANDBY_EVERY
            if self.on_step is not None:
                self.on_step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken(), timeout=wait)

    async def _woken(self) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

    async def stop(self, *, release: bool = True) -> None:
        """Stop stepping; let the lease go (so a process standing by takes it at once)."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            await asyncio.wait({task})
        if release and self.held:
            try:
                await self.store.release_lease()
                log.info("store_lease_released")
            except StoreError as exc:
                log.warning("store_lease_release_failed", error=str(exc))
            self._change(Tenure.STARTING, None)


def _who(holder: Holder | None) -> str:
    return holder.describe() if holder is not None else "nobody"

"""Remediation in the shell, on a real SQLite store: the intent is in the store before any
write call, and a watcher that stopped between a call and its record is never repeated."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.stores import open_held
from watcher.core import remedy
from watcher.core.decide import RouteRule
from watcher.core.errors import Forbidden
from watcher.core.model import EventKind, Job, Phase, Status
from watcher.core.remedy import OnStalled, RemedyPolicy, Step
from watcher.core.state import Change, Transition
from watcher.service.remedies import Remedies

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KB = "kb-1"
POLICY = RemedyPolicy(OnStalled.CANCEL_AND_REINDEX, max_attempts=1)
RULES = (RouteRule("ops", frozenset(EventKind), frozenset({"*"})),)


class Crash(BaseException):
    """The process dies (kill -9) in the middle of the calls."""


class Writer:
    """A fake of the two write operations: records each call; may crash after a cancel or
    refuse with a 403."""

    def __init__(
        self,
        crash_after_cancel: bool = False,
        forbid: bool = False,
        crash_after_create: bool = False,
        hang: bool = False,
    ) -> None:
        self.calls: list[str] = []
        self.crash_after_cancel, self.forbid = crash_after_cancel, forbid
        self.crash_after_create, self.hang = crash_after_create, hang

    async def cancel_job(self, job_uuid: str) -> Job:
        self.calls.append(f"cancel {job_uuid}")
        if self.forbid:
            raise Forbidden(403, method="PUT", path="/cancel", hint="lacks genai:update")
        if self.crash_after_cancel:
            raise Crash
        if self.hang:
            await asyncio.sleep(3600)
        return Job(job_uuid, KB, Phase.CANCELLED, status=Status.CANCELLED)

    async def create_job(self, kb_uuid: str, data_source_uuids: Iterable[str] = ()) -> Job:
        self.calls.append(f"create {kb_uuid}")
        if self.crash_after_create:
            raise Crash
        return Job("job-2", kb_uuid, Phase.PENDING, status=Status.PENDING)


def stalled(job: str = "job-1") -> Transition:
    return Transition(f"{job}/stalled/1", EventKind.STALLED, NOW, KB, "docs", Job(job, KB))


async def cycle(remedies: Remedies, store: object, transitions: list[Transition]) -> None:
    """What the cycle does: plan with the record of the stall, then act."""
    meta = await remedies.plan(transitions)
    await remedies.store.record(Change("c", NOW, transitions=tuple(transitions)), meta=meta)
    await remedies.act("c", NOW, NOW)


async def test_the_intent_is_recorded_with_the_stall_before_any_call(tmp_path: Path) -> None:
    store = await open_held(tmp_path / "w.db", NOW)
    try:
        writer = Writer()
        remedies = Remedies(writer, store, store, POLICY, RULES)
        meta = await remedies.plan([stalled()])
        assert writer.calls == []  # nothing sent yet
        (intent,) = remedy.decode(meta[remedy.REMEDIES_KEY])[KB]
        assert intent.step is Step.INTENT
        await store.record(Change("c", NOW, transitions=(stalled(),)), meta=meta)
        assert await remedies.act("c", NOW, NOW) == 1
        assert writer.calls == ["cancel job-1", f"create {KB}"]
        (done,) = remedy.decode(await store.get_meta(remedy.REMEDIES_KEY))[KB]
        assert (done.step, done.new_job) == (Step.DONE, "job-2")
    finally:
        await store.close()


async def test_a_crash_between_a_call_and_its_record_is_reported_unknown_and_not_repeated(
    tmp_path: Path,
) -> None:
    store = await open_held(tmp_path / "w.db", NOW)
    try:
        crashing = Writer(crash_after_cancel=True)
        with pytest.raises(Crash):
            await cycle(Remedies(crashing, store, store, POLICY, RULES), store, [stalled()])
        assert crashing.calls == ["cancel job-1"]
        # the next process: same store, a writer that would work
        writer = Writer()
        after = Remedies(writer, store, store, POLICY, RULES)
        await cycle(after, store, [stalled()])  # even the same stall again: not acted on
        assert writer.calls == []
        (left,) = remedy.decode(await store.get_meta(remedy.REMEDIES_KEY))[KB]
        assert left.step is Step.UNKNOWN
        await cycle(after, store, [])
        assert writer.calls == []
    finally:
        await store.close()


async def test_a_403_on_cancel_starts_nothing_and_says_so(tmp_path: Path) -> None:
    store = await open_held(tmp_path / "w.db", NOW)
    try:
        writer = Writer(forbid=True)
        await cycle(Remedies(writer, store, store, POLICY, RULES), store, [stalled()])
        assert writer.calls == ["cancel job-1"]
        (failed,) = remedy.decode(await store.get_meta(remedy.REMEDIES_KEY))[KB]
        assert failed.step is Step.FAILED
        assert "lacks genai:update" in (failed.detail or "")
    finally:
        await store.close()


async def test_a_job_started_just_before_a_crash_does_not_get_attempts_beyond_max_attempts(
    tmp_path: Path,
) -> None:
    store = await open_held(tmp_path / "w.db", NOW)
    try:
        crashing = Writer(crash_after_create=True)  # job-2 started, then kill -9
        with pytest.raises(Crash):
            await cycle(Remedies(crashing, store, store, POLICY, RULES), store, [stalled()])
        assert crashing.calls == ["cancel job-1", f"create {KB}"]
        for _ in range(2):  # the next process, then the one after it: job-2 stalls
            writer = Writer()
            await cycle(Remedies(writer, store, store, POLICY, RULES), store, [stalled("job-2")])
            assert writer.calls == []  # max_attempts = 1 holds across the restarts
        steps = [r.step for r in remedy.decode(await store.get_meta(remedy.REMEDIES_KEY))[KB]]
        assert steps == [Step.UNKNOWN, Step.GAVE_UP]
    finally:
        await store.close()


async def test_a_hung_call_ends_at_the_cycle_deadline_and_is_said_unknown(tmp_path: Path) -> None:
    store = await open_held(tmp_path / "w.db", NOW)
    try:
        writer = Writer(hang=True)
        remedies = Remedies(writer, store, store, POLICY, RULES)
        other = Transition(
            "job-7/stalled/1", EventKind.STALLED, NOW, "kb-2", "wiki", Job("job-7", "kb-2")
        )
        transitions = [stalled(), other]  # two KBs stalled at once
        meta = await remedies.plan(transitions)
        await store.record(Change("c", NOW, transitions=tuple(transitions)), meta=meta)
        until = asyncio.get_running_loop().time() + 0.2
        async with asyncio.timeout(10):  # without the deadline: an hour
            assert await remedies.act("c", NOW, NOW, until) == 2
        assert writer.calls == ["cancel job-1"]  # the second is not sent after the deadline
        records = remedy.decode(await store.get_meta(remedy.REMEDIES_KEY))
        (hung,), (unsent,) = records[KB], records["kb-2"]
        assert (hung.step, hung.detail) == (Step.UNKNOWN, remedy.LATE)
        assert (unsent.step, unsent.detail) == (Step.FAILED, remedy.NOT_SENT)
    finally:
        await store.close()

"""Remediation of a stalled job (`[remediation]`, opt-in): decide, record the intent, report. Pure.

DigitalOcean's own advice for a job that takes too long is to cancel it and start it again.
With `on_stalled = "cancel_and_reindex"` the watcher does that for a `stalled` transition:

- An *incident* is a stall and the reindexes it led to: a stalled job that a remediation started
  belongs to the incident of the job it replaced. Each incident gets at most `max_attempts`
  actions per knowledge base; once they are spent, one `remediated` event says so and nothing
  more is done.
- A stalled job that already has a record is never acted on again (one action per stall).
- The intent is recorded in the store with the cycle that records the stall (one transaction),
  before any write call. An intent still open when a watcher starts means the one before it
  stopped between recording and reporting: the calls may or may not have gone out, so they are
  never repeated; the `remediated` event says the outcome is unknown.
- In dry run the decision is recorded and reported ("would cancel and reindex"), nothing is
  written to the API.

The records live in one meta value (`REMEDIES_KEY`), JSON, the last `KEEP_PER_KB` per KB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum

from watcher.core.model import EventKind, Job
from watcher.core.state import Transition

REMEDIES_KEY = "remediations"
KEEP_PER_KB = 10


class OnStalled(StrEnum):
    """What to do with a stalled job."""

    NOTHING = "nothing"
    CANCEL_AND_REINDEX = "cancel_and_reindex"


@dataclass(frozen=True, slots=True)
class RemedyPolicy:
    """`[remediation]`: off unless `on_stalled` asks; `max_attempts` per KB per incident."""

    on_stalled: OnStalled = OnStalled.NOTHING
    max_attempts: int = 1
    dry_run: bool = False


class Step(StrEnum):
    """Where one remediation stands."""

    INTENT = "intent"  # recorded, the calls not yet reported
    DONE = "done"  # cancelled and a new job started
    PARTLY = "partly"  # one of the two calls did not do its part (see the detail)
    FAILED = "failed"  # neither did
    DRY_RUN = "dry_run"  # decided, not sent
    UNKNOWN = "unknown"  # the watcher stopped during the calls: not repeated
    GAVE_UP = "gave_up"  # max_attempts spent for this incident


@dataclass(frozen=True, slots=True)
class RemedyRecord:
    """One decision about one stalled job: its KB, incident (the first stalled job of the
    chain), attempt number (1..), state, the job it started, and what happened, for people."""

    kb_uuid: str
    incident: str
    attempt: int
    stalled_job: str
    step: Step
    kb_name: str | None = None
    new_job: str | None = None
    detail: str | None = None


class Verdict(StrEnum):
    """Why the watcher acts on a transition, or why not."""

    ACT = "act"
    DRY_RUN = "dry_run"
    OFF = "off"
    NOT_A_STALL = "not_a_stall"
    ALREADY_TRIED = "already_tried"
    EXHAUSTED = "exhausted"


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict with the incident and attempt number it would take."""

    verdict: Verdict
    incident: str | None = None
    attempt: int = 0


def decide(t: Transition, policy: RemedyPolicy, history: Sequence[RemedyRecord]) -> Decision:
    """What to do about transition `t`, given the records of its KB (`history`)."""
    if policy.on_stalled is OnStalled.NOTHING:
        return Decision(Verdict.OFF)
    if t.kind is not EventKind.STALLED or t.job is None or t.kb_uuid is None:
        return Decision(Verdict.NOT_A_STALL)
    job = t.job.uuid
    if any(r.stalled_job == job for r in history):
        return Decision(Verdict.ALREADY_TRIED)
    parent = next((r for r in history if r.new_job == job), None) or _open(history)
    incident = parent.incident if parent is not None else job
    attempts = sum(1 for r in history if r.incident == incident and r.step is not Step.GAVE_UP)
    if attempts >= policy.max_attempts:
        return Decision(Verdict.EXHAUSTED, incident, attempts)
    verdict = Verdict.DRY_RUN if policy.dry_run else Verdict.ACT
    return Decision(verdict, incident, attempts + 1)


def _open(history: Sequence[RemedyRecord]) -> RemedyRecord | None:
    """The KB's latest record when its new job is unknown (a watcher stopped, or a call did not
    answer, after the calls went out): a stall that follows may be of the job it started, so it
    belongs to that incident, and `max_attempts` holds across restarts."""
    last = history[-1] if history else None
    if last is not None and last.step in (Step.INTENT, Step.UNKNOWN) and last.new_job is None:
        return last
    return None


def plan(
    transitions: Sequence[Transition],
    policy: RemedyPolicy,
    records: Mapping[str, tuple[RemedyRecord, ...]],
) -> tuple[RemedyRecord, ...]:
    """The records this cycle adds (intents, dry runs, give-ups), one per stalled job at most."""
    added: list[RemedyRecord] = []
    for t in transitions:
        history = records.get(t.kb_uuid or "", ()) + tuple(
            r for r in added if r.kb_uuid == t.kb_uuid
        )
        d = decide(t, policy, history)
        if d.incident is None or t.job is None or t.kb_uuid is None:
            continue
        step = {Verdict.ACT: Step.INTENT, Verdict.DRY_RUN: Step.DRY_RUN}.get(d.verdict)
        if d.verdict is Verdict.EXHAUSTED:
            if any(r.incident == d.incident and r.step is Step.GAVE_UP for r in history):
                continue  # said once per incident
            step = Step.GAVE_UP
        if step is None:
            continue
        detail = _planned_detail(step, policy, d.attempt)
        added.append(
            RemedyRecord(
                t.kb_uuid, d.incident, d.attempt, t.job.uuid, step, t.kb_name, detail=detail
            )
        )
    return tuple(added)


def _planned_detail(step: Step, policy: RemedyPolicy, attempt: int) -> str | None:
    if step is Step.DRY_RUN:
        return (
            f"Dry run: would cancel the stalled job and start a new one (attempt {attempt} of "
            f"{policy.max_attempts}); nothing was sent (remediation.dry_run = true)."
        )
    if step is Step.GAVE_UP:
        return (
            f"Not acting: the {policy.max_attempts} attempt(s) of remediation.max_attempts "
            "were spent on this incident already. Look at the job in the control panel."
        )
    return None


def merge(
    records: Mapping[str, tuple[RemedyRecord, ...]], added: Sequence[RemedyRecord]
) -> dict[str, tuple[RemedyRecord, ...]]:
    """`records` with `added` in place (same KB and stalled job: replaced), the last
    `KEEP_PER_KB` per KB kept."""
    merged = {kb: list(rs) for kb, rs in records.items()}
    for record in added:
        rows = merged.setdefault(record.kb_uuid, [])
        rows[:] = [r for r in rows if r.stalled_job != record.stalled_job] + [record]
    return {kb: tuple(rows[-KEEP_PER_KB:]) for kb, rows in merged.items()}


LATE = (
    "The write calls did not answer within the cycle's deadline: whether the cancel and the new "
    "job reached DigitalOcean is unknown, and they are not repeated. Check the control panel."
)
NOT_SENT = "Not sent: the cycle's deadline passed before the calls (not repeated)."


def dangling(records: Mapping[str, tuple[RemedyRecord, ...]]) -> tuple[RemedyRecord, ...]:
    """Intents left open by a watcher that stopped during its calls, marked `unknown`."""
    text = (
        "The watcher stopped while acting on this stall: whether the cancel and the new job "
        "reached DigitalOcean is unknown, and they are not repeated. Check the control panel."
    )
    return tuple(
        replace(r, step=Step.UNKNOWN, detail=text)
        for rs in records.values()
        for r in rs
        if r.step is Step.INTENT
    )


def remediated(record: RemedyRecord, at: datetime, api_at: datetime | None) -> Transition:
    """The `remediated` event reporting `record` (its detail says what was done)."""
    return Transition(
        event_id=f"{record.stalled_job}/remediated/{record.attempt}/{record.step.value}",
        kind=EventKind.REMEDIATED,
        at=at,
        kb_uuid=record.kb_uuid,
        kb_name=record.kb_name,
        job=Job(uuid=record.stalled_job, knowledge_base_uuid=record.kb_uuid),
        detail=record.detail,
        api_at=api_at,
    )


def encode(records: Mapping[str, tuple[RemedyRecord, ...]]) -> str:
    """The meta value under `REMEDIES_KEY`."""
    return json.dumps({kb: [asdict(r) for r in rs] for kb, rs in records.items()})


def decode(value: str | None) -> dict[str, tuple[RemedyRecord, ...]]:
    """The records from the meta value (an unreadable value reads as none)."""
    if not value:
        return {}
    try:
        data = json.loads(value)
        return {
            str(kb): tuple(
                RemedyRecord(**{**r, "step": Step(r["step"])}) for r in rs if isinstance(r, dict)
            )
            for kb, rs in data.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


class CallResult(StrEnum):
    """How one write call went."""

    OK = "ok"
    FORBIDDEN = "forbidden"  # 403: the token lacks the scope (the text names it and the source)
    SKIPPED = "skipped"  # create: DigitalOcean skipped it, a job is running on the KB
    ENDED = "ended"  # cancel: the job had already ended
    FAILED = "failed"  # anything else (the text says what)


@dataclass(frozen=True, slots=True)
class Call:
    """One write call's result and its text for people (an error's message, a skip's reason)."""

    result: CallResult
    text: str = ""
    job_uuid: str | None = None  # create: the job DigitalOcean started


def settle(record: RemedyRecord, cancel: Call, start: Call | None) -> RemedyRecord:
    """The record once the calls returned: its step and a detail saying what was done."""
    said = [_cancel_text(cancel)]
    if start is not None:
        said.append(_start_text(start))
    started = start is not None and start.result is CallResult.OK
    cancelled = cancel.result is CallResult.OK
    step = Step.DONE if cancelled and started else Step.PARTLY if cancelled else Step.FAILED
    said.append(f"(attempt {record.attempt} for this incident)")
    return replace(
        record,
        step=step,
        new_job=start.job_uuid if start is not None and started else None,
        detail=" ".join(said),
    )


def _cancel_text(call: Call) -> str:
    match call.result:
        case CallResult.OK:
            return "Cancelled the stalled job."
        case CallResult.FORBIDDEN:
            return f"Could not cancel the stalled job: {call.text}"
        case CallResult.ENDED:
            return "The stalled job had already ended; no new job was started."
        case CallResult.SKIPPED | CallResult.FAILED:
            return f"Cancelling the stalled job failed: {call.text}"


def _start_text(call: Call) -> str:
    match call.result:
        case CallResult.OK:
            return f"Started a new indexing job {call.job_uuid}."
        case CallResult.FORBIDDEN:
            return f"Could not start a new job: {call.text}"
        case CallResult.SKIPPED:
            return (
                "DigitalOcean skipped the new job because a job is still running on this "
                f"knowledge base ({call.text})."
            )
        case CallResult.ENDED | CallResult.FAILED:
            return f"Starting a new job failed: {call.text}"

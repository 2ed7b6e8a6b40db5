"""Scenarios: the knowledge bases of a simulated account and the timeline of what happens.

A scenario is data. The bundled ones live in `watcher/simulator/scenarios/<name>.json`
(`load_scenario("demo")`, in `watcher.simulator.loading`, which also takes a path to a JSON
file of your own); `generated_scenario(n_kbs, busy, seed)` in `watcher.simulator.generate`
builds large ones for benchmarks.

The JSON format (times are seconds relative to the moment the simulator starts, `t = 0`;
negative times lie in the past, so history is just events before zero)::

    {
      "name": "demo",
      "description": "what this scenario shows",
      "on_start": {"pending": 2, "run": 30, "outcome": "completed"},
      "knowledge_bases": [
        {
          "key": "docs",                      # how the timeline refers to it
          "name": "product-docs",             # the name the API reports
          "uuid": "…",                        # optional; derived from name + key if absent
          "region": "tor1",                   # optional
          "created": -2592000,                # optional; when the KB was created
          "data_sources": [{"key": "site", "items": 120}, {"key": "pdfs", "items": 40}],
          "history": [{"ago": 86400, "run": 240, "outcome": "completed"}],
          "schedule": {"next_run": 600, "every": 86400}   # optional; see ScheduleSpec
        }
      ],
      "timeline": [
        {"at": 3, "start_job": {"kb": "docs", "id": "docs-now", "data_sources": ["site"],
                                "pending": 2, "run": 15, "outcome": "partial",
                                "stalls": [{"after": 4, "for": 10}]}},
        {"at": 22, "cancel_job": "docs-now"},
        {"at": 30, "fault": {"kind": "server_error", "status": 503, "count": 3, "for": 10}},
        {"at": 40, "clear_faults": true},
        {"at": 45, "hide_job": {"job": "docs-now", "for": 10}},
        {"at": 60, "delete_kb": "docs"},
        {"at": 70, "disable_schedule": "docs"}
      ]
    }

A job (`start_job`, or an entry of a KB's `history`, which is a `start_job` at `-ago`):
`kb` (key), `id` (optional, for `cancel_job` and for tests), `data_sources` (keys; default
all of the KB's), `pending` seconds before it runs (default 1; `null` = stays pending
forever), `run` seconds of progress it needs (default 30), `outcome` one of `completed`,
`no_changes`, `partial`, `failed`, `error` (phase ERROR), `stalls` (windows `after` seconds
into the run during which counters and `updated_at` freeze, `for` seconds or `null` =
stuck for good; the run is extended by the stall), `tokens_per_item`, `error_msg`,
`error_details`. Only one job is active per KB: a start while another is pending or running
is skipped (as DigitalOcean does) and listed in `Simulator.skipped`. `cancel_job` cancels the
job with that id. `fault` switches a fault on (keys of `watcher.simulator.faults.Fault`:
`kind`, `count`, `path`, `method`, `status`, `retry_after`, `delay`, `phase`,
`job_status`, `drop`; plus `for` seconds after which it switches off). `clear_faults`
switches every fault off. `hide_job` makes the job with that id vanish from every list and
answer 404 for `for` seconds (or for good without `for`), then come back unchanged, as an
eventually consistent read does. `delete_kb` deletes the knowledge base with that key: it
and its jobs vanish from every list and answer 404 from then on (a job it was running is
never seen to end, and `Simulator.transitions()` lists nothing of it after the deletion).
`disable_schedule` turns the KB's schedule off (`is_active` false from then on).
`on_start` is the plan for jobs started through the API (POST). Every finished job has a
per-file report (`is_report_available`), served behind a signed URL on the same port.
"""

from __future__ import annotations

from dataclasses import dataclass

from watcher.simulator.faults import Fault
from watcher.simulator.lifecycle import Outcome, Stall

MONTH = 30 * 86400.0


class ScenarioError(ValueError):
    """A scenario cannot be loaded: unknown name, bad JSON, or an inconsistent timeline."""


@dataclass(frozen=True, slots=True)
class DataSourceSpec:
    """A data source of a knowledge base and how many items it holds."""

    key: str
    items: int = 100
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A KB's indexing schedule: its first run `next_run` seconds from t = 0, then one every
    `every` seconds. It only announces runs (`next_run_at`): jobs come from the timeline, so a
    run without a `start_job` near it is a missed run."""

    next_run: float
    every: float = 86400.0
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    time: str = "03:00:00"


@dataclass(frozen=True, slots=True)
class KbSpec:
    """A knowledge base of the simulated account."""

    key: str
    name: str
    data_sources: tuple[DataSourceSpec, ...]
    uuid: str | None = None
    region: str = "tor1"
    created: float = -MONTH
    schedule: ScheduleSpec | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    """The plan of one job, relative to the moment it starts."""

    kb: str
    id: str | None = None
    data_sources: tuple[str, ...] = ()
    pending: float | None = 1.0
    run: float = 30.0
    outcome: Outcome = Outcome.COMPLETED
    stalls: tuple[Stall, ...] = ()
    tokens_per_item: int = 40
    error_msg: str | None = None
    error_details: str | None = None


@dataclass(frozen=True, slots=True)
class StartDefaults:
    """How a job started through the API (POST) behaves."""

    pending: float | None = 2.0
    run: float = 30.0
    outcome: Outcome = Outcome.COMPLETED


@dataclass(frozen=True, slots=True)
class StartJob:
    job: JobSpec


@dataclass(frozen=True, slots=True)
class CancelJob:
    job_id: str


@dataclass(frozen=True, slots=True)
class InjectFault:
    fault: Fault
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class ClearFaults:
    pass


@dataclass(frozen=True, slots=True)
class HideJob:
    job_id: str
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class DeleteKb:
    kb: str


@dataclass(frozen=True, slots=True)
class DisableSchedule:
    kb: str


Action = StartJob | CancelJob | InjectFault | ClearFaults | HideJob | DeleteKb | DisableSchedule


@dataclass(frozen=True, slots=True)
class Event:
    """One timeline entry: an action at `at` seconds from the start."""

    at: float
    action: Action


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole simulated account; checked for consistency when built."""

    name: str
    knowledge_bases: tuple[KbSpec, ...]
    timeline: tuple[Event, ...] = ()
    description: str = ""
    on_start: StartDefaults = StartDefaults()

    def __post_init__(self) -> None:
        _check(self)


def _check(scenario: Scenario) -> None:
    kbs = {kb.key: kb for kb in scenario.knowledge_bases}
    if len(kbs) != len(scenario.knowledge_bases):
        raise ScenarioError(f"{scenario.name}: knowledge base keys must be unique")
    job_ids: set[str] = set()
    for event in sorted(scenario.timeline, key=lambda e: e.at):
        match event.action:
            case StartJob(job=job):
                _check_job(scenario.name, job, kbs, job_ids)
            case CancelJob(job_id=job_id) | HideJob(job_id=job_id) if job_id not in job_ids:
                raise ScenarioError(f"{scenario.name}: timeline names no earlier job {job_id!r}")
            case DeleteKb(kb=key) if key not in kbs:
                raise ScenarioError(f"{scenario.name}: delete_kb names no knowledge base {key!r}")
            case DisableSchedule(kb=key) if kbs.get(key) is None or kbs[key].schedule is None:
                raise ScenarioError(f"{scenario.name}: disable_schedule names no scheduled KB")
            case _:
                pass


def _check_job(name: str, job: JobSpec, kbs: dict[str, KbSpec], job_ids: set[str]) -> None:
    where = f"{name}: job {job.id or '(unnamed)'}"
    if job.kb not in kbs:
        raise ScenarioError(f"{where}: unknown knowledge base {job.kb!r}")
    known = {ds.key for ds in kbs[job.kb].data_sources}
    if not known:
        raise ScenarioError(f"{where}: knowledge base {job.kb!r} has no data sources")
    if unknown := set(job.data_sources) - known:
        raise ScenarioError(f"{where}: unknown data sources {sorted(unknown)}")
    if job.run <= 0 or (job.pending is not None and job.pending < 0):
        raise ScenarioError(f"{where}: run must be > 0 and pending >= 0")
    ends = [s.after + (s.duration or 0) for s in job.stalls]
    if any(s.after < 0 or (s.duration is not None and s.duration <= 0) for s in job.stalls) or any(
        later.after < end for later, end in zip(job.stalls[1:], ends, strict=False)
    ):
        raise ScenarioError(f"{where}: stalls must be positive, ordered and not overlap")
    if job.id is not None:
        if job.id in job_ids:
            raise ScenarioError(f"{where}: job ids must be unique")
        job_ids.add(job.id)

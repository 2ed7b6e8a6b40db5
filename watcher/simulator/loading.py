"""Loading scenarios: bundled ones by name, your own from a JSON file (format: `scenario`)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from watcher.simulator.faults import fault_from_json
from watcher.simulator.lifecycle import Outcome, Stall
from watcher.simulator.scenario import (
    MONTH,
    CancelJob,
    ClearFaults,
    DataSourceSpec,
    DeleteKb,
    DisableSchedule,
    Event,
    HideJob,
    InjectFault,
    JobSpec,
    KbSpec,
    Scenario,
    ScenarioError,
    ScheduleSpec,
    StartDefaults,
    StartJob,
)


def load_scenario(name: str) -> Scenario:
    """Load a bundled scenario by name, or a scenario file by path (ending in .json)."""
    if name.endswith(".json"):
        path = Path(name)
        if not path.is_file():
            raise ScenarioError(f"scenario file {name!r} does not exist")
        return parse_scenario(_read_json(path.read_text(encoding="utf-8"), name), path.stem)
    bundled = resources.files("watcher.simulator") / "scenarios" / f"{name}.json"
    if not bundled.is_file():
        names = ", ".join(bundled_scenarios())
        raise ScenarioError(f"unknown scenario {name!r}; bundled scenarios: {names}")
    return parse_scenario(_read_json(bundled.read_text(encoding="utf-8"), name), name)


def bundled_scenarios() -> list[str]:
    """The names of the scenarios that ship with the package."""
    folder = resources.files("watcher.simulator") / "scenarios"
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def _read_json(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario {source!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {source!r} must be a JSON object")
    return data


def parse_scenario(data: dict[str, Any], default_name: str) -> Scenario:
    """Turn the JSON form (see the module docstring) into a checked `Scenario`."""
    _only(data, {"name", "description", "on_start", "knowledge_bases", "timeline"}, "scenario")
    name = str(data.get("name", default_name))
    try:
        kbs = tuple(_kb(item) for item in data.get("knowledge_bases", []))
        events = [_event(item) for item in data.get("timeline", [])]
        for item in data.get("knowledge_bases", []):
            events += [_history(item["key"], entry) for entry in item.get("history", [])]
        on_start = StartDefaults(**_job_timing(data.get("on_start", {}), "on_start"))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ScenarioError):
            raise
        raise ScenarioError(f"scenario {name!r}: {exc}") from exc
    timeline = tuple(sorted(events, key=lambda e: e.at))
    return Scenario(name, kbs, timeline, str(data.get("description", "")), on_start)


def _only(data: dict[str, Any], allowed: set[str], where: str) -> None:
    if unknown := set(data) - allowed:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")


def _kb(item: dict[str, Any]) -> KbSpec:
    allowed = {"key", "name", "uuid", "region", "created", "data_sources", "history", "schedule"}
    _only(item, allowed, f"knowledge base {item.get('key')!r}")
    sources = tuple(
        DataSourceSpec(str(ds["key"]), int(ds.get("items", 100)), ds.get("uuid"))
        for ds in item["data_sources"]
    )
    if any(ds.items < 1 for ds in sources):
        raise ScenarioError(f"knowledge base {item['key']!r}: items must be >= 1")
    return KbSpec(
        key=str(item["key"]),
        name=str(item.get("name", item["key"])),
        data_sources=sources,
        uuid=item.get("uuid"),
        region=str(item.get("region", "tor1")),
        created=float(item.get("created", -MONTH)),
        schedule=_schedule(item["schedule"]) if item.get("schedule") else None,
    )


def _schedule(item: dict[str, Any]) -> ScheduleSpec:
    _only(item, {"next_run", "every", "days", "time"}, "schedule")
    spec = ScheduleSpec(float(item["next_run"]), float(item.get("every", 86400.0)))
    if "days" in item:
        spec = ScheduleSpec(spec.next_run, spec.every, tuple(int(d) for d in item["days"]))
    if spec.every <= 0:
        raise ScenarioError("schedule: every must be > 0")
    return spec


def _event(item: dict[str, Any]) -> Event:
    actions = set(item) - {"at"}
    if len(actions) != 1:
        raise ScenarioError(f"timeline entry {item!r} needs 'at' and exactly one action")
    at = float(item["at"])
    match actions.pop():
        case "start_job":
            return Event(at, StartJob(_job(item["start_job"])))
        case "cancel_job":
            return Event(at, CancelJob(str(item["cancel_job"])))
        case "fault":
            duration = item["fault"].get("for")
            return Event(at, InjectFault(fault_from_json(item["fault"]), duration))
        case "clear_faults":
            return Event(at, ClearFaults())
        case "hide_job":
            hide = item["hide_job"]
            duration = None if hide.get("for") is None else float(hide["for"])
            return Event(at, HideJob(str(hide["job"]), duration))
        case "delete_kb":
            return Event(at, DeleteKb(str(item["delete_kb"])))
        case "disable_schedule":
            return Event(at, DisableSchedule(str(item["disable_schedule"])))
        case other:
            raise ScenarioError(f"unknown timeline action {other!r}")


def _history(kb_key: str, entry: dict[str, Any]) -> Event:
    job = dict(entry)
    ago = float(job.pop("ago"))
    job.setdefault("pending", 5.0)
    job.setdefault("run", 120.0)
    return Event(-ago, StartJob(_job({"kb": kb_key, **job})))


_JOB_KEYS = {"kb", "id", "data_sources", "pending", "run", "outcome", "stalls"}
_JOB_KEYS |= {"tokens_per_item", "error_msg", "error_details"}


def _job(item: dict[str, Any]) -> JobSpec:
    _only(item, _JOB_KEYS, f"job {item.get('id')!r}")
    stalls = tuple(
        Stall(float(s["after"]), None if s.get("for") is None else float(s["for"]))
        for s in item.get("stalls", [])
    )
    return JobSpec(
        kb=str(item["kb"]),
        id=item.get("id"),
        data_sources=tuple(item.get("data_sources", ())),
        stalls=stalls,
        tokens_per_item=int(item.get("tokens_per_item", 40)),
        error_msg=item.get("error_msg"),
        error_details=item.get("error_details"),
        **_job_timing(item, f"job {item.get('id')!r}"),
    )


def _job_timing(item: dict[str, Any], where: str) -> dict[str, Any]:
    timing: dict[str, Any] = {}
    if "pending" in item:
        timing["pending"] = None if item["pending"] is None else float(item["pending"])
    if "run" in item:
        timing["run"] = float(item["run"])
    if "outcome" in item:
        try:
            timing["outcome"] = Outcome(item["outcome"])
        except ValueError as exc:
            names = ", ".join(o.value for o in Outcome)
            raise ScenarioError(f"{where}: outcome must be one of {names}") from exc
    return timing

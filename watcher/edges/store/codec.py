"""JSON-compatible dicts for the values the store keeps: jobs, transitions, job states, results.

Pure functions, no I/O. `encode_*` leaves out fields that are None, so the documents stay
small; `decode_*` fills anything missing with the dataclass default and ignores keys it does
not know (a newer watcher may have written them). Datetimes keep their offset through
`isoformat`, so every round trip is exact. A value that cannot be read raises `ValueError`
(the store turns that into its own error).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from watcher.core.clocks import Elapsed
from watcher.core.cost import JobCost
from watcher.core.incident import IncidentNote, Notice
from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Status
from watcher.core.outbox import FailureCause, TargetResult
from watcher.core.state import JobState, OpenProblem, Sighting, StallReason, Transition

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Document = dict[str, Any]
_Decoder = Callable[[Any], Any]
_D = TypeVar("_D", bound="DataclassInstance")
_E = TypeVar("_E", bound=Enum)


def dumps(document: Mapping[str, Any] | list[Any]) -> str:
    """Serialise to compact ASCII JSON with sorted keys (lone surrogates survive as escapes)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def loads(text: str) -> Any:
    """Parse JSON text; raises `ValueError` on anything that is not JSON."""
    return json.loads(text)


def _encode_value(value: Any) -> Any:
    """Turn one field value into its JSON-compatible form."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, DataSourceJob):
        return encode_data_source_job(value)
    if isinstance(value, Job):
        return encode_job(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, IncidentNote | OpenProblem | JobCost):
        return _encode(value)
    if isinstance(value, Sighting):
        return {"first": value.first.encode(), "moved": value.moved.encode()}
    if isinstance(value, tuple):
        return [_encode_value(item) for item in value]
    return value


def _encode(value: DataclassInstance) -> Document:
    """Encode a frozen dataclass field by field, leaving out None values."""
    document: Document = {}
    for spec in fields(value):
        field_value = getattr(value, spec.name)
        if field_value is not None:
            document[spec.name] = _encode_value(field_value)
    return document


def _decode(cls: type[_D], data: Any, decoders: Mapping[str, _Decoder]) -> _D:
    """Build `cls` from a document: known keys through their decoder, missing keys defaulted."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    for spec in fields(cls):
        raw = data.get(spec.name)
        if raw is not None:
            kwargs[spec.name] = decoders.get(spec.name, _same)(raw)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{cls.__name__}: {exc}") from exc


def _same(value: Any) -> Any:
    """The value as stored; text interned, as the API edge interns it (`wire.to_str`), so that
    a job's ids decoded from the store are the very objects of its KB's parsed copy."""
    return sys.intern(value) if type(value) is str else value


def _datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string, got {value!r}")
    return datetime.fromisoformat(value)


def _seconds(value: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected seconds, got {value!r}")
    return timedelta(seconds=value)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value)


def _lenient_enum(cls: type[_E], unknown: _E) -> _Decoder:
    """Decode an enum value, falling back to `unknown` (the raw text is kept beside it)."""

    def decode(value: Any) -> _E:
        try:
            return cls(value)
        except ValueError:
            return unknown

    return decode


def _strict_enum(cls: type[_E]) -> _Decoder:
    """Decode an enum value that has no UNKNOWN member; an unknown one is a `ValueError`."""

    def decode(value: Any) -> _E:
        return cls(value)

    return decode


_DATA_SOURCE_JOB_DECODERS: Mapping[str, _Decoder] = {
    "status": _lenient_enum(DataSourceStatus, DataSourceStatus.UNKNOWN),
    "started_at": _datetime,
    "completed_at": _datetime,
}


def encode_data_source_job(value: DataSourceJob) -> Document:
    """Encode one data source's part of a job."""
    return _encode(value)


def decode_data_source_job(data: Any) -> DataSourceJob:
    """Decode one data source's part of a job."""
    return _decode(DataSourceJob, data, _DATA_SOURCE_JOB_DECODERS)


_JOB_DECODERS: Mapping[str, _Decoder] = {
    "phase": _lenient_enum(Phase, Phase.UNKNOWN),
    "status": _lenient_enum(Status, Status.UNKNOWN),
    "created_at": _datetime,
    "started_at": _datetime,
    "finished_at": _datetime,
    "updated_at": _datetime,
    "data_source_uuids": _strings,
    "data_source_jobs": lambda items: tuple(decode_data_source_job(item) for item in items),
}


def encode_job(value: Job) -> Document:
    """Encode a job as the API last reported it."""
    return _encode(value)


def decode_job(data: Any) -> Job:
    """Decode a job; only `uuid` is required."""
    return _decode(Job, data, _JOB_DECODERS)


_NOTE_DECODERS: Mapping[str, _Decoder] = {
    "since": _datetime,
    "last_kind": _strict_enum(EventKind),
    "duration": _seconds,
    "waited": _seconds,
    "failures": int,
}


def decode_incident_note(data: Any) -> IncidentNote:
    """Decode what an alert tells of its incident; `id`, `failures`, `since`, `last_kind`
    are required."""
    return _decode(IncidentNote, data, _NOTE_DECODERS)


_TRANSITION_DECODERS: Mapping[str, _Decoder] = {
    "incident": decode_incident_note,
    "kind": _strict_enum(EventKind),
    "at": _datetime,
    "job": decode_job,
    "stall_reason": _strict_enum(StallReason),
    "stalled_since": _datetime,
    "corrects": _strict_enum(EventKind),
    "api_at": _datetime,
    "source_names": lambda pairs: tuple((str(p[0]), str(p[1])) for p in pairs),
    "agents": _strings,
    "open_problems": lambda items: tuple(
        _decode(
            OpenProblem,
            item,
            {"problem": _strict_enum(EventKind), "since": _datetime, "acked_at": _datetime},
        )
        for item in items
    ),
    "cost": lambda data: _decode(JobCost, data, {}),
}


def encode_transition(value: Transition) -> Document:
    """Encode a transition (the payload of an event row)."""
    return _encode(value)


def decode_transition(data: Any) -> Transition:
    """Decode a transition; `event_id`, `kind` and `at` are required."""
    return _decode(Transition, data, _TRANSITION_DECODERS)


def encode_sighting(value: Sighting | None) -> str | None:
    """A job's sighting as JSON text (`{"first": [s, boot], "moved": [s, boot]}`), or None."""
    return None if value is None else dumps(_encode_value(value))


def decode_sighting(value: Any) -> Sighting | None:
    """Read a sighting back (JSON text or its parsed form); None when absent or unreadable,
    so that `detect` seeds it afresh rather than the store refusing the row."""
    if isinstance(value, str):
        try:
            value = loads(value)
        except ValueError:
            return None
    if not isinstance(value, Mapping):
        return None
    first, moved = Elapsed.decode(value.get("first")), Elapsed.decode(value.get("moved"))
    return None if first is None or moved is None else Sighting(first, moved)


_JOB_STATE_DECODERS: Mapping[str, _Decoder] = {
    "job": decode_job,
    "sighting": decode_sighting,
    "first_seen_at": _datetime,
    "progress_at": _datetime,
    "deadline": _datetime,
    "stalled": _strict_enum(StallReason),
    "stall_count": int,
    "started_alerted": bool,
    "done": bool,
    "corrections": int,
}


def encode_job_state(value: JobState) -> Document:
    """Encode what the watcher knows of one job."""
    return _encode(value)


def decode_job_state(data: Any) -> JobState:
    """Decode a job state; `job`, `kb_uuid`, `first_seen_at` and `progress_at` are required."""
    return _decode(JobState, data, _JOB_STATE_DECODERS)


def encode_target_results(results: tuple[TargetResult, ...]) -> list[Document]:
    """Encode the per-target results of one delivery attempt."""
    return [_encode(result) for result in results]


def decode_target_results(data: Any) -> tuple[TargetResult, ...]:
    """Decode the per-target results of one delivery attempt."""
    if not isinstance(data, list):
        raise ValueError(f"target results: expected a list, got {type(data).__name__}")
    return tuple(_decode(TargetResult, item, _TARGET_DECODERS) for item in data)


_TARGET_DECODERS: Mapping[str, _Decoder] = {
    # A cause a newer watcher wrote and this one does not know reads as UNKNOWN: retryable.
    "cause": _lenient_enum(FailureCause, FailureCause.UNKNOWN),
    "status": int,
    "sent_chars": int,
}


def encode_notices(notices: tuple[Notice, ...]) -> str:
    """An incident's notices as JSON text: `[{"route", "first": [s, boot], "last": [s, boot],
    "reminders", "escalated"}]`."""
    return dumps(
        [
            {
                "route": n.route,
                "first": n.first.encode(),
                "last": n.last.encode(),
                "reminders": n.reminders,
                "escalated": n.escalated,
            }
            for n in notices
        ]
    )


def decode_notices(text: str) -> tuple[Notice, ...]:
    """Read notices back; one with an unreadable reading is dropped (its route is then not
    reminded of that incident: never a burst from a damaged row)."""
    items = loads(text)
    if not isinstance(items, list):
        raise ValueError(f"notices: expected a list, got {type(items).__name__}")
    notices = []
    for item in items:
        first, last = Elapsed.decode(item.get("first")), Elapsed.decode(item.get("last"))
        if first is None or last is None or not isinstance(item.get("route"), str):
            continue
        reminders = int(item.get("reminders", 0))
        notices.append(Notice(item["route"], first, last, reminders, bool(item.get("escalated"))))
    return tuple(notices)

"""The domain vocabulary: frozen values that every part of the watcher speaks.

Everything here is pure data. The API's strings are parsed into these enums at the edge
(`watcher.edges.api.wire`); a value the enum does not know becomes `UNKNOWN`, and the raw
string is kept beside it so that nothing is lost and nothing crashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum


class Phase(StrEnum):
    """The generic batch lifecycle of a job (`apiBatchJobPhase`)."""

    UNKNOWN = "BATCH_JOB_PHASE_UNKNOWN"
    PENDING = "BATCH_JOB_PHASE_PENDING"
    RUNNING = "BATCH_JOB_PHASE_RUNNING"
    SUCCEEDED = "BATCH_JOB_PHASE_SUCCEEDED"
    FAILED = "BATCH_JOB_PHASE_FAILED"
    ERROR = "BATCH_JOB_PHASE_ERROR"
    CANCELLED = "BATCH_JOB_PHASE_CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_PHASES


_TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.ERROR, Phase.CANCELLED})


class Status(StrEnum):
    """The outcome of a job (`apiIndexJobStatus`); the only place PARTIAL and NO_CHANGES appear."""

    UNKNOWN = "INDEX_JOB_STATUS_UNKNOWN"
    PENDING = "INDEX_JOB_STATUS_PENDING"
    IN_PROGRESS = "INDEX_JOB_STATUS_IN_PROGRESS"
    COMPLETED = "INDEX_JOB_STATUS_COMPLETED"
    PARTIAL = "INDEX_JOB_STATUS_PARTIAL"
    NO_CHANGES = "INDEX_JOB_STATUS_NO_CHANGES"
    FAILED = "INDEX_JOB_STATUS_FAILED"
    CANCELLED = "INDEX_JOB_STATUS_CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_STATUSES


_TERMINAL_STATUSES = frozenset(
    {Status.COMPLETED, Status.PARTIAL, Status.NO_CHANGES, Status.FAILED, Status.CANCELLED}
)


class DataSourceStatus(StrEnum):
    """The outcome of one data source within a job (`apiIndexedDataSourceStatus`)."""

    UNKNOWN = "DATA_SOURCE_STATUS_UNKNOWN"
    IN_PROGRESS = "DATA_SOURCE_STATUS_IN_PROGRESS"
    UPDATED = "DATA_SOURCE_STATUS_UPDATED"
    PARTIALLY_UPDATED = "DATA_SOURCE_STATUS_PARTIALLY_UPDATED"
    NOT_UPDATED = "DATA_SOURCE_STATUS_NOT_UPDATED"
    FAILED = "DATA_SOURCE_STATUS_FAILED"
    CANCELLED = "DATA_SOURCE_STATUS_CANCELLED"


class EventKind(StrEnum):
    """The events of the contract: the words in a route's `events =`, in alerts and in the store."""

    STARTED = "started"
    COMPLETED = "completed"
    NO_CHANGES = "no_changes"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    STALLED = "stalled"
    RECOVERED = "recovered"
    CORRECTED = "corrected"  # an alerted outcome that a newer answer contradicts
    API_UNREACHABLE = "api_unreachable"
    API_RECOVERED = "api_recovered"
    DELIVERY_FAILING = "delivery_failing"
    DELIVERY_RECOVERED = "delivery_recovered"
    KNOWLEDGE_BASE_MISSING = "knowledge_base_missing"
    KNOWLEDGE_BASE_FOUND = "knowledge_base_found"
    SILENCE_ENDED = "silence_ended"  # a silence ended: the problems it hid that are still open
    SCHEDULE_MISSED = "schedule_missed"  # a scheduled run passed its grace with no new job
    SCHEDULE_DISABLED = "schedule_disabled"  # a KB's indexing schedule was turned off
    STALE = "stale"  # no completed or no_changes job finished within `fresh_within`
    FRESH = "fresh"  # a stale KB has a completed or no_changes job again
    REMINDER = "reminder"  # an open incident, again (a route's `repeat_after`)
    ESCALATED = "escalated"  # an incident not acknowledged in time (`escalate_after`)
    COST_SPIKE = "cost_spike"  # a job cost over N times its KB's recent median
    REMEDIATED = "remediated"  # the watcher cancelled and restarted a stalled job (or would have)
    DIGEST = "digest"  # a route's scheduled summary (`digest =`), never asked for in `events`

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_EVENTS

    @property
    def is_about_a_job(self) -> bool:
        """Whether the event is about an indexing job (not the API, the setup or an incident)."""
        return self not in _WATCHER_EVENTS and self not in INCIDENT_EVENTS

    @property
    def severity(self) -> Severity:
        return _SEVERITY[self]


TERMINAL_EVENTS = frozenset(
    {
        EventKind.COMPLETED,
        EventKind.NO_CHANGES,
        EventKind.PARTIAL,
        EventKind.FAILED,
        EventKind.CANCELLED,
    }
)


_WATCHER_EVENTS = frozenset(
    {
        EventKind.API_UNREACHABLE,
        EventKind.API_RECOVERED,
        EventKind.KNOWLEDGE_BASE_MISSING,
        EventKind.KNOWLEDGE_BASE_FOUND,
        EventKind.DELIVERY_FAILING,
        EventKind.DELIVERY_RECOVERED,
        EventKind.SILENCE_ENDED,
        EventKind.SCHEDULE_MISSED,
        EventKind.SCHEDULE_DISABLED,
        EventKind.STALE,
        EventKind.FRESH,
        EventKind.DIGEST,
    }
)


# Events about a knowledge base's incident (`watcher.core.incidents`), sent to the routes that
# heard of it (or to the route it escalates to), never chosen by a route's `events =`.
INCIDENT_EVENTS = frozenset({EventKind.REMINDER, EventKind.ESCALATED})


class Severity(Enum):
    """How bad an event is; maps one to one onto apprise's notify types."""

    SUCCESS = "success"
    INFO = "info"
    WARNING = "warning"
    FAILURE = "failure"


_SEVERITY = {
    EventKind.STARTED: Severity.INFO,
    EventKind.COMPLETED: Severity.SUCCESS,
    EventKind.NO_CHANGES: Severity.INFO,
    EventKind.PARTIAL: Severity.WARNING,
    EventKind.FAILED: Severity.FAILURE,
    EventKind.CANCELLED: Severity.WARNING,
    EventKind.STALLED: Severity.WARNING,
    EventKind.RECOVERED: Severity.SUCCESS,
    EventKind.CORRECTED: Severity.WARNING,
    EventKind.API_UNREACHABLE: Severity.FAILURE,
    EventKind.API_RECOVERED: Severity.SUCCESS,
    EventKind.DELIVERY_FAILING: Severity.FAILURE,
    EventKind.DELIVERY_RECOVERED: Severity.SUCCESS,
    EventKind.KNOWLEDGE_BASE_MISSING: Severity.WARNING,
    EventKind.KNOWLEDGE_BASE_FOUND: Severity.SUCCESS,
    EventKind.SILENCE_ENDED: Severity.WARNING,
    EventKind.SCHEDULE_MISSED: Severity.WARNING,
    EventKind.SCHEDULE_DISABLED: Severity.WARNING,
    EventKind.STALE: Severity.WARNING,
    EventKind.FRESH: Severity.SUCCESS,
    EventKind.REMINDER: Severity.WARNING,  # rendered with the severity of the incident's failure
    EventKind.ESCALATED: Severity.FAILURE,
    EventKind.COST_SPIKE: Severity.WARNING,
    EventKind.REMEDIATED: Severity.WARNING,
    EventKind.DIGEST: Severity.INFO,
}


@dataclass(frozen=True, slots=True)
class DataSourceJob:
    """One data source's part in an indexing job (`apiIndexedDataSource`); counters are ints."""

    data_source_uuid: str | None = None
    status: DataSourceStatus = DataSourceStatus.UNKNOWN
    status_raw: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    indexed_item_count: int | None = None
    failed_item_count: int | None = None
    skipped_item_count: int | None = None
    removed_item_count: int | None = None
    indexed_file_count: int | None = None
    total_file_count: int | None = None
    total_bytes: int | None = None
    total_bytes_indexed: int | None = None
    error_msg: str | None = None
    error_details: str | None = None

    @property
    def status_text(self) -> str:
        """The status as the API wrote it (the raw string when the enum does not know it)."""
        return self.status_raw or self.status.value


@dataclass(frozen=True, slots=True)
class Job:
    """One indexing job as the API reported it (`apiIndexingJob`); every field may be missing.

    `phase_raw` / `status_raw` hold the API's string only when the enum does not know it.
    """

    uuid: str
    knowledge_base_uuid: str | None = None
    phase: Phase = Phase.UNKNOWN
    phase_raw: str | None = None
    status: Status = Status.UNKNOWN
    status_raw: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    completed_datasources: int | None = None
    total_datasources: int | None = None
    total_tokens: int | None = None
    tokens: int | None = None
    is_report_available: bool | None = None
    data_source_uuids: tuple[str, ...] = ()
    data_source_jobs: tuple[DataSourceJob, ...] = ()
    total_items_indexed: int | None = None
    total_items_failed: int | None = None
    total_items_skipped: int | None = None
    total_items_removed: int | None = None

    @property
    def phase_text(self) -> str:
        """The phase as the API wrote it (the raw string when the enum does not know it)."""
        return self.phase_raw or self.phase.value

    @property
    def status_text(self) -> str:
        """The status as the API wrote it (the raw string when the enum does not know it)."""
        return self.status_raw or self.status.value

    @property
    def unknown_values(self) -> frozenset[str]:
        """Every enum string in the job (phase, status, data-source statuses) nobody knows yet."""
        raws = {self.phase_raw, self.status_raw, *(ds.status_raw for ds in self.data_source_jobs)}
        return frozenset(raw for raw in raws if raw is not None)

    @property
    def is_terminal(self) -> bool:
        """Whether either state field says the job is over (unknown values never do)."""
        return self.status.is_terminal or self.phase.is_terminal

    @property
    def is_pending(self) -> bool:
        if self.is_terminal:
            return False
        return self.status is Status.PENDING or (
            self.phase is Phase.PENDING and self.status is not Status.IN_PROGRESS
        )

    @property
    def is_running(self) -> bool:
        if self.is_terminal:
            return False
        return self.status is Status.IN_PROGRESS or self.phase is Phase.RUNNING

    @property
    def outcome(self) -> EventKind | None:
        """The terminal event this job ended with, or None while it is not over.

        `status` decides between completed / no_changes / partial; phase ERROR is a failure;
        either CANCELLED means cancelled. A terminal phase with an unknown status falls back
        on the phase.
        """
        if self.status is Status.CANCELLED or self.phase is Phase.CANCELLED:
            return EventKind.CANCELLED
        match self.status:
            case Status.FAILED:
                return EventKind.FAILED
            case Status.PARTIAL:
                return EventKind.PARTIAL
            case Status.NO_CHANGES:
                return EventKind.NO_CHANGES
            case Status.COMPLETED if self.phase not in (Phase.FAILED, Phase.ERROR):
                return EventKind.COMPLETED
            case _:
                pass
        match self.phase:
            case Phase.FAILED | Phase.ERROR:
                return EventKind.FAILED
            case Phase.SUCCEEDED:
                return EventKind.COMPLETED
            case _:
                return None

    @property
    def items_failed(self) -> int:
        """Failed items across data sources (or the historical job-level total)."""
        total = sum(ds.failed_item_count or 0 for ds in self.data_source_jobs)
        return total or (self.total_items_failed or 0)

    @property
    def items_indexed(self) -> int:
        total = sum(ds.indexed_item_count or 0 for ds in self.data_source_jobs)
        return total or (self.total_items_indexed or 0)

    @property
    def items_skipped(self) -> int:
        total = sum(ds.skipped_item_count or 0 for ds in self.data_source_jobs)
        return total or (self.total_items_skipped or 0)


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """One knowledge base (`apiKnowledgeBase`) with the latest job the API reports for it."""

    uuid: str
    name: str | None = None
    region: str | None = None
    project_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_indexing_job: Job | None = None
    embedding_model_uuid: str | None = None  # the model its cost is priced by


@dataclass(frozen=True, slots=True)
class ApiError:
    """The error body every non-2xx DigitalOcean answer carries."""

    id: str | None = None
    message: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The rate-limit headers of one answer (any may be missing)."""

    limit: int | None = None
    remaining: int | None = None
    reset: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class WatchedKb:
    """A knowledge base the configuration asks to watch (uuid, optional display name)."""

    uuid: str
    name: str | None = None

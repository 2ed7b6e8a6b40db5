"""The JSON codec: exact round trips, tolerant loading, strict where a value has no fallback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.core.clocks import Elapsed
from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Status
from watcher.core.outbox import FailureCause, FailureKind, TargetResult
from watcher.core.state import JobState, Sighting, StallReason, Transition
from watcher.edges.store import codec

NOW = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)

offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
maybe_moments = st.none() | moments
texts = st.text(max_size=20)
counts = st.none() | st.integers(min_value=-(2**40), max_value=2**40)

data_source_jobs = st.builds(
    DataSourceJob,
    data_source_uuid=st.none() | texts,
    status=st.sampled_from(DataSourceStatus),
    status_raw=st.none() | texts,
    started_at=maybe_moments,
    completed_at=maybe_moments,
    indexed_item_count=counts,
    failed_item_count=counts,
    error_msg=st.none() | texts,
)
jobs = st.builds(
    Job,
    uuid=texts,
    knowledge_base_uuid=st.none() | texts,
    phase=st.sampled_from(Phase),
    phase_raw=st.none() | texts,
    status=st.sampled_from(Status),
    status_raw=st.none() | texts,
    created_at=maybe_moments,
    started_at=maybe_moments,
    finished_at=maybe_moments,
    updated_at=maybe_moments,
    completed_datasources=counts,
    total_datasources=counts,
    total_tokens=counts,
    tokens=counts,
    is_report_available=st.none() | st.booleans(),
    data_source_uuids=st.lists(texts, max_size=3).map(tuple),
    data_source_jobs=st.lists(data_source_jobs, max_size=3).map(tuple),
    total_items_failed=counts,
)
transitions = st.builds(
    Transition,
    event_id=texts,
    kind=st.sampled_from(EventKind),
    at=moments,
    kb_uuid=st.none() | texts,
    kb_name=st.none() | texts,
    job=st.none() | jobs,
    stall_reason=st.none() | st.sampled_from(StallReason),
    detail=st.none() | texts,
)
job_states = st.builds(
    JobState,
    job=jobs,
    kb_uuid=texts,
    first_seen_at=moments,
    progress_at=moments,
    deadline=maybe_moments,
    stalled=st.none() | st.sampled_from(StallReason),
    stall_count=st.integers(min_value=0, max_value=1000),
    started_alerted=st.booleans(),
    done=st.booleans(),
)


def through_json(document: object) -> object:
    """What a document looks like after being stored as text and read back."""
    return codec.loads(codec.dumps(document))  # type: ignore[arg-type]


@given(jobs)
def test_any_job_round_trips_exactly_through_json(job: Job) -> None:
    assert codec.decode_job(through_json(codec.encode_job(job))) == job


@given(transitions)
def test_any_transition_round_trips_exactly_through_json(transition: Transition) -> None:
    decoded = codec.decode_transition(through_json(codec.encode_transition(transition)))
    assert decoded == transition


@given(job_states)
def test_any_job_state_round_trips_exactly_through_json(state: JobState) -> None:
    assert codec.decode_job_state(through_json(codec.encode_job_state(state))) == state


def full_job() -> Job:
    """A job with every field set to something other than its default."""
    source = DataSourceJob(
        data_source_uuid="ds-1",
        status=DataSourceStatus.PARTIALLY_UPDATED,
        status_raw="DATA_SOURCE_STATUS_NEW",
        started_at=NOW,
        completed_at=NOW + timedelta(minutes=1),
        indexed_item_count=10,
        failed_item_count=2,
        skipped_item_count=1,
        removed_item_count=0,
        indexed_file_count=9,
        total_file_count=12,
        total_bytes=4096,
        total_bytes_indexed=2048,
        error_msg="boom",
        error_details="trace",
    )
    return Job(
        uuid="job-1",
        knowledge_base_uuid="kb-1",
        phase=Phase.FAILED,
        phase_raw="BATCH_JOB_PHASE_FAILED",
        status=Status.PARTIAL,
        status_raw="INDEX_JOB_STATUS_PARTIAL",
        created_at=NOW - timedelta(hours=1),
        started_at=NOW - timedelta(minutes=50),
        finished_at=NOW,
        updated_at=NOW,
        completed_datasources=1,
        total_datasources=2,
        total_tokens=1000,
        tokens=900,
        is_report_available=False,
        data_source_uuids=("ds-1", "ds-2"),
        data_source_jobs=(source, DataSourceJob()),
        total_items_indexed=10,
        total_items_failed=2,
        total_items_skipped=1,
        total_items_removed=0,
    )


def test_a_job_with_every_field_set_round_trips_with_nothing_lost() -> None:
    job = full_job()
    document = codec.encode_job(job)
    assert codec.decode_job(through_json(document)) == job
    assert document["phase"] == "BATCH_JOB_PHASE_FAILED"
    assert document["created_at"] == "2026-11-28T11:00:00.123456+00:00"


def test_a_job_with_only_defaults_encodes_to_its_set_fields_and_back() -> None:
    job = Job(uuid="job-1")
    document = codec.encode_job(job)
    assert document == {
        "uuid": "job-1",
        "phase": "BATCH_JOB_PHASE_UNKNOWN",
        "status": "INDEX_JOB_STATUS_UNKNOWN",
        "data_source_uuids": [],
        "data_source_jobs": [],
    }
    assert codec.decode_job(document) == job


def test_a_transition_and_a_job_state_with_every_field_set_round_trip() -> None:
    transition = Transition(
        event_id="job-1/stalled/1",
        kind=EventKind.STALLED,
        at=NOW,
        kb_uuid="kb-1",
        kb_name="docs",
        job=full_job(),
        stall_reason=StallReason.NO_PROGRESS,
        detail="no progress for 30m",
    )
    state = JobState(
        job=full_job(),
        kb_uuid="kb-1",
        first_seen_at=NOW - timedelta(hours=1),
        progress_at=NOW - timedelta(minutes=31),
        deadline=NOW + timedelta(hours=5),
        stalled=StallReason.MAX_RUNTIME,
        stall_count=2,
        started_alerted=True,
        done=True,
    )
    assert codec.decode_transition(through_json(codec.encode_transition(transition))) == transition
    assert codec.decode_job_state(through_json(codec.encode_job_state(state))) == state


def test_missing_keys_load_as_the_defaults() -> None:
    state = codec.decode_job_state(
        {
            "job": {"uuid": "job-1"},
            "kb_uuid": "kb-1",
            "first_seen_at": NOW.isoformat(),
            "progress_at": NOW.isoformat(),
        }
    )
    assert state == JobState(
        job=Job(uuid="job-1"), kb_uuid="kb-1", first_seen_at=NOW, progress_at=NOW
    )


def test_keys_a_newer_watcher_added_are_ignored_on_load() -> None:
    assert codec.decode_job({"uuid": "job-1", "colour": "blue"}) == Job(uuid="job-1")


def test_an_enum_text_nobody_knows_loads_as_unknown_where_the_enum_has_one() -> None:
    job = codec.decode_job({"uuid": "job-1", "phase": "BATCH_JOB_PHASE_PAUSED"})
    assert job.phase is Phase.UNKNOWN


@pytest.mark.parametrize(
    "document",
    [
        # no kind: an event without its kind is meaningless
        {"event_id": "e", "at": NOW.isoformat()},
        # a kind no version of the contract has
        {"event_id": "e", "kind": "exploded", "at": NOW.isoformat()},
        # a time that is not ISO-8601 text
        {"event_id": "e", "kind": "failed", "at": 12},
        # not an object at all
        ["e", "failed"],
    ],
)
def test_a_transition_that_cannot_be_read_is_a_value_error(document: object) -> None:
    with pytest.raises(ValueError):
        codec.decode_transition(document)


def test_target_results_round_trip() -> None:
    results = (
        TargetResult(name="Slack", url="slack://T…/#ops", ok=False, detail="HTTP 500"),
        TargetResult(name="JSON", url="json://127.0.0.1/", ok=True),
    )
    assert codec.decode_target_results(through_json(codec.encode_target_results(results))) == (
        results
    )


def test_dumps_is_stable_ascii_even_for_lone_surrogates() -> None:
    text = codec.dumps({"b": "\ud800é", "a": 1})
    assert text == '{"a":1,"b":"\\ud800\\u00e9"}'
    assert text.isascii()
    assert json.loads(text) == {"a": 1, "b": "\ud800é"}


def test_a_sighting_round_trips_through_its_json_text() -> None:
    sighting = Sighting(first=Elapsed(12.5, "boot-1"), moved=Elapsed(-3.0, "boot-1"))
    text = codec.encode_sighting(sighting)
    assert text == '{"first":[12.5,"boot-1"],"moved":[-3.0,"boot-1"]}'
    assert codec.decode_sighting(text) == sighting
    assert codec.decode_sighting(codec.loads(text)) == sighting  # the parsed form reads too
    assert codec.encode_sighting(None) is None


@pytest.mark.parametrize(
    "stored",
    [
        None,  # a row of an older store: no sighting yet
        "not json",
        '{"first": [1, "b"]}',  # half of one
        '{"first": [1, "b"], "moved": ["1", "b"]}',  # seconds as text
        '{"first": [true, "b"], "moved": [1, "b"]}',  # a boolean is no number of seconds
        "[1, 2]",
    ],
)
def test_an_unreadable_sighting_is_none_so_detection_seeds_it_afresh(stored: object) -> None:
    """A damaged sighting only costs a late stall alert: the row is never refused for it."""
    assert codec.decode_sighting(stored) is None


def test_a_stall_reason_nobody_knows_is_a_value_error_not_a_silent_default() -> None:
    """There is no safe fallback for a stall reason: guessing one would misreport the stall."""
    document = codec.encode_job_state(
        JobState(Job(uuid="job-1"), "kb-1", NOW, NOW, stalled=StallReason.NO_PROGRESS)
    )
    document["stalled"] = "bored"
    with pytest.raises(ValueError):
        codec.decode_job_state(document)


def test_a_failure_cause_a_newer_watcher_wrote_reads_as_unknown_and_retryable() -> None:
    [result] = codec.decode_target_results(
        [{"name": "X", "url": "json://h/", "ok": False, "cause": "melted", "status": 599}]
    )
    assert result.cause is FailureCause.UNKNOWN
    assert result.cause.kind is FailureKind.RETRYABLE
    assert result.status == 599


def test_target_results_that_are_not_a_list_are_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected a list"):
        codec.decode_target_results({"name": "X"})


def test_jobs_and_readings_decoded_from_separate_rows_share_their_repeated_text() -> None:
    """A job's ids and a sighting's boot id, read back from two rows, are one object each
    (the rows' texts are separate strings): a store of many jobs holds each id once."""
    job = Job(uuid="j-1", knowledge_base_uuid="kb-1", data_source_uuids=("ds-1",))
    text = codec.dumps(codec.encode_job(job))
    first, again = codec.decode_job(json.loads(text)), codec.decode_job(json.loads(text))
    assert first == again
    assert first.knowledge_base_uuid is again.knowledge_base_uuid
    assert first.uuid is again.uuid
    sighting = Sighting(Elapsed(1.0, "boot-1"), Elapsed(2.0, "boot-1"))
    stored = codec.encode_sighting(sighting)
    one, other = codec.decode_sighting(stored), codec.decode_sighting(stored)
    assert one is not None and other is not None
    assert one.first.boot is other.first.boot is other.moved.boot


def test_a_stored_time_read_twice_is_one_object() -> None:
    from watcher.edges.store import schema

    text = schema.to_db(NOW)
    assert schema.from_db(text) == NOW
    assert schema.from_db("".join(text)) is schema.from_db(text[:4] + text[4:])

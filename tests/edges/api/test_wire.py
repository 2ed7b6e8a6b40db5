"""Tolerant parsing of API JSON into domain values: every field optional, nothing crashes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watcher.core.errors import MalformedResponse
from watcher.core.model import (
    ApiError,
    DataSourceStatus,
    Job,
    Phase,
    RateLimit,
    Status,
)
from watcher.edges.api import wire
from watcher.edges.api.wire import SkippedItem

JOB_UUID = "5f8e3c1a-0000-4000-8000-000000000001"
KB_UUID = "9f3c0000-0000-4000-8000-00000000000a"


def job_obj(**fields: Any) -> dict[str, Any]:
    """A minimal job object with a uuid, plus the given fields."""
    return {"uuid": JOB_UUID, **fields}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12345", 12345),  # the spec's uint64-as-string
        (" 42 ", 42),  # stray whitespace
        (7, 7),  # a real int also works
        (3.0, 3),  # an integral float
        ("18446744073709551615", 18446744073709551615),  # the uint64 maximum
        ("12.0", 12),  # an integral decimal string
        ("12.5", None),  # not an integer
        ("", None),  # empty string
        ("n/a", None),  # garbage
        (None, None),  # missing
        (True, None),  # a JSON boolean is not a count
        ([1], None),  # wrong type
        ({"v": 1}, None),  # wrong type
    ],
)
def test_counters_parse_strings_and_ints_and_turn_garbage_into_none(
    value: object, expected: int | None
) -> None:
    """`total_tokens` and friends accept strings and ints; anything else becomes None."""
    assert wire.parse_job(job_obj(total_tokens=value)).total_tokens == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-01T10:20:30Z", datetime(2025, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2025-03-01T10:20:30.123Z", datetime(2025, 3, 1, 10, 20, 30, 123000, tzinfo=UTC)),
        # Go's RFC3339Nano: nine digits of fraction
        ("2025-03-01T10:20:30.123456789Z", datetime(2025, 3, 1, 10, 20, 30, 123456, tzinfo=UTC)),
        # an offset is converted to UTC
        ("2025-03-01T12:20:30+02:00", datetime(2025, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2025-03-01T10:20:30.5-01:30", datetime(2025, 3, 1, 11, 50, 30, 500000, tzinfo=UTC)),
        # no zone at all is taken as UTC
        ("2025-03-01T10:20:30", datetime(2025, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2025-03-01t10:20:30z", datetime(2025, 3, 1, 10, 20, 30, tzinfo=UTC)),  # lower case
        ("0001-01-01T00:00:00Z", None),  # the API's "unset"
        ("0001-01-01T00:00:00.000Z", None),  # "unset" with a fraction
        ("0001-01-01T00:00:00+01:00", None),  # "unset" that would underflow in UTC
        ("", None),
        ("yesterday", None),
        (1700000000, None),  # a number is not RFC 3339
        (None, None),
    ],
)
def test_timestamps_become_aware_utc_and_the_zero_time_is_none(
    value: object, expected: datetime | None
) -> None:
    """RFC 3339 with or without fraction, `Z` or offset becomes aware UTC; unset becomes None."""
    parsed = wire.parse_job(job_obj(updated_at=value)).updated_at
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("raw", "phase", "phase_raw"),
    [
        ("BATCH_JOB_PHASE_RUNNING", Phase.RUNNING, None),  # known
        ("batch_job_phase_running", Phase.RUNNING, None),  # known, odd case
        ("BATCH_JOB_PHASE_UNKNOWN", Phase.UNKNOWN, None),  # the spec's own UNKNOWN
        ("BATCH_JOB_PHASE_COMPLETED", Phase.UNKNOWN, "BATCH_JOB_PHASE_COMPLETED"),  # Go fixture
        ("SOMETHING_NEW", Phase.UNKNOWN, "SOMETHING_NEW"),  # future value
        (17, Phase.UNKNOWN, "17"),  # wrong type is kept as text
        (None, Phase.UNKNOWN, None),  # missing
    ],
)
def test_phase_strings_map_to_the_enum_and_unknown_ones_keep_the_raw_text(
    raw: object, phase: Phase, phase_raw: str | None
) -> None:
    """An unknown phase becomes UNKNOWN with the raw string kept, never an exception."""
    job = wire.parse_job(job_obj(phase=raw))
    assert (job.phase, job.phase_raw) == (phase, phase_raw)


def test_unknown_status_is_kept_raw_and_makes_the_job_non_terminal() -> None:
    """A future status value is preserved and never reads as the end of the job."""
    job = wire.parse_job(job_obj(status="INDEX_JOB_STATUS_QUEUED", phase="BATCH_JOB_PHASE_FUNKY"))
    assert job.status is Status.UNKNOWN
    assert job.status_raw == "INDEX_JOB_STATUS_QUEUED"
    assert not job.is_terminal
    assert wire.unknown_values(job) == {"INDEX_JOB_STATUS_QUEUED", "BATCH_JOB_PHASE_FUNKY"}


def test_unknown_values_collects_data_source_statuses_too() -> None:
    """`unknown_values` reports unknown data-source statuses as well as job fields."""
    job = wire.parse_job(
        job_obj(
            status="INDEX_JOB_STATUS_COMPLETED",
            data_source_jobs=[
                {"status": "DATA_SOURCE_STATUS_UPDATED"},
                {"status": "DATA_SOURCE_STATUS_REVIEWING"},
            ],
        )
    )
    assert job.data_source_jobs[0].status is DataSourceStatus.UPDATED
    assert job.data_source_jobs[1].status is DataSourceStatus.UNKNOWN
    assert wire.unknown_values(job) == {"DATA_SOURCE_STATUS_REVIEWING"}


def test_a_known_job_reports_no_unknown_values() -> None:
    """A job with only known enum strings has nothing to report."""
    job = wire.parse_job(
        job_obj(phase="BATCH_JOB_PHASE_SUCCEEDED", status="INDEX_JOB_STATUS_PARTIAL")
    )
    assert wire.unknown_values(job) == set()
    assert job.is_terminal


def test_a_full_job_object_is_parsed_field_by_field() -> None:
    """Every documented field (and the historical totals) lands in the right place."""
    job = wire.parse_job(
        {
            "uuid": JOB_UUID,
            "knowledge_base_uuid": KB_UUID,
            "phase": "BATCH_JOB_PHASE_RUNNING",
            "status": "INDEX_JOB_STATUS_IN_PROGRESS",
            "created_at": "2025-03-01T10:00:00Z",
            "started_at": "2025-03-01T10:00:05Z",
            "finished_at": "0001-01-01T00:00:00Z",
            "completed_datasources": 1,
            "total_datasources": 3,
            "total_tokens": "9001",
            "tokens": 12,
            "is_report_available": False,
            "data_source_uuids": ["ds-1", "ds-2", 3, ""],
            "data_source_jobs": [
                {
                    "data_source_uuid": "ds-1",
                    "status": "DATA_SOURCE_STATUS_PARTIALLY_UPDATED",
                    "indexed_item_count": "10",
                    "failed_item_count": "2",
                    "skipped_item_count": "1",
                    "removed_item_count": "0",
                    "indexed_file_count": "10",
                    "total_file_count": "13",
                    "total_bytes": "2048",
                    "total_bytes_indexed": "1024",
                    "error_msg": "PARSE_ERROR",
                    "error_details": "two files could not be parsed",
                    "completed_at": "2025-03-01T10:05:00Z",
                },
                "not an object",
            ],
            "total_items_indexed": "10",
            "total_items_failed": "2",
            "total_items_skipped": "1",
            "total_items_removed": "0",
            "some_future_field": {"nested": True},
        }
    )
    assert job.knowledge_base_uuid == KB_UUID
    assert job.is_running and not job.is_terminal
    assert job.finished_at is None
    assert (job.completed_datasources, job.total_datasources) == (1, 3)
    assert (job.total_tokens, job.tokens, job.is_report_available) == (9001, 12, False)
    assert job.data_source_uuids == ("ds-1", "ds-2")
    assert len(job.data_source_jobs) == 1
    ds = job.data_source_jobs[0]
    assert ds.status is DataSourceStatus.PARTIALLY_UPDATED and ds.status_raw is None
    assert (ds.indexed_item_count, ds.failed_item_count, ds.skipped_item_count) == (10, 2, 1)
    assert (ds.total_file_count, ds.total_bytes, ds.total_bytes_indexed) == (13, 2048, 1024)
    assert (ds.error_msg, ds.error_details) == ("PARSE_ERROR", "two files could not be parsed")
    assert ds.completed_at == datetime(2025, 3, 1, 10, 5, tzinfo=UTC)
    assert (job.total_items_indexed, job.total_items_failed) == (10, 2)
    assert (job.total_items_skipped, job.total_items_removed) == (1, 0)
    assert job.items_failed == 2


def test_a_job_with_nothing_but_a_uuid_is_a_job_with_every_field_unset() -> None:
    """Every field is optional: a bare uuid gives the model's defaults."""
    assert wire.parse_job({"uuid": JOB_UUID}) == Job(uuid=JOB_UUID)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"phase": "BATCH_JOB_PHASE_RUNNING"}, "no uuid"),  # missing uuid
        ({"uuid": ""}, "no uuid"),  # empty uuid
        ({"uuid": 12}, "no uuid"),  # uuid of the wrong type
        ("job", "not an object"),  # a string instead of an object
        (None, "not an object"),  # null
        ([JOB_UUID], "not an object"),  # an array
    ],
)
def test_a_job_without_a_uuid_or_not_an_object_is_skipped_with_a_reason(
    obj: object, reason: str
) -> None:
    """Unusable job entries raise `SkippedItem` whose message says why."""
    with pytest.raises(SkippedItem, match=reason):
        wire.parse_job(obj)


def test_a_page_skips_unusable_items_and_keeps_the_rest() -> None:
    """One bad entry in a list costs that entry only; the reason names its index."""
    page = wire.parse_page(
        {"jobs": [job_obj(), {"no": "uuid"}, 5], "meta": {"total": 3, "page": 1, "pages": 1}},
        "jobs",
        wire.parse_job,
    )
    assert [j.uuid for j in page.items] == [JOB_UUID]
    assert page.skipped == ("jobs[1]: job has no uuid", "jobs[2]: job is a int, not an object")
    assert page.raw_count == 3


LINKS_NEXT = {"pages": {"first": "a", "previous": "b", "next": "c", "last": "d"}}


@pytest.mark.parametrize(
    ("extra", "has_next"),
    [
        ({"links": LINKS_NEXT}, True),  # a next link, no meta
        ({"links": {"pages": {"prev": "p", "next": "n"}}}, True),  # DO-core spelling `prev`
        ({"links": {"pages": {"previous": "p"}}}, False),  # GenAI spelling, no next: last page
        ({"links": {"pages": {"prev": "p"}}}, False),  # DO-core spelling, no next
        ({"links": {"pages": {"next": ""}}}, False),  # an empty next link is no next link
        ({"links": {}}, False),  # links without pages, no meta: nothing says "more"
        ({}, False),  # neither links nor meta: a single page
        ({"meta": {"page": 1, "pages": 3}}, True),  # only meta, more to come
        ({"meta": {"page": 3, "pages": 3}}, False),  # only meta, at the end
        ({"meta": {"page": 4, "pages": 3}}, False),  # past the end
        ({"links": LINKS_NEXT, "meta": {"page": 3, "pages": 3}}, False),  # meta says the end
        ({"links": LINKS_NEXT, "meta": {"page": "1", "pages": "3"}}, True),  # meta as strings
        ({"links": LINKS_NEXT, "meta": "garbage"}, True),  # unusable meta is ignored
        ({"links": "garbage", "meta": {"page": 1, "pages": 2}}, True),  # unusable links ignored
    ],
)
def test_pagination_signals_decide_whether_another_page_follows(
    extra: dict[str, Any], has_next: bool
) -> None:
    """Stop without `next`, at `meta.page >= meta.pages`, or when nothing says there is more."""
    page = wire.parse_page(
        {"knowledge_bases": [{"uuid": KB_UUID}], **extra},
        "knowledge_bases",
        wire.parse_knowledge_base,
    )
    assert page.has_next is has_next


def test_an_empty_page_ends_the_list_even_with_a_next_link() -> None:
    """An empty page stops paging, whatever the links say."""
    page = wire.parse_page({"jobs": [], "links": LINKS_NEXT}, "jobs", wire.parse_job)
    assert page.items == () and not page.has_next


def test_a_missing_item_array_is_an_empty_page() -> None:
    """The API leaves out empty lists: no `jobs` key is an empty page, not an error."""
    page = wire.parse_page({"meta": {"total": 0}}, "jobs", wire.parse_job)
    assert page.items == () and page.total == 0 and not page.has_next


@pytest.mark.parametrize(
    "body",
    [
        [],  # an array
        "jobs",  # a string
        None,  # null
        42,  # a number
        {"jobs": {"uuid": JOB_UUID}},  # the items are not an array
        {"jobs": "none"},
    ],
)
def test_a_body_that_is_not_the_expected_object_raises_malformed_response(body: object) -> None:
    """A list answer whose shape is wrong is a `MalformedResponse`, not an empty list."""
    with pytest.raises(MalformedResponse):
        wire.parse_page(body, "jobs", wire.parse_job)


@pytest.mark.parametrize(
    "body",
    [{"job": {"status": "INDEX_JOB_STATUS_COMPLETED"}}, {"job": None}, {}, ["job"], "x"],
)
def test_a_single_job_answer_without_a_usable_job_raises_malformed_response(body: object) -> None:
    """`{"job": ...}` without a job that has a uuid cannot be used, so it is malformed."""
    with pytest.raises(MalformedResponse):
        wire.parse_single(body, "job", wire.parse_job)


@pytest.mark.parametrize(
    ("last_job", "expected_uuid"),
    [
        (job_obj(phase="BATCH_JOB_PHASE_SUCCEEDED"), JOB_UUID),  # a real last job
        ({}, None),  # never indexed: an empty object
        ({"uuid": ""}, None),  # never indexed: an empty uuid
        (None, None),  # never indexed: null
        ("garbage", None),  # nonsense
    ],
)
def test_a_knowledge_base_keeps_its_last_job_only_when_it_is_usable(
    last_job: object, expected_uuid: str | None
) -> None:
    """A KB without a usable `last_indexing_job` still parses, with `last_indexing_job` None."""
    kb = wire.parse_knowledge_base(
        {"uuid": KB_UUID, "name": "docs", "region": "tor1", "last_indexing_job": last_job}
    )
    assert (kb.uuid, kb.name, kb.region) == (KB_UUID, "docs", "tor1")
    got = kb.last_indexing_job.uuid if kb.last_indexing_job else None
    assert got == expected_uuid


def test_a_knowledge_base_without_uuid_is_skipped() -> None:
    """A KB entry with no uuid cannot be watched and is skipped with a reason."""
    with pytest.raises(SkippedItem, match="knowledge base has no uuid"):
        wire.parse_knowledge_base({"name": "orphan"})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"id": "not_found", "message": "gone", "request_id": "r-1"},
            ApiError("not_found", "gone", "r-1"),
        ),
        (
            {"id": "unauthorized", "message": "Unable to authenticate you."},
            ApiError("unauthorized", "Unable to authenticate you.", None),
        ),
        ({"id": 5, "message": None}, ApiError()),  # wrong types are dropped
        ("<html>Bad Gateway</html>", ApiError()),  # not JSON object
        (None, ApiError()),
    ],
)
def test_api_error_bodies_parse_tolerantly(body: object, expected: ApiError) -> None:
    """The error body's id, message and request_id are read when present and well-typed."""
    assert wire.parse_api_error(body) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {
                "ratelimit-limit": "5000",
                "ratelimit-remaining": "4816",
                "ratelimit-reset": "1444931833",
            },
            RateLimit(5000, 4816, 1444931833, None),
        ),
        (
            {"RateLimit-Limit": "250", "RATELIMIT-REMAINING": "0", "Retry-After": "29"},
            RateLimit(250, 0, None, 29.0),
        ),  # header case varies
        ({"retry-after": "1.5"}, RateLimit(retry_after=1.5)),
        ({"retry-after": "-3"}, RateLimit()),  # negative is nonsense
        ({"retry-after": "soon"}, RateLimit()),  # garbage without a clock
        ({"ratelimit-remaining": "lots"}, RateLimit()),
        ({}, RateLimit()),
    ],
)
def test_rate_limit_headers_are_read_case_insensitively(
    headers: dict[str, str], expected: RateLimit
) -> None:
    """The three ratelimit headers and retry-after are parsed whatever their case."""
    assert wire.parse_rate_limit(headers) == expected


def test_an_http_date_retry_after_becomes_seconds_from_now() -> None:
    """`retry-after` as an HTTP date is converted to seconds relative to the given now."""
    now = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC).timestamp()
    rate = wire.parse_rate_limit({"Retry-After": "Sat, 01 Mar 2025 10:00:30 GMT"}, now=now)
    assert rate.retry_after == 30.0


def test_knowledge_bases_parsed_from_separate_answers_share_their_repeated_text() -> None:
    """A region, project or model named by every KB is held once, not once per KB (and a
    job's KB id is the KB's own string): the decoded answers are separate objects."""
    body = (
        '{"uuid": "%s", "region": "tor1", "project_id": "p-1", "embedding_model_uuid": "m-1",'
        ' "last_indexing_job": {"uuid": "j-1", "knowledge_base_uuid": "%s"}}'
    )
    first = wire.parse_knowledge_base(json.loads(body % (KB_UUID, KB_UUID)))
    again = wire.parse_knowledge_base(json.loads(body % (KB_UUID, KB_UUID)))
    assert first == again
    assert first.region is again.region
    assert first.project_id is again.project_id
    assert first.embedding_model_uuid is again.embedding_model_uuid
    assert first.last_indexing_job is not None
    assert first.last_indexing_job.knowledge_base_uuid is first.uuid

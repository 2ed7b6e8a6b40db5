"""What an alert says: title, markdown body, severity; text from the API cannot inject markup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Severity, Status
from watcher.render import escape, format_duration, render, render_group
from watcher.state import StallReason, Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def partial_job() -> Job:
    return Job(
        uuid="job-42",
        knowledge_base_uuid="kb-1",
        phase=Phase.SUCCEEDED,
        status=Status.PARTIAL,
        started_at=NOW - timedelta(minutes=12, seconds=5),
        finished_at=NOW,
        completed_datasources=2,
        total_datasources=2,
        total_tokens=123456,
        data_source_jobs=(
            DataSourceJob(
                data_source_uuid="ds-ok",
                status=DataSourceStatus.UPDATED,
                indexed_item_count=120,
            ),
            DataSourceJob(
                data_source_uuid="ds-bad",
                status=DataSourceStatus.PARTIALLY_UPDATED,
                indexed_item_count=30,
                failed_item_count=4,
                skipped_item_count=2,
                error_msg="PARSE_ERROR",
                error_details="4 PDF files could not be parsed",
            ),
        ),
    )


def make(kind: EventKind, job: Job | None = None, **kw: object) -> Transition:
    return Transition(
        event_id="e",
        kind=kind,
        at=NOW,
        kb_uuid="kb-1",
        kb_name="product-docs",
        job=job,
        **kw,  # type: ignore[arg-type]
    )


def test_a_partial_alert_names_kb_job_outcome_duration_tokens_items_errors_and_link() -> None:
    message = render(make(EventKind.PARTIAL, partial_job()), "https://cloud.example/kb")
    assert message.title == "⚠️ product-docs: indexing finished with gaps"
    assert message.severity is Severity.WARNING
    body = message.body
    for expected in (
        "product-docs (`kb-1`)",
        "`kb-1`",
        "`job-42`",
        "partial (phase succeeded)",
        "Duration: 12m 05s",
        "Tokens: 123,456",
        "Items: 150 indexed, 4 failed, 2 skipped",
        "- `ds-bad` partially\\_updated: 30 indexed, 4 failed, 2 skipped",
        "  - error: PARSE\\_ERROR: 4 PDF files could not be parsed",
        "https://cloud.example/kb/kb-1",
    ):
        assert expected in body, expected


@pytest.mark.parametrize(
    ("kind", "severity"),
    [
        (EventKind.FAILED, Severity.FAILURE),
        (EventKind.PARTIAL, Severity.WARNING),
        (EventKind.CANCELLED, Severity.WARNING),
        (EventKind.STALLED, Severity.WARNING),
        (EventKind.COMPLETED, Severity.SUCCESS),
        (EventKind.RECOVERED, Severity.SUCCESS),
        (EventKind.STARTED, Severity.INFO),
        (EventKind.NO_CHANGES, Severity.INFO),
        (EventKind.API_UNREACHABLE, Severity.FAILURE),
        (EventKind.API_RECOVERED, Severity.SUCCESS),
    ],
)
def test_every_event_kind_renders_with_its_severity(kind: EventKind, severity: Severity) -> None:
    message = render(make(kind, partial_job()))
    assert message.severity is severity
    assert message.title and message.body


def test_a_stall_alert_says_which_rule_fired() -> None:
    message = render(make(EventKind.STALLED, partial_job(), stall_reason=StallReason.NO_PROGRESS))
    assert "(no progress)" in message.body


def test_api_alerts_carry_the_detail_and_no_kb() -> None:
    t = Transition(event_id="api/1", kind=EventKind.API_UNREACHABLE, at=NOW, detail="401 refused")
    message = render(t)
    assert message.title.startswith("❌ gradient-watcher")
    assert "401 refused" in message.body
    assert "Control panel" not in message.body


def test_markup_in_names_and_error_messages_from_the_api_is_escaped() -> None:
    hostile = Job(
        uuid="j`1",
        knowledge_base_uuid="kb-1",
        phase=Phase.FAILED,
        data_source_jobs=(
            DataSourceJob(
                data_source_uuid="ds",
                error_msg="[click me](https://evil.example) <script>alert(1)</script>",
            ),
        ),
    )
    t = Transition(
        event_id="e",
        kind=EventKind.FAILED,
        at=NOW,
        kb_uuid="kb-1",
        kb_name="**bold**\n# heading",
        job=hostile,
    )
    body = render(t).body
    assert "[click me](https://evil.example)" not in body
    assert "\\[click me\\]\\(https://evil.example\\)" in body
    assert "<script>" not in body
    assert "\n# heading" not in body
    assert "`j1`" in body


def test_escape_leaves_plain_words_alone_and_flattens_line_breaks() -> None:
    assert escape("plain words") == "plain words"
    assert escape("a\nb") == "a b"
    assert escape("a_b*c") == "a\\_b\\*c"


def test_long_error_details_are_clipped() -> None:
    job = Job(uuid="j", data_source_jobs=(DataSourceJob(error_details="x" * 5000),))
    assert len(render(make(EventKind.FAILED, job)).body) < 2000


def test_a_grouped_alert_lists_each_event_and_takes_the_worst_severity() -> None:
    group = [make(EventKind.COMPLETED, Job(uuid=f"j{n}")) for n in range(3)]
    group.append(make(EventKind.FAILED, Job(uuid="j9")))
    message = render_group(group)
    assert message.title.endswith("4 indexing events")
    assert message.severity is Severity.FAILURE
    assert message.body.count("\n- ") == 4


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (65, "1m 05s"), (3725, "1h 02m 05s"), (0, "0s")]
)
def test_durations_read_like_a_person_wrote_them(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text

"""What an alert says: a plain-text title, a body in markdown, text and HTML, a severity; text
from the API cannot inject markup in any format nor carry a control character anywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.inert import is_inert
from watcher.core.model import (
    DataSourceJob,
    DataSourceStatus,
    EventKind,
    Job,
    Phase,
    Severity,
    Status,
)
from watcher.core.outbox import BodyFormat, Part
from watcher.core.render import escape, render, render_group
from watcher.core.state import StallReason, Transition

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
    assert message.title == "⚠️ product-docs: indexing partial (finished with gaps)"
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
        "[https://cloud.example/kb/kb-1](https://cloud.example/kb/kb-1)",
    ):
        assert expected in body, expected
    assert "Control panel: https://cloud.example/kb/kb-1\n" in message.text
    assert '<a href="https://cloud.example/kb/kb-1">' in message.html


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
    job = partial_job()
    if kind is EventKind.RECOVERED:  # moving again: the job is still running
        job = Job(uuid="job-42", phase=Phase.RUNNING, status=Status.IN_PROGRESS)
    message = render(make(kind, job))
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
    message = render(t)
    body = message.body
    assert "[click me](https://evil.example)" not in body
    assert "\\[click me\\](https://evil.example)" in body
    assert "<script>" not in body and "\\<script\\>" in body
    assert "\n# heading" not in body
    assert "`j1`" in body
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "href" not in message.html.replace('href="https://cloud.digitalocean.com', "")
    assert "[click me](https://evil.example) <script>alert(1)</script>" in message.text


def test_escape_leaves_plain_words_alone_and_flattens_line_breaks() -> None:
    assert escape("plain words") == "plain words"
    assert escape("a\nb") == "a b"
    assert escape("a_b*c") == "a\\_b\\*c"
    assert escape("# not a heading") == "\\# not a heading"
    assert escape("1. not a list") == "1\\. not a list"
    assert escape("&#x202e;") == "\\&#x202e;"


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


def test_the_last_part_of_a_split_group_with_one_event_says_one_event() -> None:
    message = render_group([make(EventKind.FAILED, Job(uuid="j9"))], part=Part(3, 3, 41))
    assert message.title.endswith("1 indexing event (part 3 of 3)")
    assert message.body.startswith("**1 indexing event** (part 3 of 3; 41 events in all)")


HOSTILE_NAME = "[EU] <prod> *docs*_\x1b]0;owned\x07\x1b[2J\nCOMPLETED\u202etxt.exe\x00"


def test_titles_are_plain_text_on_one_line_with_no_markdown_escapes() -> None:
    """Email subjects and Slack titles show the name as the user wrote it, minus what is not
    text: `[EU] <prod>` keeps its brackets, controls and bidi overrides become visible escapes."""
    t = make(EventKind.FAILED, Job(uuid="j"))
    title = render(Transition(**{**_fields(t), "kb_name": HOSTILE_NAME})).title

    assert title.startswith("❌ [EU] <prod> *docs*_\\x1b]0;owned\\x07\\x1b[2J COMPLETED\\u202etxt")
    assert title.endswith(": indexing failed")
    assert "\\[" not in title and "\\<" not in title
    assert is_inert(title)


@pytest.mark.parametrize("kind", list(EventKind))
def test_no_control_character_from_outside_reaches_any_part_of_any_alert(kind: EventKind) -> None:
    """Names, error texts, unknown states and details full of controls come out inert in the
    title and in every body format; only the body's own line breaks remain."""
    hostile_job = Job(
        uuid="job\x1b[31m",
        phase_raw="BATCH_JOB_PHASE_\x1b[2J",
        data_source_jobs=(
            DataSourceJob(data_source_uuid="ds\r", error_msg=HOSTILE_NAME, status_raw="\x07"),
        ),
    )
    t = Transition(
        event_id="e",
        kind=kind,
        at=NOW,
        kb_uuid="kb\n1",
        kb_name=HOSTILE_NAME,
        job=hostile_job,
        detail=HOSTILE_NAME,
    )
    for message in (render(t), render_group([t, t])):
        assert is_inert(message.title)
        for fmt in BodyFormat:
            assert is_inert(message.body_in(fmt), newlines=True), fmt
            assert "\nCOMPLETED" not in message.body_in(fmt)


@pytest.mark.parametrize(
    ("kind", "headline"),
    [
        (EventKind.API_UNREACHABLE, "**DigitalOcean API unreachable**"),
        (EventKind.API_RECOVERED, "**DigitalOcean API reachable again**"),
        (EventKind.PARTIAL, "**Indexing partial (finished with gaps)**"),
    ],
)
def test_the_body_headline_keeps_the_capitals_of_names(kind: EventKind, headline: str) -> None:
    """ "DigitalOcean API" stays as written (it once read "Digitalocean api unreachable")."""
    assert render(make(kind, partial_job())).body.startswith(headline + "\n")


def test_the_partial_title_says_partial() -> None:
    assert "partial" in render(make(EventKind.PARTIAL, partial_job())).title


def test_each_format_escapes_for_itself_and_nothing_else() -> None:
    """Markdown escapes markup, HTML uses entities, plain text stays literal."""
    job = Job(uuid="j", data_source_jobs=(DataSourceJob(error_msg="a_b <c> & [d](e)"),))
    message = render(make(EventKind.FAILED, job))

    assert "error: a\\_b \\<c\\> \\& \\[d\\](e)" in message.body
    assert "error: a_b &lt;c&gt; &amp; [d](e)" in message.html
    assert "error: a_b <c> & [d](e)" in message.text


def _fields(t: Transition) -> dict[str, object]:
    return {f: getattr(t, f) for f in Transition.__dataclass_fields__}


def test_with_several_accounts_the_title_and_body_name_the_account() -> None:
    message = render(make(EventKind.PARTIAL, partial_job(), account="prod"))
    assert message.title.endswith(" [prod]: indexing partial (finished with gaps)")
    assert message.body.startswith("**Indexing partial") and "- Account: prod\n" in message.body
    api = Transition("api/prod/1", EventKind.API_UNREACHABLE, NOW, detail="x", account="prod")
    assert render(api).title == "❌ gradient-watcher [prod]: DigitalOcean API unreachable"
    alone = render(make(EventKind.PARTIAL, partial_job()))
    assert "[" not in alone.title and "Account:" not in alone.body  # one account: as before


def test_a_template_may_print_the_account_and_sees_none_with_a_single_account() -> None:
    from watcher.core.present import template_context

    builtin = render(make(EventKind.FAILED, partial_job()))
    one = template_context(make(EventKind.FAILED, partial_job()), "d", builtin, BodyFormat.TEXT)
    assert one["account"] is None
    several = make(EventKind.FAILED, partial_job(), account="prod")
    assert template_context(several, "d", builtin, BodyFormat.TEXT)["account"] == "prod"

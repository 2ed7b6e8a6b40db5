"""What an alert says of a finished job's per-file report, table-driven: CSV bytes -> summary."""

from __future__ import annotations

import pytest

from watcher.core.report import ErrorSummary, ReportFate, report_note, summarise

HEAD = b"file,data_source_uuid,status,error\n"

SUMMARY_CASES = [
    pytest.param(
        HEAD + b"a.pdf,ds,failed,unsupported file type\nb.pdf,ds,failed,unsupported file type\n"
        b"c.pdf,ds,failed,too large\nd.html,ds,indexed,\n",
        ErrorSummary((("unsupported file type", 2), ("too large", 1)), 3, 4),
        id="errors counted, most frequent first; indexed rows are not errors",
    ),
    pytest.param(
        b"File,Status,Error_Message\nx,SKIPPED,\ny,Failed,  spaced   out  \n",
        ErrorSummary((("(skipped)", 1), ("spaced out", 1)), 2, 2),
        id="column names in any case; a skipped status without text counts; spaces folded",
    ),
    pytest.param(
        b"\xef\xbb\xbf" + HEAD + b"a,ds,failed,bad\n",
        ErrorSummary((("bad", 1),), 1, 1),
        id="a UTF-8 byte-order mark is fine",
    ),
    pytest.param(b"path,size\na,1\n", None, id="no error column: not recognised"),
    pytest.param(b"\xff\xfe\x00garbage", None, id="not UTF-8: not recognised"),
    pytest.param(b"", None, id="empty: not recognised"),
    pytest.param(HEAD, ErrorSummary((), 0, 0), id="recognised but no rows: no errors"),
]


@pytest.mark.parametrize(("data", "expected"), SUMMARY_CASES)
def test_a_reports_most_frequent_errors_are_found_when_its_columns_are_recognised(
    data: bytes, expected: ErrorSummary | None
) -> None:
    assert summarise(data) == expected


def test_only_the_three_most_frequent_errors_are_listed() -> None:
    rows = b"".join(f"f{i},ds,failed,error {i % 5}\n".encode() for i in range(50))
    summary = summarise(HEAD + rows)
    assert summary is not None and len(summary.top) == 3 and summary.error_rows == 50


def test_the_note_says_the_report_was_kept_how_to_get_it_and_its_top_errors() -> None:
    summary = ErrorSummary((("unsupported file type", 12), ("x" * 400, 1)), 13, 40)
    note = report_note("job-1", ReportFate.KEPT, summary)
    lines = note.splitlines()
    assert lines[0] == "Per-file report kept: watcher report job-1"
    assert lines[1] == "Most frequent errors (13 of 40 rows):"
    assert lines[2] == "12 × unsupported file type"
    assert len(lines[3]) < 200 and lines[3].endswith("…")


def test_a_report_that_could_not_be_kept_is_said_so_without_errors() -> None:
    note = report_note("job-1", ReportFate.NOT_KEPT, None)
    assert "could not be kept" in note


def test_a_kept_report_without_recognised_columns_says_only_that_it_was_kept() -> None:
    assert report_note("job-1", ReportFate.KEPT, None) == (
        "Per-file report kept: watcher report job-1"
    )

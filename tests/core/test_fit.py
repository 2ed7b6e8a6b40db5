"""Fitting alerts into a target's limits: what is kept, what is cut, and that it always fits."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.core.fit import Entry, clip, fit_body, fit_shaped, more_line
from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Status
from watcher.core.outbox import Budget
from watcher.core.render import render, render_group
from watcher.core.state import StallReason, Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HEAD = ["**Indexing finished with gaps**", "", "- Job: `job-1`"]
# 40 derandomized examples in the suite (the same in CI every run); HYPOTHESIS_PROFILE=
# promises-explore (with `--timeout 0`) runs 500 fresh random ones, as for tests/promises.
_EXPLORE = "explore" in os.environ.get("HYPOTHESIS_PROFILE", "")
FITS = settings(
    max_examples=500 if _EXPLORE else 40, deadline=None, derandomize=not _EXPLORE, database=None
)


def entries(n: int, note: int = 0, tally: str = "failed") -> list[Entry]:
    return [Entry(f"- source {k}", "e" * note if note else None, tally) for k in range(n)]


def body(items: list[Entry], chars: int | None, lines: int | None = None) -> str:
    return fit_body(
        HEAD,
        items,
        chars=chars,
        lines=lines,
        note_line=lambda note: f"  - error: {note}",
        noun="data sources",
        list_heading=["", "**Data sources**"],
    )


@pytest.mark.parametrize(
    ("n", "note", "chars", "kept", "note_len"),
    [
        # everything fits: whole notes
        (3, 300, None, 3, 300),
        # notes shortened to 200, then 80, before any entry is dropped
        (3, 300, 900, 3, 200),
        (3, 300, 600, 3, 80),
        # then entries are cut, keeping the first (worst) ones
        (40, 300, 900, None, 80),
    ],
)
def test_errors_are_shortened_before_the_list_is_cut(
    n: int, note: int, chars: int | None, kept: int | None, note_len: int
) -> None:
    text = body(entries(n, note), chars)
    assert chars is None or len(text) <= chars
    if kept is not None:
        assert text.count("- source") == kept
    else:
        assert "- source 0\n" in text and f"- source {n - 1}\n" not in text
        assert "more data sources: " in text
    notes = [line for line in text.splitlines() if "error:" in line]
    assert notes and max(len(line) - len("  - error: ") for line in notes) == note_len


def test_the_left_out_line_counts_each_kind() -> None:
    left = entries(12, tally="failed") + entries(468, tally="updated")
    assert (
        more_line(left, "data sources") == "- … and 480 more data sources: 468 updated, 12 failed"
    )


def test_the_head_is_kept_whole_and_the_list_summarised_when_only_the_head_fits() -> None:
    text = body(entries(500, 100), chars=112)
    assert text.startswith("\n".join(HEAD))
    assert "… and 500 more data sources: 500 failed" in text


def test_a_head_longer_than_the_budget_is_cut_with_an_ellipsis() -> None:
    text = fit_body(["x" * 5000], [], chars=300, note_line=str, noun="items")
    assert len(text) <= 300 and text.rstrip().endswith("…")


def test_a_line_limit_is_honoured_like_a_character_limit() -> None:
    text = body(entries(50), chars=None, lines=12)
    assert text.count("\n") <= 12


@FITS
@given(
    st.integers(min_value=0, max_value=600),
    st.integers(min_value=0, max_value=800),
    st.integers(min_value=120, max_value=40_000),
)
def test_a_rendered_alert_always_fits_the_budget(sources: int, error: int, limit: int) -> None:
    """Whatever the job and the service's limit: title + CR LF + body within the limit."""
    job = Job(
        uuid="job-1",
        phase=Phase.SUCCEEDED,
        status=Status.PARTIAL,
        data_source_jobs=tuple(
            DataSourceJob(
                data_source_uuid=f"ds-{n}",
                status=DataSourceStatus.FAILED if n % 2 else DataSourceStatus.UPDATED,
                error_details="é" * error if n % 2 else None,
            )
            for n in range(sources)
        ),
    )
    t = Transition("e", EventKind.PARTIAL, NOW, "kb-1", "docs", job)
    budget = Budget(body=limit, title=250, title_in_body=True)
    message = render(t, budget=budget)
    assert len(message.title) + 2 + len(message.body) <= limit
    assert message.body.startswith("**Indexing partial (finished with gaps)**")


def test_the_issues_500_sources_fit_discord_with_failures_first_and_a_count_of_the_rest() -> None:
    """The issue's case: 500 sources made a 296 KB message; Discord takes 2,000 characters."""
    sources = tuple(
        DataSourceJob(
            data_source_uuid=f"ds-{n:03d}",
            status=DataSourceStatus.FAILED if n >= 488 else DataSourceStatus.UPDATED,
            error_msg="crawl_failed" if n >= 488 else None,
            error_details="x" * 200 if n >= 488 else None,
        )
        for n in range(500)
    )
    job = Job(uuid="job-1", phase=Phase.SUCCEEDED, status=Status.PARTIAL, data_source_jobs=sources)
    whole = render(Transition("e", EventKind.PARTIAL, NOW, "kb-1", "docs", job))
    fitted = render(
        Transition("e", EventKind.PARTIAL, NOW, "kb-1", "docs", job),
        budget=Budget(body=2000, title=250, title_in_body=True),
    )
    assert len(whole.body) > 20_000
    assert len(fitted.title) + 2 + len(fitted.body) <= 2000
    listed = [line for line in fitted.body.splitlines() if line.startswith("- `ds-")]
    assert listed and all(" failed:" in line for line in listed)  # the failures come first
    assert "488 updated" in fitted.body


def test_a_grouped_alert_lists_the_worst_events_first_and_counts_the_rest() -> None:
    group = [
        Transition(f"e{n}", EventKind.COMPLETED, NOW, f"kb-{n}", f"kb-{n}", Job(uuid=f"j{n}"))
        for n in range(300)
    ]
    group.append(Transition("bad", EventKind.FAILED, NOW, "kb-x", "kb-x", Job(uuid="jx")))
    message = render_group(group, budget=Budget(body=2000, title=250, title_in_body=True))
    assert len(message.title) + 2 + len(message.body) <= 2000
    first = message.body.splitlines()[2]
    assert "failed" in first
    assert "more events: " in message.body and "completed" in message.body


def test_an_outcome_after_a_stall_says_it_had_stalled_and_for_how_long() -> None:
    job = Job(uuid="job-1", phase=Phase.SUCCEEDED, status=Status.COMPLETED)
    t = Transition(
        "job-1/completed",
        EventKind.COMPLETED,
        NOW,
        "kb-1",
        "docs",
        job,
        stall_reason=StallReason.NO_PROGRESS,
        stalled_since=NOW.replace(hour=11, minute=13),
    )
    message = render(t)
    assert message.title == "✅ docs: indexing completed"
    assert "It had stalled (no progress); nothing had moved for 47m 00s before it ended." in (
        message.body
    )


def test_recovered_alone_for_a_job_that_ended_says_so_with_the_outcomes_severity() -> None:
    job = Job(uuid="job-1", phase=Phase.FAILED, status=Status.FAILED)
    t = Transition(
        "job-1/recovered/1",
        EventKind.RECOVERED,
        NOW,
        "kb-1",
        "docs",
        job,
        stall_reason=StallReason.NO_PROGRESS,
    )
    message = render(t)
    assert message.title == "❌ docs: indexing finished after a stall"
    assert "It had stalled (no progress) before it ended." in message.body


@pytest.mark.parametrize(("notes", "chars"), [(0, 2000), (300, 2000), (0, 32768)])
def test_fitting_a_long_list_writes_about_what_fits_not_the_whole_list(
    notes: int, chars: int
) -> None:
    """2,000 entries in 2,000 characters: fitted by a binary search over the whole list after
    three whole tries (one per note limit, with or without notes), the fit wrote 8,078 entries
    for the 18 it kept (9,122 for 155 with notes), per format, each time a storm's split drew
    its message."""
    listed = entries(2000, notes)
    written: list[int] = []

    def build(kept: int, note_limit: int, cut: bool) -> str:
        written.append(kept)
        lines = list(HEAD)
        for entry in listed[:kept]:
            lines.append(entry.line)
            if entry.note and note_limit:
                lines.append(f"  - error: {clip(entry.note, note_limit)}")
        return "\n".join([*lines, *([more_line(listed[kept:], "sources")] if cut else [])])

    text, left, _ = fit_shaped(build, len(listed), chars=chars, notes=notes > 0)
    assert len(text) <= chars and left == 2000 - text.count("- source ")
    assert sum(written) < 40 * (2000 - left)


def test_clip_marks_what_it_cut() -> None:
    assert clip("abcdef", 4) == "abc…"
    assert clip("abc", 4) == "abc"

"""Planning a route's messages within each URL's limits, and pacing them."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Status
from watcher.core.outbox import (
    BodyFormat,
    Budget,
    FailureCause,
    Message,
    OutboxItem,
    Send,
    TargetResult,
)
from watcher.core.plan import pace_wait, plan
from watcher.core.quiet import settle_held
from watcher.core.state import StallReason, Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DISCORD = Budget(body=2000, title=250, title_in_body=True)
EMAIL = Budget(body=32768, title=250)
# HYPOTHESIS_PROFILE=promises-explore runs 500 examples of each property instead of 25.
_EXPLORE = "explore" in os.environ.get("HYPOTHESIS_PROFILE", "")
FITS = settings(max_examples=500 if _EXPLORE else 25, deadline=None)


def partial_job(sources: int, error_chars: int = 200) -> Job:
    """A partial job with `sources` data sources, every third failed with a long error."""
    found = tuple(
        DataSourceJob(
            data_source_uuid=f"ds-{n:03d}",
            status=DataSourceStatus.FAILED if n % 3 == 0 else DataSourceStatus.UPDATED,
            indexed_item_count=10,
            error_msg="crawl_failed" if n % 3 == 0 else None,
            error_details=("x" * error_chars) if n % 3 == 0 else None,
        )
        for n in range(sources)
    )
    return Job(
        uuid="job-1",
        knowledge_base_uuid="kb-1",
        phase=Phase.SUCCEEDED,
        status=Status.PARTIAL,
        data_source_jobs=found,
    )


def item(n: int, job: Job | None = None, **changes: object) -> OutboxItem:
    kind = EventKind.PARTIAL if job is not None else EventKind.FAILED
    t = Transition(
        event_id=f"job-{n}/{kind.value}",
        kind=kind,
        at=NOW,
        kb_uuid="kb-1",
        kb_name="docs",
        job=job or Job(uuid=f"job-{n}"),
    )
    row = OutboxItem(id=n, route="ops", transition=t, cycle_id="c", created_at=NOW)
    return replace(row, **changes)  # type: ignore[arg-type]


def test_each_url_gets_the_alert_rendered_within_its_services_limits() -> None:
    """24 sources with 200-character errors render to far more than Discord's 2,000."""
    [send] = plan([item(1, partial_job(24))], 5, "https://x", {"ops": (DISCORD, EMAIL)})
    discord, email = send.message_for(0), send.message_for(1)
    assert len(discord.title) + 2 + len(discord.body) <= 2000
    assert len(email.body) > 2000  # the mail takes the whole list
    assert email.body.count("- `ds-") == 24
    assert "… and" in discord.body and "more data sources" in discord.body


def test_a_url_that_refused_for_size_gets_a_shorter_rendering_next_time() -> None:
    refused = TargetResult("JSON", "json://", False, "", 0, FailureCause.TOO_LARGE, 400, 3000)
    row = item(1, partial_job(60), last_targets=(refused,))
    [send] = plan([row], 5, "https://x", {"ops": (Budget(body=32768),)})
    assert len(send.message_for(0).body) <= 1500


def test_rows_that_reached_a_url_before_are_not_rendered_for_it_again() -> None:
    row = item(1, partial_job(3), delivered=frozenset({0}))
    [send] = plan([row], 5, "https://x", {"ops": (DISCORD, EMAIL)})
    assert [index for index, _ in send.fitted] == [1]


# --- a size limit never hides an event ------------------------------------------------------


def storm(n: int, kb_name: str = "", **changes: object) -> list[OutboxItem]:
    """`n` completed jobs of KBs with long names (or `kb_name`), then one failed job (last in
    claim order)."""
    rows = []
    for k in range(n + 1):
        kind = EventKind.FAILED if k == n else EventKind.COMPLETED
        t = Transition(
            event_id=f"job-{k:04d}/{kind.value}",
            kind=kind,
            at=NOW,
            kb_uuid=f"kb-{k}",
            kb_name=kb_name or f"knowledge base number {k} of the docs team",
            job=Job(uuid=f"job-{k:04d}"),
        )
        row = OutboxItem(id=k + 1, route="ops", transition=t, cycle_id="c", created_at=NOW)
        rows.append(replace(row, **changes))  # type: ignore[arg-type]
    return rows


def named(message_body: str) -> list[str]:
    return re.findall(r"job `(job-\d{4})`", message_body)


def named_whole_within(sends: list[Send], chars: int) -> int:
    """The events the sends name to their first URL, each body within `chars` and whole."""
    for send in sends:
        body = send.message_for(0).body
        assert len(body) <= chars and "more events" not in body
    return sum(len(named(s.message_for(0).body)) for s in sends)


def within(budget: Budget, title: str, body: str) -> bool:
    room = budget.body_room(title)
    return room is None or len(body) <= room


@pytest.mark.parametrize("held", [None, "night"], ids=["storm", "released-after-quiet-hours"])
def test_a_grouped_alert_too_long_for_a_url_is_split_into_parts_that_name_every_event(
    held: str | None,
) -> None:
    """300 events take ~25,000 characters: Discord's 2,000 cannot name them in one message.
    Without the split, one message named the worst ~20 and counted the rest, and the alerts
    of the jobs it only counted never reached anyone."""
    rows = storm(300, held_by=held)
    sends = plan(rows, 5, "https://x", {"ops": (DISCORD, EMAIL)})
    assert len(sends) > 1
    assert sorted(r.id for s in sends for r in s.items) == [r.id for r in rows]  # each once
    for index, budget in enumerate((DISCORD, EMAIL)):
        seen: list[str] = []
        for number, send in enumerate(sends, start=1):
            message = send.message_for(index)
            assert within(budget, message.title, message.body), (index, number)
            assert "more events" not in message.body and "more lines" not in message.body
            assert f"part {number} of {len(sends)}" in message.title
            assert f"part {number} of {len(sends)}; {len(rows)} events in all" in message.body
            mine = {r.transition.job_uuid for r in send.items}
            assert set(named(message.body)) == mine  # a part names exactly the rows it settles
            seen += named(message.body)
        assert sorted(seen) == sorted(r.transition.job_uuid or "" for r in rows)
    assert "job-0300" in named(sends[0].message_for(0).body)  # the failure goes first


# A held job: whether it stalled (and moved again), and how it ended (None: still running).
Life = tuple[bool, EventKind | None]


def held_rows(lives: Sequence[Life]) -> list[OutboxItem]:
    """What quiet hours held of these jobs: each one's `started` (claimed first), a stall and
    the move after it, then its outcome (claimed last; None: still running)."""
    moments: list[tuple[int, EventKind, int]] = []  # (job, kind, minute)
    for k, (stalled, _) in enumerate(lives):
        moments.append((k, EventKind.STARTED, 0))
        if stalled:
            moments += [(k, EventKind.STALLED, 10), (k, EventKind.RECOVERED, 20)]
    moments += [(k, end, 30) for k, (_, end) in enumerate(lives) if end is not None]
    rows = []
    for number, (k, kind, minute) in enumerate(moments, start=1):
        t = Transition(
            event_id=f"job-{k:04d}/{kind.value}",
            kind=kind,
            at=NOW + timedelta(minutes=minute),
            kb_uuid=f"kb-{k}",
            kb_name=f"knowledge base number {k} of the docs team",
            job=Job(uuid=f"job-{k:04d}"),
            stall_reason=StallReason.NO_PROGRESS if kind is EventKind.STALLED else None,
        )
        row = OutboxItem(id=number, route="ops", transition=t, cycle_id="c", created_at=NOW)
        rows.append(replace(row, held_by="night"))
    return rows


def test_held_rows_released_in_parts_tell_each_job_once_by_its_outcome() -> None:
    """Unsplit, a held job's `started` (and a stall it recovered from) is told by its
    outcome's line. Split by severity alone, the outcomes (claimed last, more severe) filled
    the first parts and the `started` rows the last ones: 100 jobs were named twice, and a
    stalled job's outcome lost its "after a stall"."""
    lives = [(k % 5 == 0, EventKind.FAILED if k == 0 else EventKind.COMPLETED) for k in range(100)]
    rows = held_rows(lives)
    sends = plan(rows, 5, "https://x", {"ops": (DISCORD,)})
    assert len(sends) > 1
    assert sorted(r.id for s in sends for r in s.items) == [r.id for r in rows]  # each once
    bodies = [send.message_for(0).body for send in sends]
    told = [uuid for body in bodies for uuid in named(body)]
    assert sorted(told) == [f"job-{k:04d}" for k in range(100)]  # each job once
    text = "\n".join(bodies)
    assert ": started" not in text and ": stalled" not in text and ": recovered" not in text
    assert text.count(" after a stall") == 20  # jobs 0, 5, 10 ... 95
    assert "job `job-0000`: failed after a stall" in bodies[0]  # the failure still leads
    for number, send in enumerate(sends, start=1):
        assert f"part {number} of {len(sends)}" in send.message_for(0).title
        assert within(DISCORD, send.message_for(0).title, bodies[number - 1])


@FITS
@given(
    lives=st.lists(
        st.tuples(st.booleans(), st.sampled_from([None, *(k for k in EventKind if k.is_terminal)])),
        min_size=2,
        max_size=60,
    ),
    chars=st.integers(min_value=400, max_value=6000),
)
def test_a_release_split_in_parts_tells_what_one_message_would_each_once(
    lives: list[Life], chars: int
) -> None:
    budget = Budget(body=chars, title=100, title_in_body=True)
    rows = held_rows(lives)
    sends = plan(rows, 5, "https://x", {"ops": (budget,)})
    assert sorted(r.id for s in sends for r in s.items) == [r.id for r in rows]
    told = settle_held([r.transition for r in rows]).told  # what one message would tell
    seen = [uuid for s in sends for uuid in named(s.message_for(0).body)]
    assert sorted(seen) == sorted(t.job_uuid or "" for t in told)
    for send in sends:
        assert within(budget, send.message_for(0).title, send.message_for(0).body)
        assert "more lines" not in send.message_for(0).body


def held_about_kbs(kinds: Sequence[tuple[EventKind, str]]) -> list[OutboxItem]:
    """Held events about KBs (no job), a minute apart, in this order."""
    rows = []
    for number, (kind, kb) in enumerate(kinds, start=1):
        t = Transition(
            event_id=f"{kb}/{kind.value}/{number}",
            kind=kind,
            at=NOW + timedelta(minutes=number),
            kb_uuid=kb,
            kb_name=f"docs {kb}",
        )
        row = OutboxItem(id=number, route="ops", transition=t, cycle_id="c", created_at=NOW)
        rows.append(replace(row, held_by="night"))
    return rows


def test_many_held_events_about_one_kb_are_released_in_parts_that_name_all_of_their_own() -> None:
    """A weekend's quiet: one KB missing and found again 60 times, another stale and missing
    its schedule 30 times. Grouped by subject alone, each KB's rows were one unit longer than
    any Discord message: the split could not break it, and 79 lines were only counted."""
    missing, found = EventKind.KNOWLEDGE_BASE_MISSING, EventKind.KNOWLEDGE_BASE_FOUND
    kinds = [(missing, "kb-1"), (found, "kb-1")] * 60
    kinds += [(EventKind.STALE, "kb-2"), (EventKind.SCHEDULE_MISSED, "kb-2")] * 30
    rows = held_about_kbs(kinds)
    sends = plan(rows, 5, "https://x", {"ops": (DISCORD,)})
    assert sorted(r.id for s in sends for r in s.items) == [r.id for r in rows]
    whole = settle_held([r.transition for r in rows])
    told = resolved = 0
    for send in sends:
        message = send.message_for(0)
        assert within(DISCORD, message.title, message.body)
        assert "more lines" not in message.body and message.left_out == 0
        part = settle_held([r.transition for r in send.items])
        told, resolved = told + len(part.told), resolved + len(part.resolved)
        assert message.body.count(", then knowledge base found again") == len(part.resolved)
    assert (told, resolved) == (len(whole.told), len(whole.resolved)) == (60, 60)


def shown(budget: Budget, message: Message, fmt: BodyFormat) -> str:
    """What a service of `budget` shows of `message` in `fmt`, as apprise sends it: a title
    without a field of its own opens the body, then the body is cut to `lines` lines."""
    body = message.body_in(fmt).rstrip()
    if budget.title is None:
        body = f"{message.title}\r\n{body}"
    if budget.lines is not None:
        body = "\r\n".join(re.split(r"\r*\n", body)[: budget.lines])
    return body


@pytest.mark.parametrize("events", [8, 43])
@pytest.mark.parametrize("fmt", [BodyFormat.MARKDOWN, BodyFormat.TEXT])
def test_a_service_without_a_title_field_that_counts_lines_shows_every_event(
    events: int, fmt: BodyFormat
) -> None:
    """A service like apprise's GNOME one (no title field, 10 lines): the title comes first
    in the body, then the lines are cut. 8 events filled the 10 lines to the last: the last
    event's line was cut after the title took its line, and that event reached nobody."""
    budget = Budget(title=None, lines=10, format=fmt)
    rows = storm(events - 1)
    sends = plan(rows, 5, "https://x", {"ops": (budget,)})
    seen = [
        uuid
        for s in sends
        for uuid in re.findall(r"job-\d{4}", shown(budget, s.message_for(0), fmt))
    ]
    assert sorted(seen) == sorted(r.transition.job_uuid or "" for r in rows)


def test_a_kb_missing_twice_then_found_twice_is_told_in_parts_as_in_one_message() -> None:
    """Missing, missing again, found, found again: one message tells the first `missing` and
    the last `found`, and the middle two as resolved. Split with the middle pair in a later
    part, the first `missing` and the last `found` met in one part and became a resolved
    pair of their own (missing at 12:01, found at 12:04), a story no one message told."""
    missing, found = EventKind.KNOWLEDGE_BASE_MISSING, EventKind.KNOWLEDGE_BASE_FOUND
    kinds = [(missing, "kb-0"), (missing, "kb-0"), (found, "kb-0"), (found, "kb-0")]
    kinds += [(EventKind.STALE, f"kb-{k}") for k in range(1, 25)]
    rows = held_about_kbs(kinds)
    sends = plan(rows, 5, "https://x", {"ops": (DISCORD,)})
    assert len(sends) == 2  # the middle pair (resolved: last) alone in the second
    whole = settle_held([r.transition for r in rows])
    parts = [settle_held([r.transition for r in send.items]) for send in sends]
    assert sorted(t.event_id for part in parts for t in part.told) == sorted(
        t.event_id for t in whole.told
    )
    assert [(a.event_id, b.event_id) for part in parts for a, b in part.resolved] == [
        (a.event_id, b.event_id) for a, b in whole.resolved
    ]


def kb_news(steps: Sequence[tuple[EventKind | None, str]]) -> list[tuple[EventKind, str]]:
    """A weekend's news about KBs: None toggles the KB missing / found again (as the watcher
    tells it: never missing twice in a row), other kinds as they are."""
    missing: set[str] = set()
    news = []
    for kind, kb in steps:
        if kind is None:
            kind = (
                EventKind.KNOWLEDGE_BASE_FOUND
                if kb in missing
                else EventKind.KNOWLEDGE_BASE_MISSING
            )
            missing ^= {kb}
        news.append((kind, kb))
    return news


@FITS
@given(
    lives=st.lists(
        st.tuples(st.booleans(), st.sampled_from([None, EventKind.FAILED, EventKind.COMPLETED])),
        max_size=40,
    ),
    steps=st.lists(
        st.tuples(
            st.sampled_from([None, None, EventKind.STALE, EventKind.SCHEDULE_MISSED]),
            st.sampled_from(["kb-a", "kb-b"]),
        ),
        max_size=120,
    ),
    chars=st.lists(st.integers(min_value=1200, max_value=3000), min_size=1, max_size=3),
)
def test_a_release_in_parts_to_several_urls_tells_what_one_message_would(
    lives: list[Life], steps: list[tuple[EventKind | None, str]], chars: list[int]
) -> None:
    """Held jobs and a weekend's news about two KBs (missing and found again, stale, missed
    schedules), to URLs of different limits: the parts together tell each event and each
    resolved pair one message would, and each names all of its own."""
    news = held_about_kbs(kb_news(steps))
    rows = held_rows(lives) + [replace(r, id=r.id + 1000) for r in news]
    if len(rows) < 6:
        return
    budgets = tuple(Budget(body=n, title=250, title_in_body=True) for n in chars)
    sends = plan(rows, 5, "https://x", {"ops": budgets})
    assert sorted(r.id for s in sends for r in s.items) == sorted(r.id for r in rows)
    whole = settle_held([r.transition for r in rows])
    parts = [settle_held([r.transition for r in send.items]) for send in sends]
    told = sorted(t.event_id for part in parts for t in part.told)
    assert told == sorted(t.event_id for t in whole.told)
    resolved = sorted((a.event_id, b.event_id) for part in parts for a, b in part.resolved)
    assert resolved == sorted((a.event_id, b.event_id) for a, b in whole.resolved)
    for send in sends:
        for index, budget in enumerate(budgets):
            message = send.message_for(index)
            assert within(budget, message.title, message.body) and message.left_out == 0


def test_a_grouped_alert_that_fits_stays_one_message_without_a_part() -> None:
    [send] = plan(storm(10), 5, "https://x", {"ops": (DISCORD, EMAIL)})
    assert "part" not in send.message_for(0).title
    assert len(named(send.message_for(0).body)) == 11


def test_a_group_refused_for_size_is_split_smaller_next_time_instead_of_cut() -> None:
    refused = TargetResult("JSON", "json://", False, "", 0, FailureCause.TOO_LARGE, 400, 3000)
    rows = storm(60, last_targets=(refused,))
    sends = plan(rows, 5, "https://x", {"ops": (Budget(body=32768),)})
    assert len(sends) > 1
    assert named_whole_within(sends, 1500) == 61


def test_a_url_too_short_to_name_one_event_gets_one_message_counting_them_not_a_part_each() -> None:
    """An SMS-like URL of 120 characters, title in the body: not one event's line fits. Split
    anyway, it got 21 parts (one per event) that each named nothing."""
    sms = Budget(body=120, title=None)
    rows = storm(20)
    [send] = plan(rows, 5, "https://x", {"ops": (sms,)})
    assert sorted(r.id for r in send.items) == [r.id for r in rows]
    message = send.message_for(0)
    assert "part" not in message.title and "… and 21 more events" in message.body
    assert within(sms, message.title, message.body)


def test_a_url_too_short_to_name_one_event_does_not_split_the_other_urls_parts() -> None:
    """The same short URL beside Discord: the parts are those Discord alone would get (the
    short URL gets each cut, with its count), not one part per event for both."""
    sms, discord = Budget(body=120, title=None), replace(DISCORD, format=BodyFormat.MARKDOWN)
    rows = storm(40)
    alone = plan(rows, 5, "https://x", {"ops": (discord,)})
    sends = plan(rows, 5, "https://x", {"ops": (sms, discord)})
    assert [len(s.items) for s in sends] == [len(s.items) for s in alone]
    assert 1 < len(sends) < 10
    seen = [uuid for s in sends for uuid in named(s.message_for(1).body)]
    assert sorted(seen) == sorted(r.transition.job_uuid or "" for r in rows)
    for send in sends:
        message = send.message_for(0)
        assert within(sms, message.title, message.body)


def test_one_event_too_long_for_a_url_leaves_only_that_event_unnamed_there() -> None:
    """An HTML URL of 600 characters takes three or four events a part; the failed job's KB
    is named with 120 ampersands, 600 characters as HTML entities: its line is too long
    alone. Taken for a URL too short for any event, it got one message naming none of 40."""
    budget = Budget(body=600, title=250, format=BodyFormat.HTML)
    rows = storm(39)
    failed = rows[-1]
    rows[-1] = replace(failed, transition=replace(failed.transition, kb_name="&" * 120))
    sends = plan(rows, 5, "https://x", {"ops": (budget,)})
    said = [re.findall(r"job-\d{4}", s.message_for(0).html) for s in sends]
    assert sorted(uuid for part in said for uuid in part) == [f"job-{k:04d}" for k in range(39)]
    assert [len(part) for part in said].count(0) == 1  # the failed job's part, its count alone
    for send in sends:
        assert within(budget, send.message_for(0).title, send.message_for(0).html)


def test_a_service_is_split_by_what_its_own_format_names_not_by_longer_html() -> None:
    """Discord gets markdown; its HTML rendering (never sent) is longer. Sized by the longest
    format, 300 events went in 22 parts of ~1,450 characters instead of 17 of ~1,900."""
    discord = replace(DISCORD, format=BodyFormat.MARKDOWN)
    rows = storm(300)
    any_format = plan(rows, 5, "https://x", {"ops": (DISCORD,)})
    sends = plan(rows, 5, "https://x", {"ops": (discord,)})
    assert len(sends) < len(any_format) * 0.85
    seen = [uuid for s in sends for uuid in named(s.message_for(0).body)]
    assert sorted(seen) == sorted(r.transition.job_uuid or "" for r in rows)
    for send in sends:
        message = send.message_for(0)
        assert within(discord, message.title, message.body) and message.left_out == 0


def test_a_size_refusals_cap_holds_for_every_part_to_that_url() -> None:
    """30 failed jobs (short names) were refused at 3,000 characters; 30 completed ones of
    long names join them. The parts of the new rows alone took the URL's 32,768 again, each
    over the 1,500 the refusal taught, and were refused in turn."""
    refused = TargetResult("JSON", "json://", False, "", 0, FailureCause.TOO_LARGE, 400, 3000)
    old = [replace(r, last_targets=(refused,)) for r in storm(29, kb_name="wiki")]
    new = [
        replace(r, id=r.id + 100, transition=replace(r.transition, kind=EventKind.COMPLETED))
        for r in storm(29, kb_name="the knowledge base of the documentation team, " * 2)
    ]
    old = [replace(r, transition=replace(r.transition, kind=EventKind.FAILED)) for r in old]
    sends = plan(old + new, 5, "https://x", {"ops": (Budget(body=32768),)})
    assert len(sends) > 1
    assert named_whole_within(sends, 1500) == 60


def test_one_long_line_first_does_not_keep_every_later_part_short() -> None:
    """The worst event's KB name is 120 asterisks (240 characters escaped): the first part to
    a 1,000-character URL holds 12 events, where 15 fit. Every later part kept that size:
    200 events went in 17 parts instead of 14."""
    budget = Budget(body=1000, title=250, format=BodyFormat.MARKDOWN)
    rows = storm(199, kb_name="kb")
    plain_parts = plan(rows, 5, "https://x", {"ops": (budget,)})
    failed = rows[-1]
    rows[-1] = replace(failed, transition=replace(failed.transition, kb_name="*" * 120))
    sends = plan(rows, 5, "https://x", {"ops": (budget,)})
    assert len(sends) <= len(plain_parts) + 1
    seen = [uuid for s in sends for uuid in named(s.message_for(0).body)]
    assert sorted(seen) == sorted(r.transition.job_uuid or "" for r in rows)


@FITS
@given(
    events=st.integers(min_value=6, max_value=80),
    chars=st.integers(min_value=300, max_value=6000),
    title_in_body=st.booleans(),
)
def test_every_event_of_a_group_is_named_once_whatever_the_urls_limit(
    events: int, chars: int, title_in_body: bool
) -> None:
    budget = Budget(body=chars, title=100, title_in_body=title_in_body)
    rows = storm(events)
    sends = plan(rows, 5, "https://x", {"ops": (budget,)})
    seen = [uuid for s in sends for uuid in named(s.message_for(0).body)]
    assert sorted(seen) == sorted(r.transition.job_uuid or "" for r in rows)
    for send in sends:
        message = send.message_for(0)
        assert within(budget, message.title, message.body)


# Text from outside at its worst: markup of every format, entities, RTL overrides, joined emoji,
# line breaks (no digits: the events are told apart by their job's `job-0042`).
PIECES = [*"ab *_`[]()<>&#|\\-.!~\n", "\u202e", "\u05d0", "👩‍👧", "&amp;", "<b>", "](javascript:x)"]
HOSTILE = st.lists(st.sampled_from(PIECES), max_size=150).map("".join)
# What a URL takes: characters (the title in the body or not) or lines (the title a line of
# them, as apprise's GNOME); its format known or not. Each takes at least one event's line.
URL_BUDGET = st.one_of(
    st.builds(
        Budget,
        body=st.integers(min_value=1200, max_value=8000),
        title=st.sampled_from([None, 250]),
        title_in_body=st.booleans(),
        format=st.sampled_from([None, *BodyFormat]),
    ),
    st.builds(
        Budget,
        title=st.sampled_from([None, 250]),
        lines=st.integers(min_value=4, max_value=40),
        format=st.sampled_from([None, *BodyFormat]),
    ),
)


@FITS
@given(
    names=st.lists(HOSTILE, min_size=6, max_size=60),
    budgets=st.lists(URL_BUDGET, min_size=1, max_size=3),
    reached_first=st.booleans(),
    refused=st.sampled_from([None, 2600, 5000]),
)
def test_every_url_of_a_route_shows_each_event_of_a_split_storm_once_within_its_limits(
    names: list[str], budgets: list[Budget], reached_first: bool, refused: int | None
) -> None:
    """Several URLs of different limits on one route, hostile KB names, rows of which half
    already reached the first URL, and the first URL's last refusal for size: each URL sees
    every event it has not had yet exactly once, in what its service shows (the title it
    takes, its lines), and every part settles exactly the rows it names."""
    too_large = TargetResult("x", "x://", False, "", 0, FailureCause.TOO_LARGE, 400, refused)
    rows = []
    for k, name in enumerate(names):
        row = replace(storm(0)[0], id=k + 1)
        t = replace(row.transition, job=Job(uuid=f"job-{k:04d}"), kb_name=name, kb_uuid=name)
        delivered = frozenset({0}) if reached_first and k % 2 else frozenset()
        targets = (too_large,) if refused is not None and k % 3 == 0 else ()
        rows.append(replace(row, transition=t, delivered=delivered, last_targets=targets))
    sends = plan(rows, 2, "https://x", {"ops": tuple(budgets)})  # 3 rows or more: grouped
    assert sorted(r.id for s in sends for r in s.items) == [r.id for r in rows]
    for index, budget in enumerate(budgets):
        if index == 0 and refused is not None and budget.body is not None:
            budget = replace(budget, body=min(budget.body, refused // 2))
        seen: list[str] = []
        for send in sends:
            if index in send.skip:
                assert all(index in r.delivered for r in send.items)
                continue
            message, mine = send.message_for(index), {r.transition.job_uuid for r in send.items}
            for fmt in [budget.format] if budget.format else list(BodyFormat):
                assert within(budget, message.title, message.body_in(fmt))
                said = re.findall(r"job-\d{4}", shown(budget, message, fmt))
                assert sorted(said) == sorted(mine)  # each of its rows once, no other
            seen += mine
        assert sorted(seen) == sorted(
            r.transition.job_uuid or "" for r in rows if index not in r.delivered
        )


# --- pacing -------------------------------------------------------------------------------


def one_send(skip: set[int]) -> Send:
    [send] = plan([item(1)], 5, "https://x")
    return replace(send, skip=frozenset(skip))


@pytest.mark.parametrize(
    ("last", "skip", "now", "interval", "wait"),
    [
        # first message to the URL: no wait
        ({}, set(), 100.0, 1.0, 0.0),
        # 0.25 s after the last one: wait the rest of the second
        ({0: 99.75}, set(), 100.0, 1.0, 0.75),
        # long ago: no wait
        ({0: 10.0}, set(), 100.0, 1.0, 0.0),
        # the busiest URL of the send decides
        ({0: 99.0, 1: 99.5}, set(), 100.0, 1.0, 0.5),
        # a URL the send skips does not hold it back
        ({0: 99.0, 1: 99.9}, {1}, 100.0, 1.0, 0.0),
        # pacing off
        ({0: 99.9}, set(), 100.0, 0.0, 0.0),
    ],
)
def test_messages_to_one_url_are_spaced_by_the_send_interval(
    last: dict[int, float], skip: set[int], now: float, interval: float, wait: float
) -> None:
    assert pace_wait(last, one_send(skip), 2, now, interval) == pytest.approx(wait)

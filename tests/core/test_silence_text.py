"""`watcher silence add` matchers and the lines that show silences, hostile text included."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from watcher.core import silence_text, status_view
from watcher.core.model import EventKind
from watcher.core.silences import Silence

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
UUID1 = "0c6b9a8e-1d2f-4a3b-9c8d-7e6f5a4b3c2d"
UUID2 = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
UUID3 = "9f3c0000-1111-4222-8333-444455556666"
KNOWN = [(UUID1, "product-docs"), (UUID2, "wiki"), (UUID3, "wiki")]
HOSTILE = "x\x1b]0;owned\x07\x1b[2J\nFAKE LINE \u202etxt.exe"
CEST = timezone(timedelta(hours=2), "CEST")


RESOLVE = [
    # every KB
    ("*", None, None),
    # a name the store knows: its uuid, the name kept for people
    ("product-docs", UUID1, "product-docs"),
    # a uuid it knows (any case): itself, shown by its name
    (UUID1.upper(), UUID1, "product-docs"),
    # a well-formed uuid not seen yet: taken as is
    ("11111111-2222-4333-8444-555555555555", "11111111-2222-4333-8444-555555555555", None),
]


@pytest.mark.parametrize(("typed", "uuid", "label"), RESOLVE)
def test_kb_is_resolved_to_a_uuid_when_the_silence_is_added(
    typed: str, uuid: str | None, label: str | None
) -> None:
    found = silence_text.resolve_kb(typed, KNOWN)
    assert found.uuid == uuid
    if label is not None:
        assert found.label == label


REFUSED_KB = [
    # a typo: the close name is suggested
    ("product-doc", "did you mean 'product-docs'?"),
    # a name two KBs share: give the uuid
    ("wiki", f"names 2 knowledge bases ({UUID2}, {UUID3})"),
    # nothing close
    ("zzz", "give its uuid"),
    # hostile text is repeated inert, on one line
    (HOSTILE, "\\x1b]0;owned\\x07"),
]


@pytest.mark.parametrize(("typed", "says"), REFUSED_KB)
def test_an_unknown_or_ambiguous_kb_is_a_clear_error(typed: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        silence_text.resolve_kb(typed, KNOWN)
    assert says in str(caught.value)
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value)


EVENTS = [
    ("*", None),
    ("failed", EventKind.FAILED),
    (" Stalled ", EventKind.STALLED),
    ("api_unreachable", EventKind.API_UNREACHABLE),
]


@pytest.mark.parametrize(("typed", "kind"), EVENTS)
def test_event_is_a_contract_word_or_star(typed: str, kind: EventKind | None) -> None:
    assert silence_text.parse_event(typed) is kind


def test_an_unknown_event_word_suggests_the_close_one() -> None:
    with pytest.raises(ValueError, match="'faild' is not an event; did you mean 'failed'"):
        silence_text.parse_event("faild")


def hostile_silence(**fields: object) -> Silence:
    base = Silence(
        id=HOSTILE,
        kb_uuid=UUID1,
        kb_label=HOSTILE,
        event=None,
        starts_at=NOW - timedelta(minutes=30),
        ends_at=NOW + timedelta(hours=2),
        created_by=HOSTILE,
        comment=HOSTILE,
        held=3,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_silence_list_shows_hostile_text_inert_and_times_in_local_time() -> None:
    lines = silence_text.table([hostile_silence()], NOW, CEST)
    assert len(lines) == 2  # a header and one row: no forged line
    assert all("\x1b" not in line and "\u202e" not in line for line in lines)
    assert "\\x1b]0;owned\\x07" in lines[1] and "\\u202e" in lines[1]
    assert "2026-12-01 16:00 CEST" in lines[1]  # 12:00 UTC + 2h, shown in CEST
    assert lines[0].split()[:4] == ["ID", "STATE", "KB", "EVENT"]


def test_status_lists_the_active_silences_inert_and_leaves_out_ended_ones() -> None:
    from tests.core.test_status_view import snapshot

    ended = hostile_silence(id="old", ends_at=NOW - timedelta(seconds=1))
    text = status_view.table(snapshot(), NOW, silences=[hostile_silence(), ended], tz=CEST)
    assert "Silences: 1 active" in text
    assert "old" not in text.split("Silences:")[1]
    assert "\x1b" not in text and "\u202e" not in text
    assert "FAKE LINE" in text and "\nFAKE LINE" not in text


def test_status_json_has_the_active_silences_with_utc_times() -> None:
    from tests.core.test_status_view import snapshot

    data = status_view.as_json(snapshot(), NOW, silences=[hostile_silence()])
    [entry] = data["silences"]
    assert entry["id"] == HOSTILE  # JSON escapes control characters by itself
    assert entry["matchers"] == {"kb": UUID1, "kb_label": HOSTILE, "event": "*"}
    assert entry["ends_at"] == "2026-12-01T14:00:00+00:00" and entry["held"] == 3
    assert entry["state"] == "active"

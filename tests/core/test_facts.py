"""What the extra reads add to alerts, table-driven: database health changes, annotations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watcher.core.facts import (
    Agent,
    DatabaseStatus,
    DataSource,
    HealthChange,
    KbFacts,
    SourceType,
    agents_by_kb,
    decode_sources,
    encode_sources,
    health_change,
    health_transition,
    with_facts,
)
from watcher.core.model import EventKind, Job
from watcher.core.state import Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KB = "kb-1"
D = DatabaseStatus
E = EventKind
SITE = DataSource("ds-site", SourceType.WEB_CRAWLER, "https://docs.example.com")
PDFS = DataSource("ds-pdfs", SourceType.SPACES, "docs-bucket/manuals")

HEALTH_CASES = [
    # first reading, online: nothing to say
    (None, D.ONLINE, HealthChange.NONE),
    # first reading, powered off: unhealthy
    (None, D.POWEROFF, HealthChange.UNHEALTHY),
    # online, then unhealthy
    (D.ONLINE, D.UNHEALTHY, HealthChange.UNHEALTHY),
    # still unhealthy, in another word: no second event
    (D.POWEROFF, D.REBUILDING, HealthChange.NONE),
    # back online after a spell
    (D.RESIZING, D.ONLINE, HealthChange.RECOVERED),
    # online again and again: nothing
    (D.ONLINE, D.ONLINE, HealthChange.NONE),
    # a word nobody knows yet never raises an alert
    (D.ONLINE, D.UNKNOWN, HealthChange.NONE),
    # nor ends one: the spell goes on until a known word says otherwise
    (D.POWEROFF, D.UNKNOWN, HealthChange.NONE),
    # an unknown word before ONLINE: nothing had been alerted, nothing to recover
    (D.UNKNOWN, D.ONLINE, HealthChange.NONE),
]


@pytest.mark.parametrize(("before", "after", "expected"), HEALTH_CASES)
def test_only_a_known_change_of_health_is_an_event(
    before: DatabaseStatus | None, after: DatabaseStatus, expected: HealthChange
) -> None:
    assert health_change(before, after) is expected


def test_a_health_event_has_a_deterministic_id_per_spell() -> None:
    """The same reading recorded twice (a crash between event and stored status) is one event."""
    first = health_transition(KB, "docs", HealthChange.UNHEALTHY, "POWEROFF", NOW, 3)
    again = health_transition(KB, "docs", HealthChange.UNHEALTHY, "POWEROFF", NOW, 3)
    assert first is not None and first == again
    assert (first.kind, first.event_id) == (
        E.DATABASE_UNHEALTHY,
        f"database/{KB}/database_unhealthy/3",
    )
    assert health_transition(KB, "docs", HealthChange.NONE, "ONLINE", NOW, 3) is None


def event(kind: EventKind, sources: tuple[str, ...] = ()) -> Transition:
    job = Job("job-1", KB, data_source_uuids=sources)
    return Transition(f"job-1/{kind}", kind, NOW, kb_uuid=KB, kb_name="docs", job=job)


FACTS = KbFacts(sources=(SITE, PDFS), database=D.POWEROFF, agents=("sales-bot", "support-bot"))
BOTH = (
    ("ds-site", "web crawler https://docs.example.com"),
    ("ds-pdfs", "Spaces docs-bucket/manuals"),
)
ANNOTATE_CASES = [
    # a failure names every source, the database that is off, the agents it feeds
    (event(E.FAILED), FACTS, BOTH, "POWEROFF", ("sales-bot", "support-bot")),
    # a job of one source names only that source
    (event(E.PARTIAL, ("ds-pdfs",)), FACTS, BOTH[1:], "POWEROFF", ("sales-bot", "support-bot")),
    # a stall names the agents too
    (event(E.STALLED), FACTS, BOTH, "POWEROFF", ("sales-bot", "support-bot")),
    # a completed job names its sources, nothing about the database or agents
    (event(E.COMPLETED), FACTS, BOTH, None, ()),
    # an online database is not mentioned
    (event(E.FAILED), KbFacts(sources=(SITE,), database=D.ONLINE), BOTH[:1], None, ()),
    # nothing known yet: the alert is as before
    (event(E.FAILED), KbFacts(), (), None, ()),
]


@pytest.mark.parametrize(("t", "facts", "sources", "database", "agents"), ANNOTATE_CASES)
def test_alerts_carry_what_is_known_of_their_knowledge_base(
    t: Transition,
    facts: KbFacts,
    sources: tuple[tuple[str, str], ...],
    database: str | None,
    agents: tuple[str, ...],
) -> None:
    (annotated,) = with_facts([t], {KB: facts})
    assert (annotated.source_names, annotated.database_status, annotated.agents) == (
        sources,
        database,
        agents,
    )


def test_an_unknown_database_word_is_shown_as_the_api_wrote_it() -> None:
    facts = KbFacts(database=D.UNKNOWN, database_raw="HIBERNATING")
    (annotated,) = with_facts([event(E.FAILED)], {KB: facts})
    assert annotated.database_status == "HIBERNATING"


def test_sources_survive_the_store_and_a_damaged_entry_is_left_out() -> None:
    assert decode_sources(encode_sources([SITE, PDFS])) == (SITE, PDFS)
    assert decode_sources('[["ds", "NOPE", "x"], 3, ["only-two", "S3"]]') == (
        DataSource("ds", SourceType.UNKNOWN, "x"),
    )
    assert decode_sources("not json") == ()


def test_agents_are_listed_per_knowledge_base_by_name() -> None:
    agents = [Agent("a1", "support-bot", (KB,)), Agent("a2", "sales-bot", (KB, "kb-2"))]
    assert agents_by_kb(agents) == {KB: ("sales-bot", "support-bot"), "kb-2": ("sales-bot",)}

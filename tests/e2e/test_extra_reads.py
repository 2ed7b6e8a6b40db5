"""End to end, with real delivery to loopback receivers: what the extra reads add to alerts.

- names, not uuids: a failed alert names each data source by what a person recognises, and a
  KB's sources are read again when a new job starts;
- database health: `database_unhealthy` when a KB's database is not ONLINE, the failure
  alerts of that KB say so, `database_recovered` when it is back; an unknown word is survived;
- impact: failure and stall alerts name the agents the KB feeds;
- the budget: the extra reads stay within their share, and a share of 0 turns them off.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import HarnessFactory
from tests.harness import CHAT, HOOK, MAIL, Receivers, route, simulator

KB_DATA_SOURCES = "/data_sources"
SCENARIO: dict[str, Any] = {
    "knowledge_bases": [
        {
            "key": "docs",
            "name": "product-docs",
            "data_sources": [
                {"key": "site", "items": 40, "kind": "web", "where": "https://docs.example.com"},
                {"key": "manuals", "items": 20, "kind": "spaces", "where": "docs-bucket/manuals/"},
            ],
            "history": [{"ago": 7200, "run": 120, "outcome": "completed"}],
        },
        {
            "key": "archive",
            "name": "archive",
            "data_sources": [
                {"key": "handbook", "items": 3, "kind": "file", "where": "handbook.pdf"}
            ],
            "history": [{"ago": 7200, "run": 120, "outcome": "completed"}],
        },
    ],
    "agents": [
        {"key": "support", "name": "support-bot", "knowledge_bases": ["docs"]},
        {"key": "sales", "name": "sales-bot", "knowledge_bases": ["docs", "archive"]},
    ],
    "timeline": [
        {"at": -10, "database": {"kb": "docs", "status": "POWEROFF"}},
        {
            "at": 12,
            "start_job": {
                "kb": "docs",
                "id": "docs-fails",
                "data_sources": ["site"],
                "pending": 1,
                "run": 4,
                "outcome": "failed",
                "error_msg": "CRAWL_ERROR",
                "error_details": "the site answered 503",
            },
        },
        {"at": 30, "start_job": {"kb": "archive", "id": "archive-ok", "pending": 1, "run": 4}},
        {"at": 600, "database": {"kb": "docs", "status": "ONLINE"}},
        {"at": 700, "database": {"kb": "archive", "status": "HIBERNATING"}},
    ],
}
EVENTS = ["failed", "completed", "database_unhealthy", "database_recovered"]


async def test_failure_alerts_name_sources_agents_and_an_unhealthy_database(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(SCENARIO)
    urls = receivers.urls()
    routes = [route(HOOK, urls[HOOK], EVENTS), route(MAIL, urls[MAIL], EVENTS)]
    harness = await make_harness(sim, routes)

    await harness.cycle()  # first run: sources, database, agent list within the share
    await harness.run(30, every=5)  # the agents' own reads; the docs job fails at t=17

    for channel in (HOOK, MAIL):
        alerts = receivers.alerts(channel)
        assert [(a.kind, a.subject) for a in alerts][:2] == [
            ("database_unhealthy", "product-docs"),
            ("failed", "product-docs"),
        ]
        unhealthy, failed = alerts[0], alerts[1]
        assert "Database: POWEROFF" in unhealthy.body
        assert "web crawler https://docs.example.com" in failed.body
        assert "Database: POWEROFF (the knowledge base's database is not online)" in failed.body
        assert "Feeds agents: sales-bot, support-bot" in failed.body
        assert "Spaces" not in failed.body  # the job read only the crawler


async def test_a_database_back_online_is_alerted_and_an_unknown_word_is_survived(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(SCENARIO)
    harness = await make_harness(sim, [route(HOOK, receivers.urls()[HOOK], EVENTS)])

    await harness.cycle()
    await harness.run(3600, every=300)  # the database reads come every 30 minutes

    kinds = [a.kind for a in receivers.alerts(HOOK) if a.subject == "product-docs"]
    assert kinds.count("database_unhealthy") == 1 and kinds.count("database_recovered") == 1
    assert all(a.subject != "archive" for a in receivers.alerts(HOOK) if "database" in a.kind)
    unknown = [e for e in harness.logs if e.get("event") == "api_unknown_value"]
    assert [e["value"] for e in unknown] == ["HIBERNATING"]


async def test_a_kbs_data_sources_are_read_again_when_a_new_job_starts(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(SCENARIO)
    harness = await make_harness(sim, [route(HOOK, receivers.urls()[HOOK], EVENTS)])

    await harness.cycle()
    await harness.run(10, every=5)
    docs = f"/v2/gen-ai/knowledge_bases/{sim.kb_uuid('docs')}{KB_DATA_SOURCES}"
    before = [r for r in harness.requests_since(0) if r.endswith(docs)]
    await harness.run(20, every=5)  # the docs job starts at t=12: its sources are read again
    after = [r for r in harness.requests_since(0) if r.endswith(docs)]

    assert (len(before), len(after)) == (1, 2)


async def test_a_share_of_zero_makes_no_extra_read_and_alerts_stay_as_before(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(SCENARIO)
    harness = await make_harness(
        sim, [route(CHAT, receivers.urls()[CHAT], EVENTS)], api={"extra_reads_share": "0%"}
    )

    await harness.cycle()
    await harness.run(30, every=5)

    paths = harness.requests_since(0)
    assert not [p for p in paths if "/agents" in p or p.endswith(KB_DATA_SOURCES)]
    (failed,) = [a for a in receivers.alerts(CHAT) if a.kind == "failed"]
    assert "Feeds agents" not in failed.body and "Database:" not in failed.body


async def test_status_shows_each_kbs_sources_by_name_and_an_unhealthy_database(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(SCENARIO)
    harness = await make_harness(sim, [route(HOOK, receivers.urls()[HOOK], EVENTS)])

    await harness.cycle()
    status = await harness.status_json()

    by_name = {kb["name"]: kb for kb in status["knowledge_bases"]}
    assert by_name["product-docs"]["sources"] == [
        {"uuid": sim.world.kb_sources(sim.kb_uuid("docs"), sim.now())[0]["uuid"],
         "type": "web crawler", "where": "https://docs.example.com"},
        {"uuid": sim.world.kb_sources(sim.kb_uuid("docs"), sim.now())[1]["uuid"],
         "type": "Spaces", "where": "docs-bucket/manuals"},
    ]  # fmt: skip
    assert by_name["product-docs"]["database_status"] == "POWEROFF"
    assert [s["where"] for s in by_name["archive"]["sources"]] == ["handbook.pdf"]


async def test_an_alert_tells_the_database_as_last_read_not_as_first_read(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    """The facts an alert carries are decoded once and kept while no read changes them: a
    read that does change them (the database back ONLINE at t=600, read within 30 minutes)
    shows in the next failure's alert."""
    late = {"kb": "docs", "id": "docs-fails-late", "pending": 1, "run": 4, "outcome": "failed"}
    scenario = {**SCENARIO, "timeline": [*SCENARIO["timeline"], {"at": 2700, "start_job": late}]}
    sim = simulator(scenario)
    harness = await make_harness(sim, [route(HOOK, receivers.urls()[HOOK], EVENTS)])

    await harness.cycle()
    await harness.run(3000, every=300)

    failed = [a for a in receivers.alerts(HOOK) if a.kind == "failed"]
    assert [a.job_uuid for a in failed] == [
        sim.job_uuid("docs-fails"),
        sim.job_uuid("docs-fails-late"),
    ]
    assert "Database: POWEROFF" in failed[0].body
    assert "Database: POWEROFF" not in failed[1].body

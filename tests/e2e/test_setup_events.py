"""End to end: a watched knowledge base the account does not list is alerted once through
real delivery, to the routes that asked for it, and once more when it appears."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import HarnessFactory
from tests.harness import CHAT, HOOK, MAIL, Receivers, route, simulator

# "late" is created 30 s into the run (as if the operator's uuid was right all along but the
# knowledge base was made afterwards); a job runs on it from t=40 to about t=50.
SCENARIO: dict[str, Any] = {
    "knowledge_bases": [
        {"key": "docs", "name": "docs-kb", "data_sources": [{"key": "s", "items": 10}]},
        {
            "key": "late",
            "name": "late-kb",
            "created": 30,
            "data_sources": [{"key": "s", "items": 10}],
        },
    ],
    "timeline": [
        {
            "at": 40,
            "start_job": {"kb": "late", "id": "late-1", "pending": 1, "run": 5},
        }
    ],
}
SETUP = ["knowledge_base_missing", "knowledge_base_found"]


async def test_a_missing_kb_is_alerted_once_to_its_routes_and_found_once_when_it_appears(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(SCENARIO)
    urls = receivers.urls()
    routes = [
        route(HOOK, urls[HOOK], ["*"]),
        route(CHAT, urls[CHAT], ["*"], ["docs"]),  # another KB's route hears nothing of it
        route(MAIL, urls[MAIL], [*SETUP, "completed"], ["legal"]),  # by configured name
    ]
    harness = await make_harness(sim, routes)
    harness.overrides["knowledge_bases"] = [
        {"uuid": sim.kb_uuid("docs"), "name": "docs"},
        {"uuid": sim.kb_uuid("late"), "name": "legal"},
    ]

    await harness.cycle()
    await harness.run(20, every=10)
    await harness.restart()  # a restart neither forgets it nor alerts it again
    await harness.step(5)
    missing_only = receivers.kinds(HOOK), receivers.kinds(MAIL)
    await harness.run(30, every=5)  # t=55: it appeared at 30, its job ran 40..46

    assert missing_only == (["knowledge_base_missing"], ["knowledge_base_missing"])
    for name in (HOOK, MAIL):
        alerts = receivers.alerts(name)
        assert [(a.kind, a.subject) for a in alerts][:2] == [
            ("knowledge_base_missing", "legal"),
            ("knowledge_base_found", "legal"),
        ]
        assert alerts[0].mentions(sim.kb_uuid("late"))
        assert "Not found in the account since" in alerts[0].body
    assert receivers.kinds(MAIL)[2:] == ["completed"]
    assert receivers.kinds(CHAT) == []

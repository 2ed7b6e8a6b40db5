"""End to end: jobs on the simulated API become exactly the alerts each route asked for.

Each test drives the simulator's manual clock and the real runtime cycle by cycle (see
`conftest`), and reads what a JSON webhook, a Mattermost hook and an SMTP server received.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.e2e.conftest import HarnessFactory
from tests.harness import CHAT, HOOK, MAIL, Alert, Harness, Receivers, route, simulator
from watcher.core.model import EventKind
from watcher.simulator import Fault, FaultKind, Simulator

OUTCOMES = [k.value for k in EventKind if k.is_terminal]


def _kb(key: str, name: str, items: tuple[int, ...] = (20,), **extra: Any) -> dict[str, Any]:
    sources = [{"key": f"{key}-src{i}", "items": n} for i, n in enumerate(items)]
    return {"key": key, "name": name, "data_sources": sources, **extra}


def _job(kb: str, at: float, **plan: Any) -> dict[str, Any]:
    return {"at": at, "start_job": {"kb": kb, "id": f"{kb}-job", **plan}}


def tally(alerts: list[Alert]) -> Counter[tuple[str, str]]:
    """(event kind, KB name) of each alert, counted."""
    return Counter((alert.kind, alert.subject) for alert in alerts)


def plain(text: str) -> str:
    """Alert text without markdown escapes and line breaks, for looking up API strings."""
    return " ".join(text.replace("\\", "").split())


# Six KBs, one job each, every outcome of the contract; the jobs run between t=5 and t=15
# (the cancelled one is cancelled at t=12) and the watcher polls every 10 s from t=0.
OUTCOME_SCENARIO: dict[str, Any] = {
    "knowledge_bases": [
        _kb("done", "done-kb", history=[{"ago": 7200, "outcome": "completed"}]),
        _kb("same", "same-kb"),
        _kb("gaps", "gaps-kb", (20, 20, 10)),
        _kb("broken", "broken-kb"),
        _kb("crashed", "crashed-kb"),
        _kb("stopped", "stopped-kb"),
    ],
    "timeline": [
        _job("done", 5, pending=2, run=8, outcome="completed"),
        _job("same", 5, pending=2, run=8, outcome="no_changes"),
        _job(
            "gaps",
            5,
            pending=2,
            run=8,
            outcome="partial",
            error_msg="file_parse_error",
            error_details="scan-042.pdf is not a PDF",
        ),
        _job(
            "broken",
            5,
            pending=2,
            run=8,
            outcome="failed",
            error_msg="crawl_blocked",
            error_details="the site answered 403 Forbidden",
        ),
        _job(
            "crashed",
            5,
            pending=2,
            run=8,
            outcome="error",
            error_msg="internal_error",
            error_details="the embedding service did not answer",
        ),
        _job("stopped", 5, pending=2, run=60, outcome="completed"),
        {"at": 12, "cancel_job": "stopped-job"},
    ],
}


async def _outcome_harness(make_harness: HarnessFactory, receivers: Receivers) -> Harness:
    sim = simulator(OUTCOME_SCENARIO)
    urls = receivers.urls()
    routes = [
        route(HOOK, urls[HOOK], OUTCOMES),
        route(MAIL, urls[MAIL], ["failed", "partial"]),
        # by name for one KB, by uuid for the other
        route(CHAT, urls[CHAT], ["started", "completed", "cancelled", "failed"],
              ["done-kb", sim.kb_uuid("crashed")]),
    ]  # fmt: skip
    # six outcomes land in one cycle: keep them below the storm threshold to see each alert
    return await make_harness(sim, routes, delivery={"storm_threshold": 10})


async def test_each_outcome_is_alerted_once_to_each_route_that_asked_for_it_and_no_other(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    harness = await _outcome_harness(make_harness, receivers)
    await harness.cycle()
    await harness.run(60, every=10)

    assert tally(receivers.alerts(HOOK)) == Counter(
        {
            ("completed", "done-kb"): 1,
            ("no_changes", "same-kb"): 1,
            ("partial", "gaps-kb"): 1,
            ("failed", "broken-kb"): 1,
            ("failed", "crashed-kb"): 1,
            ("cancelled", "stopped-kb"): 1,
        }
    )
    assert tally(receivers.alerts(MAIL)) == Counter(
        {("partial", "gaps-kb"): 1, ("failed", "broken-kb"): 1, ("failed", "crashed-kb"): 1}
    )
    assert tally(receivers.alerts(CHAT)) == Counter(
        {
            ("started", "done-kb"): 1,
            ("completed", "done-kb"): 1,
            ("started", "crashed-kb"): 1,
            ("failed", "crashed-kb"): 1,
        }
    )
    # once everything is over, a poll costs one request: the KB list (one page)
    mark = len(harness.sim.requests)
    await harness.step(10)
    assert harness.requests_since(mark) == ["GET /v2/gen-ai/knowledge_bases"]


async def test_every_alert_names_its_job_and_failures_carry_the_api_error_texts(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    harness = await _outcome_harness(make_harness, receivers)
    await harness.cycle()
    await harness.run(30, every=10)
    sim = harness.sim
    job_of = {
        f"{key}-kb": sim.job_uuid(f"{key}-job")
        for key in ("done", "same", "gaps", "broken", "crashed", "stopped")
    }
    errors = {
        "gaps-kb": ("file_parse_error", "scan-042.pdf is not a PDF"),
        "broken-kb": ("crawl_blocked", "the site answered 403 Forbidden"),
        "crashed-kb": ("internal_error", "the embedding service did not answer"),
    }

    for name in (HOOK, MAIL, CHAT):
        for alert in receivers.alerts(name):
            body = plain(alert.body)
            assert job_of[alert.subject] in body, (name, alert)
            assert f"Knowledge base: {alert.subject}" in body, (name, alert)
            if alert.kind in ("failed", "partial"):
                for text in errors[alert.subject]:
                    assert text in body, (name, alert.title, text)
    crashed = [a for a in receivers.alerts(HOOK) if a.subject == "crashed-kb"]
    assert "Outcome: failed (phase error)" in plain(crashed[0].body)
    broken = [a for a in receivers.alerts(HOOK) if a.subject == "broken-kb"]
    assert "Outcome: failed (phase failed)" in plain(broken[0].body)


def _report_read(request: str) -> bool:
    return request.endswith("/details_signed_url") or " /_spaces/" in request


async def test_jobs_that_start_and_finish_between_two_polls_are_each_alerted(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(
        {
            "knowledge_bases": [
                _kb("rel", "release-notes", history=[{"ago": 3600, "run": 40}]),
                _kb("other", "other-kb", history=[{"ago": 7200, "run": 40}]),
            ],
            "timeline": [
                {"at": 2, "start_job": {"kb": "rel", "id": "q1", "pending": 0.3, "run": 1.5}},
                {
                    "at": 5,
                    "start_job": {
                        "kb": "rel",
                        "id": "q2",
                        "pending": 0.3,
                        "run": 1.2,
                        "outcome": "no_changes",
                    },
                },
            ],
        }
    )
    harness = await make_harness(sim, [route(HOOK, receivers.hook.url_json(), ["*"])])
    await harness.cycle()
    mark = len(sim.requests)
    await harness.step(10)

    by_kind = {alert.kind: alert for alert in receivers.alerts(HOOK)}
    assert tally(receivers.alerts(HOOK)) == Counter(
        {("completed", "release-notes"): 1, ("no_changes", "release-notes"): 1}
    )
    assert sim.job_uuid("q1") in by_kind["completed"].body
    assert sim.job_uuid("q2") in by_kind["no_changes"].body
    # the KB list showed only q2; the KB's latest-15 list revealed q1 (one request, once);
    # each finished job's per-file report is read besides (its signed URL, then the file)
    polling = [r for r in harness.requests_since(mark) if not _report_read(r)]
    assert polling == [
        "GET /v2/gen-ai/knowledge_bases",
        f"GET /v2/gen-ai/knowledge_bases/{sim.kb_uuid('rel')}/indexing_jobs",
    ]
    await harness.run(30, every=10)
    assert len(receivers.alerts(HOOK)) == 2


async def test_a_stall_is_alerted_once_and_its_recovery_once(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(
        {
            "knowledge_bases": [_kb("wiki", "engineering-wiki", (100,))],
            "timeline": [
                _job("wiki", 5, pending=1, run=30, stalls=[{"after": 5, "for": 200}]),
            ],
        }
    )
    harness = await make_harness(sim, [route(HOOK, receivers.hook.url_json(), ["*"])])
    await harness.cycle()
    kinds_after: list[list[str]] = []
    for _ in range(13):  # t = 20 ... 260, every 20 s
        await harness.step(20)
        kinds_after.append(receivers.kinds(HOOK))

    # progress froze at t=11: stalled is due at 71 (seen at t=80); it moves again at 211
    # (seen at t=220) and finishes at 236 (seen at t=240)
    assert kinds_after[0] == ["started"]
    assert kinds_after[2] == ["started"]
    assert kinds_after[3] == ["started", "stalled"]
    assert kinds_after[9] == ["started", "stalled"]
    assert kinds_after[10] == ["started", "stalled", "recovered"]
    assert kinds_after[-1] == ["started", "stalled", "recovered", "completed"]
    stalled = receivers.alerts(HOOK)[1]
    assert "(no progress)" in stalled.body
    assert sim.job_uuid("wiki-job") in stalled.body


async def test_a_stalled_job_that_then_finishes_gives_one_message_for_its_outcome(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    """The issue's case: `stalled`, then `recovered` and `completed` in one cycle were three
    messages. Now the outcome says it had stalled and for how long; a route that asked for
    `recovered` but not for `completed` gets `recovered` alone, titled as an ending."""
    sim = simulator(
        {
            "knowledge_bases": [_kb("wiki", "engineering-wiki", (100,))],
            "timeline": [
                _job("wiki", 5, pending=1, run=30, stalls=[{"after": 29, "for": 200}]),
            ],
        }
    )
    urls = receivers.urls()
    harness = await make_harness(
        sim,
        [
            route(HOOK, urls[HOOK], ["*"]),
            route(CHAT, urls[CHAT], ["stalled", "recovered", "failed"]),
        ],
    )
    await harness.cycle()
    await harness.run(120, every=20)  # progress froze at t=35: stalled seen at t=100
    assert receivers.kinds(HOOK) == ["started", "stalled"]
    # The stall ends with the job (t=236): it moves and finishes between two polls.
    await harness.run(140, every=20)

    assert receivers.kinds(HOOK) == ["started", "stalled", "completed"]
    completed = receivers.alerts(HOOK)[-1]
    assert "It had stalled (no progress); nothing had moved for " in completed.body
    assert completed.body.count("It had stalled") == 1
    # CHAT heard the stall (an incident) and hears of the job's ending by `recovered`: the
    # resolving `completed` is not sent to it on top (send_resolved keeps one message)
    assert [alert.title for alert in receivers.alerts(CHAT)] == [
        "⚠️ engineering-wiki: indexing stalled",
        "✅ engineering-wiki: indexing finished after a stall",
    ]


async def test_a_job_pending_past_pending_after_is_alerted_stalled_once(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(
        {
            "knowledge_bases": [_kb("onb", "onboarding-guides")],
            "timeline": [_job("onb", 5, pending=None)],
        }
    )
    harness = await make_harness(
        sim, [route(HOOK, receivers.hook.url_json(), ["started", "stalled", "recovered"])]
    )
    await harness.cycle()
    await harness.run(100, every=20)
    assert receivers.kinds(HOOK) == ["started"]
    await harness.run(300, every=20)  # pending_after = 120 s from t=5

    alerts = receivers.alerts(HOOK)
    assert [a.kind for a in alerts] == ["started", "stalled"]
    assert "(still pending)" in alerts[1].body
    assert "Outcome: pending (phase pending)" in plain(alerts[1].body)


async def test_the_first_run_over_a_busy_account_alerts_only_running_jobs_then_their_outcomes(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    history = [
        {"ago": 86400 * 3, "outcome": "failed"},
        {"ago": 86400 * 2, "outcome": "partial"},
        {"ago": 86400, "outcome": "completed"},
    ]
    sim = simulator(
        {
            "knowledge_bases": [
                _kb("a", "archive-kb", history=history),
                _kb("b", "busy-kb", history=history[:2]),
                _kb("c", "crawl-kb", history=history[1:]),
                _kb("d", "docs-kb", history=[{"ago": 30, "run": 20, "outcome": "failed"}]),
                _kb("e", "empty-kb"),
            ],
            "timeline": [
                _job("b", -40, pending=5, run=60, outcome="completed"),
                _job("c", -20, pending=50, run=10, outcome="failed"),
            ],
        }
    )
    urls = receivers.urls()
    routes = [route(HOOK, urls[HOOK], ["*"]), route(MAIL, urls[MAIL], ["failed", "partial"])]
    harness = await make_harness(sim, routes)
    first = await harness.cycle()

    # finished jobs (failed and partial ones too, even one that ended 10 s ago) stay silent
    assert first.ok and first.knowledge_bases == 5
    assert tally(receivers.alerts(HOOK)) == Counter(
        {("started", "busy-kb"): 1, ("started", "crawl-kb"): 1}
    )
    assert receivers.alerts(MAIL) == []
    await harness.run(60, every=10)
    assert tally(receivers.alerts(HOOK)) == Counter(
        {
            ("started", "busy-kb"): 1,
            ("started", "crawl-kb"): 1,
            ("completed", "busy-kb"): 1,
            ("failed", "crawl-kb"): 1,
        }
    )
    assert tally(receivers.alerts(MAIL)) == Counter({("failed", "crawl-kb"): 1})


async def test_storm_control_groups_a_routes_events_of_one_cycle_into_one_message(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    names = [f"storm-{i}" for i in range(6)]
    sim = simulator(
        {
            "knowledge_bases": [_kb(f"k{i}", name) for i, name in enumerate(names)],
            "timeline": [
                _job(f"k{i}", 2, pending=1, run=3, outcome="failed" if i == 0 else "completed")
                for i in range(6)
            ],
        }
    )
    urls = receivers.urls()
    routes = [route(HOOK, urls[HOOK], ["*"]), route(MAIL, urls[MAIL], ["failed"])]
    harness = await make_harness(sim, routes, delivery={"storm_threshold": 4})
    await harness.cycle()
    await harness.step(10)

    (digest,) = receivers.alerts(HOOK)
    assert digest.kind == "group"
    assert digest.title.startswith("❌ 6 indexing events")  # the worst severity leads
    body = plain(digest.body)
    for i, name in enumerate(names):
        assert name in body
        assert sim.job_uuid(f"k{i}-job") in body
    assert body.count(": completed") == 5 and body.count(": failed") == 1
    # the other route had one event: below the threshold, it gets the ordinary alert
    assert [(a.kind, a.subject) for a in receivers.alerts(MAIL)] == [("failed", "storm-0")]
    await harness.run(30, every=10)
    assert len(receivers.alerts(HOOK)) == 1


# --- a misbehaving API ---------------------------------------------------------------------

RUNNING_THEN_PARTIAL: dict[str, Any] = {
    "knowledge_bases": [
        _kb("sup", "support-articles", (40, 40, 20), history=[{"ago": 3600}]),
        _kb("quiet", "quiet-kb", history=[{"ago": 3600}]),
    ],
    "timeline": [_job("sup", 5, pending=1, run=20, outcome="partial")],
}


async def _running_job(make_harness: HarnessFactory, receivers: Receivers) -> Harness:
    """A watcher that has seen support-articles' job start; the job ends (partial) at t=26."""
    sim = simulator(RUNNING_THEN_PARTIAL)
    urls = receivers.urls()
    routes = [route(HOOK, urls[HOOK], ["*"]), route(MAIL, urls[MAIL], ["partial", "failed"])]
    harness = await make_harness(sim, routes)
    await harness.cycle()
    await harness.step(10)
    assert receivers.kinds(HOOK) == ["started"]
    return harness


async def _unknown_values_then_truth(harness: Harness, receivers: Receivers) -> None:
    for _ in range(4):  # t = 20 ... 50: the job ends at 26 while the answers are broken
        report = await harness.step(10)
        assert report.ok, report.error
    assert receivers.kinds(HOOK) == ["started"]
    assert receivers.alerts(MAIL) == []
    harness.sim.clear_faults()
    await harness.run(30, every=10)
    assert receivers.kinds(HOOK) == ["started", "partial"]
    assert receivers.kinds(MAIL) == ["partial"]


async def test_unknown_enum_values_raise_no_alert_and_the_real_outcome_follows(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    harness = await _running_job(make_harness, receivers)
    # BATCH_JOB_PHASE_COMPLETED / INDEX_JOB_STATUS_QUEUED are not in the spec's enums
    harness.sim.inject(Fault(FaultKind.UNKNOWN_ENUM, count=None))
    await _unknown_values_then_truth(harness, receivers)


async def test_missing_state_fields_raise_no_alert_and_the_real_outcome_follows(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    harness = await _running_job(make_harness, receivers)
    harness.sim.inject(Fault(FaultKind.MISSING_FIELDS, count=None))
    await _unknown_values_then_truth(harness, receivers)


async def test_a_429_burst_and_503s_during_a_cycle_are_retried_and_the_outcome_alerted(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    harness = await _running_job(make_harness, receivers)
    harness.sim.advance(20)  # the job ends at t=26
    # four bad answers in a row: the client's fifth and last attempt gets through
    harness.sim.inject(Fault(FaultKind.RATE_LIMITED, count=2, retry_after=2))
    harness.sim.inject(Fault(FaultKind.SERVER_ERROR, status=503, count=2))
    mark = len(harness.sim.requests)
    report = await harness.cycle()

    assert report.ok, report.error
    assert receivers.kinds(HOOK) == ["started", "partial"]
    assert receivers.kinds(MAIL) == ["partial"]
    statuses = [r.status for r in harness.sim.requests[mark:]]
    assert statuses[:5] == [429, 429, 503, 503, 200]
    assert harness.api_waits[:2] == [2.0, 2.0]  # retry-after honoured


def _token_revoked(sim: Simulator) -> None:
    sim.token = "dop_v1_" + "0" * 64


async def test_api_unreachable_is_alerted_once_after_the_threshold_and_api_recovered_once(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(RUNNING_THEN_PARTIAL)
    urls = receivers.urls()
    routes = [
        route(HOOK, urls[HOOK], ["api_unreachable", "api_recovered", "partial"]),
        route(MAIL, urls[MAIL], ["api_unreachable"], ["quiet-kb"]),  # KB filters do not apply
        route(CHAT, urls[CHAT], ["partial", "failed"]),
    ]
    harness = await make_harness(sim, routes)
    await harness.cycle()
    real_token = sim.token
    _token_revoked(sim)  # every request now answers 401

    for _ in range(3):  # t = 10, 20, 30: failing for 0, 10, 20 s (threshold 30 s)
        report = await harness.step(10)
        assert not report.ok and report.error is not None and "401" in report.error
    assert receivers.alerts(HOOK) == []
    for _ in range(4):  # t = 40 ... 70; the job ends (partial) at t=26 meanwhile
        await harness.step(10)
    assert receivers.kinds(HOOK) == ["api_unreachable"]
    assert receivers.kinds(MAIL) == ["api_unreachable"]
    assert "HTTP 401" in plain(receivers.alerts(HOOK)[0].body)
    assert receivers.alerts(CHAT) == []

    sim.token = real_token
    await harness.run(40, every=10)
    assert Counter(receivers.kinds(HOOK)) == Counter(
        ["api_unreachable", "api_recovered", "partial"]
    )
    assert receivers.kinds(MAIL) == ["api_unreachable"]
    assert receivers.kinds(CHAT) == ["partial"]


async def test_a_stopped_api_server_is_alerted_unreachable_and_recovered_when_it_returns(
    make_harness: HarnessFactory, receivers: Receivers
) -> None:
    sim = simulator(RUNNING_THEN_PARTIAL)
    urls = receivers.urls()
    routes = [route(HOOK, urls[HOOK], ["api_unreachable", "api_recovered", "partial"])]
    harness = await make_harness(sim, routes)
    await harness.cycle()
    await harness.unserve()

    reports = await harness.run(60, every=10)
    assert not any(r.ok for r in reports)
    assert receivers.kinds(HOOK) == ["api_unreachable"]
    await harness.serve()
    await harness.run(30, every=10)
    assert Counter(receivers.kinds(HOOK)) == Counter(
        ["api_unreachable", "api_recovered", "partial"]
    )

"""The page and its JSON API over a real store: what they list, how they page, and each error."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from tests.edges.web.conftest import Host, Serve
from tests.edges.web.history import NOW, KbPlan, job_uuid, settle, write_history
from watcher.core.incident import Ack, Incident
from watcher.core.model import EventKind
from watcher.core.outbox import DeliveryState
from watcher.core.silences import Held
from watcher.core.state import Change
from watcher.edges.store.sqlite import SqliteStore

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000002"
C = "cccccccc-0000-4000-8000-000000000003"
PLANS = [
    KbPlan(A, "alpha-docs", ["completed", "failed", "completed", "partial"]),
    KbPlan(B, "beta-wiki", ["completed", "completed", "running"]),
    KbPlan(C, "gamma-notes", ["failed", "stalled"], spacing=timedelta(hours=3)),
]


async def _history(store: SqliteStore) -> None:
    await write_history(store, PLANS, routes=("ops", "mail"))


async def test_the_api_lists_each_knowledge_base_with_its_state_latest_job_and_last_outcomes(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    await _history(store)
    body = (await client.get(await serve() + "/api/v1/knowledge_bases")).json()
    rows = {kb["name"]: kb for kb in body["items"]}
    assert [kb["name"] for kb in body["items"]] == ["alpha-docs", "beta-wiki", "gamma-notes"]
    assert {name: kb["state"] for name, kb in rows.items()} == {
        "alpha-docs": "partial",
        "beta-wiki": "running",
        "gamma-notes": "stalled",
    }
    alpha = rows["alpha-docs"]
    assert [p["state"] for p in alpha["recent"]] == ["completed", "failed", "completed", "partial"]
    latest = alpha["latest_job"]
    assert latest["uuid"] == job_uuid(A, 3)
    assert latest["progress"] == {"completed": 2, "total": 2}
    assert latest["tokens"] == 4000
    assert latest["duration_s"] == (5 + 3) * 60
    assert alpha["age_s"] == 51 * 60  # finished 9 min after its creation, an hour ago
    assert rows["gamma-notes"]["latest_job"]["stalled"] == "no_progress"
    assert rows["beta-wiki"]["latest_job"]["duration_s"] == 59 * 60  # running: to the API's now
    assert body["counts"]["total"] == 3 and body["counts"]["problems"] == 2
    assert body["next"] is None


@pytest.mark.parametrize(
    ("query", "names"),
    [
        # Problems: failed, partial, stalled, cancelled, unknown.
        ("state=problems", ["alpha-docs", "gamma-notes"]),
        # Under way: pending, running, stalled, unknown.
        ("state=active", ["beta-wiki", "gamma-notes"]),
        ("state=running", ["beta-wiki"]),
        ("state=completed", []),
        # By name, Z to A.
        ("sort=-name", ["gamma-notes", "beta-wiki", "alpha-docs"]),
        # By age: the most recently moved first (beta's running job moved at its start).
        ("sort=age", ["alpha-docs", "beta-wiki", "gamma-notes"]),
        ("sort=-age", ["gamma-notes", "beta-wiki", "alpha-docs"]),
    ],
)
async def test_knowledge_bases_filter_by_state_and_sort_by_name_or_age(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient, query: str, names: list[str]
) -> None:
    await _history(store)
    body = (await client.get(await serve() + f"/api/v1/knowledge_bases?{query}")).json()
    assert [kb["name"] for kb in body["items"]] == names


async def test_paging_follows_next_to_the_end_without_repeating_or_skipping(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    plans = [
        KbPlan(f"{i:08d}-0000-4000-8000-000000000000", f"kb-{i:02d}", ["completed"])
        for i in range(7)
    ]
    await write_history(store, plans)
    base = await serve()
    url: str | None = "/api/v1/knowledge_bases?limit=3"
    seen: list[str] = []
    while url is not None:
        body = (await client.get(base + url)).json()
        seen += [kb["name"] for kb in body["items"]]
        if len(seen) == 3:  # a knowledge base appears meanwhile, before the cursor
            await write_history(
                store, [KbPlan("00000000-aaaa-4000-8000-000000000000", "kb-00a", ["failed"])]
            )
        url = body["next"]
    assert seen == [f"kb-{i:02d}" for i in range(7)]


async def test_a_knowledge_base_shows_every_kept_job_its_jobs_newest_first_and_its_alerts(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    await _history(store)
    base = await serve()
    kb = (await client.get(base + f"/api/v1/knowledge_bases/{A}")).json()
    assert "charts" not in kb and kb["history"]["jobs"] == 4
    history = (await client.get(base + f"/api/v1/knowledge_bases/{A}/history")).json()
    assert [p["state"] for p in history["items"]] == ["completed", "failed", "completed", "partial"]
    assert [p["tokens"] for p in history["items"]] == [1000, 2000, 3000, 4000]
    jobs = (await client.get(base + f"/api/v1/knowledge_bases/{A}/jobs?limit=3")).json()
    assert [j["uuid"] for j in jobs["items"]] == [job_uuid(A, n) for n in (3, 2, 1)]
    older = (await client.get(base + jobs["next"])).json()
    assert [j["uuid"] for j in older["items"]] == [job_uuid(A, 0)] and older["next"] is None
    events = (await client.get(base + f"/api/v1/knowledge_bases/{A}/events")).json()
    assert [e["kind"] for e in events["items"]] == ["partial", "completed", "failed", "completed"]
    assert {d["route"] for d in events["items"][0]["deliveries"]} == {"ops", "mail"}


async def test_a_job_shows_its_data_sources_errors_and_each_routes_delivery(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    await _history(store)
    await settle(store, DeliveryState.SENT, limit=100)
    job = (await client.get(await serve() + f"/api/v1/jobs/{job_uuid(A, 1)}")).json()
    assert job["state"] == "failed" and job["kb_name"] == "alpha-docs"
    [bad] = [ds for ds in job["data_sources"] if ds["status"].endswith("FAILED")]
    assert bad["error_msg"] == "crawler blocked by robots.txt"
    assert bad["items"]["failed"] == 3
    [event] = job["events"]
    assert {(d["route"], d["state"]) for d in event["deliveries"]} == {
        ("ops", "sent"),
        ("mail", "sent"),
    }
    assert event["deliveries"][0]["targets"][0]["ok"] is True


async def test_deliveries_list_pending_and_dead_rows_with_reasons_ages_and_counts(
    serve: Serve, store: SqliteStore, host: Host, client: httpx.AsyncClient
) -> None:
    await _history(store)
    dead = await settle(store, DeliveryState.DEAD, limit=2, error="server error (HTTP 503)")
    host.now = NOW + timedelta(minutes=10)
    base = await serve()
    body = (await client.get(base + "/api/v1/deliveries?state=dead")).json()
    assert sorted(d["id"] for d in body["items"]) == sorted(dead)
    row = body["items"][0]
    assert row["last_error"] == "server error (HTTP 503)" and row["attempts"] == 1
    assert row["age_s"] == 600 and row["links"]["retry"].endswith(f"/{row['id']}/retry")
    assert row["targets"][0]["cause"] == "server_error" and row["targets"][0]["status"] == 503
    pending = (await client.get(base + "/api/v1/deliveries")).json()
    assert pending["state"] == "pending" and len(pending["items"]) == 14
    assert pending["counts"]["by_state"]["dead"] == 2
    assert (
        pending["counts"]["by_route"]["ops"]["pending"]
        + pending["counts"]["by_route"]["mail"]["pending"]
        == 14
    )
    assert pending["counts"]["oldest_undelivered_age_s"] == 600


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/api/v1/knowledge_bases?state=broken", 400, "state must be one of"),
        ("/api/v1/knowledge_bases?sort=size", 400, "sort must be one of"),
        ("/api/v1/knowledge_bases?cursor=bm90LWEtY3Vyc29y", 400, "cursor"),
        ("/api/v1/knowledge_bases?limit=ten", 400, "limit must be a whole number"),
        ("/api/v1/deliveries?state=lost", 400, "state must be one of"),
        (f"/api/v1/knowledge_bases/{C}0/jobs", 404, "no knowledge base"),
        ("/api/v1/jobs/nope", 404, "no job nope"),
        ("/api/v1/nothing", 404, "not found"),
    ],
)
async def test_bad_queries_and_unknown_things_get_a_json_error_saying_why(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient, path: str, status: int, error: str
) -> None:
    await _history(store)
    response = await client.get(await serve() + path)
    assert response.status_code == status
    assert error in response.json()["error"]


async def test_a_store_that_cannot_be_read_is_a_503_saying_so(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    base = await serve()
    await store.close()
    api = await client.get(base + "/api/v1/knowledge_bases")
    page = await client.get(base + "/")
    assert api.status_code == 503 and "store cannot be read" in api.json()["error"]
    assert page.status_code == 503 and "store cannot be read" in page.text


async def test_the_overview_page_lists_the_knowledge_bases_with_their_states(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    await _history(store)
    response = await client.get(await serve() + "/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    rows = re.findall(r'<tr data-uuid="([^"]+)">.*?class="badge s-(\w+)"', response.text, re.S)
    assert rows == [(A, "partial"), (B, "running"), (C, "stalled")]
    assert '<progress value="1" max="2">' in response.text  # beta's running job
    assert response.text.count('<i class="o-') == 4 + 3 + 2  # one per job in the sparklines


async def test_a_knowledge_base_page_draws_its_three_charts_as_svg(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    await _history(store)
    page = (await client.get(await serve() + f"/kb/{A}")).text
    charts = re.findall(r'<svg class="chart chart-(\w+)".*?</svg>', page, re.S)
    assert charts == ["timeline", "bars", "bars"]
    for kind in ("completed", "failed", "partial"):
        assert f'<path class="o-{kind}" d="M' in page
    assert "crawler blocked" not in page  # errors are on the job's page
    job = (await client.get(await serve() + f"/kb/{A}/jobs/{job_uuid(A, 1)}")).text
    assert "crawler blocked by robots.txt" in job


async def test_every_page_renders_for_an_empty_store(
    serve: Serve, client: httpx.AsyncClient
) -> None:
    base = await serve()
    for path in ("/", "/deliveries", "/deliveries?state=dead", "/watcher", "/?state=failed"):
        response = await client.get(base + path)
        assert response.status_code == 200, (path, response.text)


async def test_pages_of_things_the_store_does_not_know_are_404(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    await _history(store)
    base = await serve()
    assert (await client.get(base + f"/kb/{C}0")).status_code == 404
    # a job exists, but not under this knowledge base
    assert (await client.get(base + f"/kb/{B}/jobs/{job_uuid(A, 1)}")).status_code == 404


async def test_every_answer_carries_a_strict_content_security_policy(
    serve: Serve, client: httpx.AsyncClient
) -> None:
    base = await serve()
    for path in ("/", "/api/v1/knowledge_bases", "/healthz", "/static/page.js", "/nothing"):
        headers = (await client.get(base + path)).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
    assert (await client.get(base + "/")).headers["cache-control"] == "no-store"


async def test_the_static_files_are_served_from_the_package_and_the_page_is_gzipped(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    await _history(store)
    base = await serve()
    script = await client.get(base + "/static/page.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert len(script.content) < 6 * 1024  # a few kilobytes of JavaScript at most
    assert (await client.get(base + "/static/../app.py")).status_code == 404
    page = await client.get(base + "/", headers={"accept-encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"


async def test_deliveries_list_the_rows_a_silence_held_on_their_own_tab(
    serve: Serve, store: SqliteStore, host: Host, client: httpx.AsyncClient
) -> None:
    await _history(store)
    rows = await store.claim_due(NOW, 2)
    held = [Held(row, "4f2a9c01d3") for row in rows]
    await store.settle([h.settlement(NOW) for h in held])
    base = await serve()
    body = (await client.get(base + "/api/v1/deliveries?state=silenced")).json()
    assert sorted(d["id"] for d in body["items"]) == sorted(r.id for r in rows)
    assert body["items"][0]["last_error"] == "held by silence 4f2a9c01d3"
    assert body["counts"]["by_state"]["silenced"] == 2
    page = (await client.get(base + "/deliveries?state=silenced")).text
    assert "2 silenced" in page and 'aria-current="page">Silenced' in page


async def test_a_knowledge_base_shows_its_open_incident_and_who_acknowledged_it(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    await _history(store)
    incident = Incident(
        id="incident/c-failed",
        kb_uuid=C,
        kb_name="gamma-notes",
        opened_at=NOW - timedelta(hours=3),
        api_since=NOW - timedelta(hours=3),
        failures=2,
        last_kind=EventKind.STALLED,
        last_job_uuid=job_uuid(C, 1),
    )
    await store.record(Change("c-incident", NOW, incidents=(incident,)))
    base = await serve()
    kb = (await client.get(base + f"/api/v1/knowledge_bases/{C}")).json()
    assert kb["incident"]["failures"] == 2 and kb["incident"]["acknowledged_by"] is None
    assert "not acknowledged" in (await client.get(base + f"/kb/{C}")).text

    await store.acknowledge("gamma-notes", Ack("ana", NOW, "<b>on it</b>"))
    kb = (await client.get(base + f"/api/v1/knowledge_bases/{C}")).json()
    assert (kb["incident"]["acknowledged_by"], kb["incident"]["ack_comment"]) == (
        "ana",
        "<b>on it</b>",
    )
    page = (await client.get(base + f"/kb/{C}")).text
    assert "acknowledged by ana" in page and "&lt;b&gt;on it&lt;/b&gt;" in page
    other = (await client.get(base + f"/api/v1/knowledge_bases/{A}")).json()
    assert other["incident"] is None

"""End to end: a `format = "event"` route gets each event as signed JSON that the Standard
Webhooks reference library verifies, and a route's templates shape its alerts (or, when one
fails at send time, the built-in text goes: the alert is never lost)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
from standardwebhooks.webhooks import Webhook

from tests.harness import job_scenario, open_harness, route
from tests.receivers import WebhookReceiver
from watcher.core.model import EventKind

SECRET = "whsec_" + base64.b64encode(bytes(range(7, 39))).decode()
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "event-v1.schema.json").read_text(encoding="utf-8")
)
JOBS = [
    {"kb": "docs", "id": "good", "pending": 1, "run": 8, "outcome": "completed"},
    {"kb": "docs", "id": "bad", "pending": 1, "run": 8, "outcome": "failed", "at": 40},
]


def _event_route(receiver: WebhookReceiver, secret_file: Path) -> dict[str, Any]:
    return {
        "name": "ci",
        "format": "event",
        "urls": [f"http://127.0.0.1:{receiver.port}/hooks/indexing"],
        "events": ["completed", "failed"],
        "secret_file": str(secret_file),
    }


async def test_each_event_arrives_as_signed_json_that_the_reference_library_verifies(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    routes = [_event_route(webhook_receiver, secret_file)]
    scenario = job_scenario(["docs"], JOBS)
    async with open_harness(scenario, tmp_path, webhook_receiver, routes=routes) as h:
        await h.run(70)
    requests = [r for r in webhook_receiver.requests if r.path == "/hooks/indexing"]
    assert len(requests) == 2
    verifier = Webhook(SECRET)
    documents = [verifier.verify(r.body, r.headers) for r in requests]  # raises if forged
    for document in documents:
        jsonschema.validate(document, SCHEMA)
    assert [d["type"] for d in documents] == [
        "gradient_watcher.completed",
        "gradient_watcher.failed",
    ]
    failed = documents[1]["data"]
    assert failed["knowledge_base"]["name"] == "docs-kb"
    assert failed["job"]["status"] == "INDEX_JOB_STATUS_FAILED"
    assert any(ds["error_msg"] for ds in failed["job"]["data_sources"])
    ids = [r.headers["webhook-id"] for r in requests]
    assert len(set(ids)) == 2 and all(i.startswith("msg_") for i in ids)
    assert all(r.headers["Content-Type"] == "application/json" for r in requests)


async def test_a_refused_event_is_retried_with_the_same_id_and_a_fresh_signature(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET, encoding="utf-8")
    routes = [_event_route(webhook_receiver, secret_file)]
    async with open_harness(
        job_scenario(["docs"], JOBS[:1]), tmp_path, webhook_receiver, routes=routes
    ) as h:
        webhook_receiver.answer(503)
        await h.run(20)
        webhook_receiver.answer(200)
        await h.run(30)
    tries = [r for r in webhook_receiver.requests if r.path == "/hooks/indexing"]
    assert tries[0].answered == 503 and tries[-1].answered == 200
    assert len({r.headers["webhook-id"] for r in tries}) == 1  # one message, however many tries
    stamps = [int(r.headers["webhook-timestamp"]) for r in tries]
    assert stamps == sorted(stamps)  # each try signed with the time it was made
    Webhook(SECRET).verify(tries[-1].body, tries[-1].headers)


TITLE = (
    "{{ knowledge_base.name }} | {{ event | upper }}"
    "{% if job %} | {{ job.item_counts.failed }} failed{% endif %}"
)
BODY = """Indexing of {{ knowledge_base.name }}: {{ headline }}.
{% for ds in job.data_sources if ds.failed_item_count -%}
- {{ ds.data_source_uuid }}: {{ ds.error_msg }}
{% endfor %}"""


async def test_a_routes_templates_shape_its_alerts(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    ops = route("ops", webhook_receiver.url_json("/ops"), events=["completed", "failed"])
    ops |= {"title_template": TITLE, "body_template": BODY}
    async with open_harness(
        job_scenario(["docs"], JOBS), tmp_path, webhook_receiver, routes=[ops]
    ) as h:
        await h.run(70)
    posts = [r.json for r in webhook_receiver.requests if r.path == "/ops"]
    assert [p["title"] for p in posts] == [
        "docs-kb | COMPLETED | 0 failed",
        "docs-kb | FAILED | 90 failed",
    ]
    assert posts[1]["message"].startswith("Indexing of docs-kb: indexing failed.\n- ")
    # the API's words are escaped for markdown (a value cannot inject markup)
    assert "data\\_source\\_unreachable" in posts[1]["message"]


async def test_a_template_that_fails_at_send_time_gives_way_to_the_built_in_alert(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    # Passes check-config (its samples index 10 items), divides by zero on the real job's 90.
    ops = route("ops", webhook_receiver.url_json("/ops"), events=["completed", "failed"])
    ops |= {"title_template": "{{ 1 // (job.item_counts.indexed - 90) }}"}
    scenario = job_scenario(["docs"], JOBS[:1])
    async with open_harness(scenario, tmp_path, webhook_receiver, routes=[ops]) as h:
        await h.run(20)
        failures = [log for log in h.logs if log["event"] == "template_failed"]
    (alert,) = h.alerts("/ops")
    assert alert.kind is EventKind.COMPLETED  # the built-in title: the alert went all the same
    assert failures and failures[0]["route"] == "ops"
    assert "line 1" in failures[0]["error"]

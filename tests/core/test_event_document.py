"""The event document of `format = "event"` routes: its JSON Schema, its bytes, its ids."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.core.test_render_golden import HOSTILE, NOW, transition
from watcher.core.event_document import (
    document_text,
    event_document,
    notify_test_document,
    webhook_id,
)
from watcher.core.model import EventKind
from watcher.core.render import DASHBOARD

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "event-v1.schema.json").read_text(encoding="utf-8")
)


def _valid(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)


@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
def test_every_event_kind_gives_a_document_the_published_schema_accepts(kind: EventKind) -> None:
    document = event_document(transition(kind), DASHBOARD)
    _valid(json.loads(document_text(document)))
    assert document["type"] == f"gradient_watcher.{kind.value}"
    assert document["data"]["event"] == kind.value
    assert document["data"]["schema_version"] == 1


def test_the_test_message_is_valid_too() -> None:
    _valid(notify_test_document(NOW))


def test_a_failed_job_carries_the_apis_fields_and_each_data_sources_error() -> None:
    data = event_document(transition(EventKind.FAILED), DASHBOARD)["data"]
    assert data["knowledge_base"]["name"] == "product-docs"
    assert data["knowledge_base"]["control_panel"].startswith(DASHBOARD)
    job = data["job"]
    assert (job["phase"], job["status"], job["outcome"]) == (
        "BATCH_JOB_PHASE_FAILED",
        "INDEX_JOB_STATUS_FAILED",
        "failed",
    )
    assert job["item_counts"] == {"indexed": 192, "failed": 28, "skipped": 0}
    assert job["total_tokens"] == 48_210
    assert [ds["error_msg"] for ds in job["data_sources"]] == [None, "FILE_PARSE_ERROR"]
    assert data["event_id"] == "job/failed"


def test_the_body_is_compact_sorted_ascii_so_the_bytes_signed_are_the_bytes_sent() -> None:
    hostile = event_document(transition(EventKind.FAILED, kb_name=HOSTILE), DASHBOARD)
    text = document_text(hostile)
    assert text.isascii() and text.isprintable()  # no raw control, bidi or newline character
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert text == document_text(json.loads(text))  # re-serialising gives the same bytes
    assert json.loads(text)["data"]["knowledge_base"]["name"] == HOSTILE  # nothing lost


def test_the_message_id_is_stable_per_route_and_event_and_has_no_full_stop() -> None:
    first = webhook_id("job/completed", "ci")
    assert first == webhook_id("job/completed", "ci")  # a retry keeps its id
    assert first != webhook_id("job/completed", "other")
    assert first != webhook_id("job/failed", "ci")
    assert first.startswith("msg_") and "." not in first and len(first) == 36


def test_with_several_accounts_the_document_names_the_account_and_stays_valid() -> None:
    document = event_document(replace(transition(EventKind.FAILED), account="prod"), DASHBOARD)
    _valid(json.loads(document_text(document)))
    assert document["data"]["account"] == "prod"
    alone = event_document(transition(EventKind.FAILED), DASHBOARD)
    assert "account" not in alone["data"]  # a single account's documents are unchanged

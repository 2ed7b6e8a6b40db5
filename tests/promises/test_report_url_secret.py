"""A per-file report's signed URL is a credential that nobody registers: whoever holds it reads
the report until it expires. Its query is masked by shape at every boundary (`core/redact.py`):
the log chain (console and JSON, the HTTP library's own request lines, exception text), the
store (`GuardedStore` over a real SQLite file) and alerts. The end-to-end proof that the real
watcher never shows one is `tests/e2e/test_schedules_reports.py`."""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from tests.stores import open_held
from watcher.core.guard import GuardedStore
from watcher.core.model import EventKind
from watcher.core.redact import redact
from watcher.core.render import render
from watcher.core.state import Change, Delivery, Transition
from watcher.service.logs import configure_logging

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SIGNATURE = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
KEY_ID = "DO00QWERTYASDFGH"
SIGNED_URLS = [
    # DigitalOcean Spaces / S3, presigned with SigV4
    (
        "https://genai-reports.tor1.digitaloceanspaces.com/kb/job.csv?X-Amz-Algorithm=AWS4-HMAC"
        f"-SHA256&X-Amz-Credential={KEY_ID}%2F20261201%2Ftor1%2Fs3%2Faws4_request&X-Amz-Date="
        f"20261201T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature={SIGNATURE}"
    ),
    # S3 SigV2 style
    (
        f"https://bucket.s3.amazonaws.com/job.csv?AWSAccessKeyId={KEY_ID}&Expires=1800000000"
        f"&Signature={SIGNATURE}"
    ),
    # Google Cloud Storage V4
    (
        "https://storage.googleapis.com/b/job.csv?X-Goog-Algorithm=GOOG4-RSA-SHA256"
        f"&X-Goog-Credential={KEY_ID}%2F20261201&X-Goog-Signature={SIGNATURE}"
    ),
    # Azure SAS
    f"https://acct.blob.core.windows.net/c/job.csv?sv=2024-01-01&se=2026-12-02&sig={SIGNATURE}",
    # the simulator's, on loopback
    (
        "http://127.0.0.1:8080/_spaces/reports/job.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential=SIMKEY%2F20261201&X-Amz-Signature={SIGNATURE}"
    ),
]


@pytest.mark.parametrize("url", SIGNED_URLS)
def test_redaction_masks_the_whole_query_of_a_signed_url_and_keeps_where_it_points(
    url: str,
) -> None:
    masked = redact(f"download of {url} failed")
    assert SIGNATURE not in masked and KEY_ID not in masked
    assert masked == f"download of {url.split('?')[0]}?*** failed"


@pytest.mark.parametrize("fmt", ["console", "json"])
@pytest.mark.parametrize("url", SIGNED_URLS)
def test_no_log_line_shows_a_signed_url(url: str, fmt: str) -> None:
    stream = io.StringIO()
    configure_logging("debug", fmt, stream=stream)
    log = structlog.get_logger("test")
    log.warning("job_report_not_kept", error=f"GET {url}: 403", url=url)
    logging.getLogger("httpx").info('HTTP Request: GET %s "HTTP/1.1 200 OK"', url)
    try:
        raise RuntimeError(f"could not read {url}")
    except RuntimeError:
        log.exception("cycle_crashed")
    structlog.reset_defaults()
    output = stream.getvalue()
    assert output.count("_spaces") or output.count("job.csv")  # the lines were written
    assert SIGNATURE not in output and KEY_ID not in output


@pytest.mark.parametrize("url", SIGNED_URLS[:1])
def test_neither_the_store_nor_an_alert_keeps_a_signed_url(tmp_path: Path, url: str) -> None:
    transition = Transition(
        event_id="job-1/failed/0",
        kind=EventKind.FAILED,
        at=NOW,
        kb_uuid="kb-1",
        detail=f"the API answered {url}",
        report=f"A per-file report exists but could not be kept: {url}",
    )
    path = tmp_path / "watcher.db"

    async def write() -> None:
        store = await open_held(path, NOW)
        try:
            change = Change(
                "c1",
                NOW,
                transitions=(transition,),
                deliveries=(Delivery("job-1/failed/0", "ops"),),
            )
            await GuardedStore(store).record(change, meta={"note": url})
        finally:
            await store.close()

    asyncio.run(write())
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = repr([row for t in tables for row in conn.execute(f"SELECT * FROM {t}")])
    finally:
        conn.close()
    assert "digitaloceanspaces" in rows  # it was written, masked
    assert SIGNATURE not in rows and KEY_ID not in rows
    message = render(transition)
    for text in (message.body, message.text or "", message.html or ""):
        assert "digitaloceanspaces" in text and SIGNATURE not in redact(text)

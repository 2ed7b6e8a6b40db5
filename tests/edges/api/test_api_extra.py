"""The schedule and report reads at the edge: parsing `apiScheduledIndexingInfo`, and a
report download that refuses what it should and never tells the signed URL in an error."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from watcher.core.errors import MalformedResponse, SourceError
from watcher.edges.api.extra import download, parse_schedule

SIGNED = "X-Amz-Credential=KEYID1234&X-Amz-Signature=abcdef0123456789"


@pytest.mark.parametrize(
    ("body", "active", "next_run"),
    [
        (
            {"uuid": "s", "is_active": True, "next_run_at": "2026-12-02T03:00:00Z", "days": [1]},
            True,
            datetime(2026, 12, 2, 3, 0, tzinfo=UTC),
        ),
        ({"uuid": "s", "is_active": False, "next_run_at": "0001-01-01T00:00:00Z"}, False, None),
        ({"uuid": "s", "deleted_at": "2026-12-01T00:00:00Z"}, False, None),
        ({"uuid": "s", "days": ["x", 3, None]}, True, None),  # every field may be missing
    ],
)
def test_a_schedule_is_read_from_whatever_fields_the_answer_has(
    body: dict[str, object], active: bool, next_run: datetime | None
) -> None:
    schedule = parse_schedule(body)
    assert schedule is not None
    assert (schedule.active, schedule.next_run_at) == (active, next_run)


@pytest.mark.parametrize("body", [None, {}, [], "x", {"is_active": True}])
def test_an_answer_without_a_schedule_is_none(body: object) -> None:
    assert parse_schedule(body) is None


@pytest.mark.parametrize(
    "url",
    [f"http://reports.example.com/job.csv?{SIGNED}", f"ftp://127.0.0.1/job.csv?{SIGNED}"],
)
async def test_a_signed_url_that_is_not_https_off_loopback_is_refused_without_telling_it(
    url: str,
) -> None:
    with pytest.raises(MalformedResponse) as caught:
        await download(url, seconds=2)
    assert "Signature" not in str(caught.value) and "KEYID" not in str(caught.value)


async def test_a_failed_download_names_the_failure_never_the_url() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError) as caught:
        await download(f"http://127.0.0.1:{port}/job.csv?{SIGNED}", seconds=2)
    text = str(caught.value)
    assert "report download failed" in text
    assert "Signature" not in text and "KEYID" not in text and str(port) not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__

"""The API's schedule and report answers (`apiScheduledIndexingInfo`,
`apiGetIndexingJobDetailsSignedURLOutput`), and the download of a report from its signed URL.

The signed URL is a credential (whoever holds it reads the report until it expires): it is
passed from the answer to the download and dropped; it is never logged, stored or put in an
error. The download goes to another host (DigitalOcean's object storage), so it is sent by
its own httpx client without the API token, follows no redirect, and reads at most
`MAX_REPORT_BYTES`. A signed URL that is not https is refused unless its host is loopback
(the simulator's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from watcher.core.errors import MalformedResponse, RetryableSourceError, SourceError
from watcher.core.schedules import Schedule
from watcher.edges.api.body import TooLarge, read_body
from watcher.edges.api.wire import SkippedItem, to_bool, to_datetime, to_int, to_str

MAX_REPORT_BYTES = 32 * 1024 * 1024


def parse_schedule(obj: object) -> Schedule | None:
    """The schedule under `indexing_info`; None when the answer holds none (no uuid, no time)."""
    if not isinstance(obj, Mapping) or not obj:
        return None
    days = obj.get("days")
    schedule = Schedule(
        uuid=to_str(obj.get("uuid")),
        is_active=to_bool(obj.get("is_active")),
        next_run_at=to_datetime(obj.get("next_run_at")),
        last_ran_at=to_datetime(obj.get("last_ran_at")),
        deleted_at=to_datetime(obj.get("deleted_at")),
        updated_at=to_datetime(obj.get("updated_at")),
        time=to_str(obj.get("time")),
        days=tuple(d for d in (to_int(x) for x in _list(days)) if d is not None),
    )
    if schedule.uuid is None and schedule.next_run_at is None and schedule.time is None:
        return None
    return schedule


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parse_signed_url(value: object) -> str:
    """The `signed_url` text; `SkippedItem` (a malformed answer) when there is none."""
    url = to_str(value)
    if url is None:
        raise SkippedItem("no signed_url in the answer")
    return url


async def download(url: str, *, seconds: float, verify: Any = True) -> bytes:
    """The bytes behind a signed URL; `SourceError` without the URL in its text otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname)):
        raise MalformedResponse("the report's signed URL is not an https URL")
    try:
        async with (
            httpx.AsyncClient(timeout=seconds, follow_redirects=False, verify=verify) as http,
            http.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise RetryableSourceError(
                    f"the report download answered HTTP {response.status_code}"
                )
            return await read_body(response, MAX_REPORT_BYTES)
    except SourceError:
        raise
    except TooLarge as exc:
        raise MalformedResponse(f"the report is too large ({exc})") from None
    except (httpx.HTTPError, OSError, ValueError) as exc:
        # httpx's texts may quote the URL: only the kind of failure is told.
        raise RetryableSourceError(f"the report download failed ({type(exc).__name__})") from None


def _loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "::1", "localhost")

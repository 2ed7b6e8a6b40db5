"""Tolerant parsing of the API's JSON into the frozen values of `watcher.core.model`.

Pure functions, no I/O. Every field is optional: a missing or garbled field becomes None
(or the enum's UNKNOWN with the raw string kept in `*_raw`), never an exception. Text that is
not valid Unicode (bytes that were not UTF-8, which `body.decode_json` keeps as lone
surrogates, or an escaped lone surrogate) cannot be read: such a field counts as missing.
Only a body that is not the JSON object the spec describes raises `MalformedResponse`; a
single list item that cannot be used (not an object, no readable `uuid`, or anything else
that stops its parser) is skipped with a reason instead, and the rest of the list is kept.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

from watcher.core.errors import MalformedResponse
from watcher.core.model import (
    ApiError,
    DataSourceJob,
    DataSourceStatus,
    Job,
    KnowledgeBase,
    Phase,
    RateLimit,
    Status,
)

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

_DS_COUNTERS = (
    "indexed_item_count",
    "failed_item_count",
    "skipped_item_count",
    "removed_item_count",
    "indexed_file_count",
    "total_file_count",
    "total_bytes",
    "total_bytes_indexed",
)
_HISTORICAL_TOTALS = (
    "total_items_indexed",
    "total_items_failed",
    "total_items_skipped",
    "total_items_removed",
)


class SkippedItem(ValueError):
    """A list item that cannot become a domain value; the message says why."""


class OverLimit(MalformedResponse):
    """An answer holding more items than the watcher takes (`count` > `limit`): a failed read,
    refused before any item is parsed, and not retried (it would be as long again)."""

    def __init__(self, key: str, count: int, limit: int) -> None:
        self.count, self.limit = count, limit
        super().__init__(
            f"{key}: {count:,} items, more than the {limit:,} a list may hold (api.max_list_items)"
        )


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list answer: the usable items, why others were skipped, and where it sits."""

    items: tuple[T, ...]
    skipped: tuple[str, ...]
    raw_count: int
    has_next: bool
    page: int | None = None
    pages: int | None = None
    total: int | None = None
    next_page: int | None = None  # the `page` its `links.pages.next` asks for, if it says


def to_int(value: object) -> int | None:
    """An integer from an int, an integral float or a numeric string; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return int(number) if number.is_integer() else None
    return None


def to_datetime(value: object) -> datetime | None:
    """An aware UTC datetime from RFC 3339 text; the zero time `0001-01-01…` or garbage is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().upper())
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def is_text(value: str) -> bool:
    """Whether a string is valid Unicode text (no lone surrogate: it can be written as UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def to_str(value: object) -> str | None:
    """The value when it is a non-empty string of valid text, else None; interned, so that the
    ids, regions and model names every item repeats (and the store's copies) are one object."""
    return sys.intern(str(value)) if isinstance(value, str) and value and is_text(value) else None


def to_bool(value: object) -> bool | None:
    """A bool from a JSON boolean or the strings true/false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def to_enum(enum: type[E], value: object) -> tuple[E, str | None]:
    """The enum member for a value plus the raw text when the value is not a known member."""
    fallback = enum["UNKNOWN"]
    if value is None:
        return fallback, None
    if isinstance(value, str):
        if not is_text(value):
            return fallback, None  # unreadable: as if missing
        try:
            return enum(value.strip().upper()), None
        except ValueError:
            return fallback, value
    return fallback, repr(value)


def _counters(obj: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, int | None]:
    return {name: to_int(obj.get(name)) for name in names}


def parse_data_source(obj: object) -> DataSourceJob:
    """One indexed data source; raises `SkippedItem` when it is not an object."""
    if not isinstance(obj, Mapping):
        raise SkippedItem(f"data source is a {type(obj).__name__}, not an object")
    status, status_raw = to_enum(DataSourceStatus, obj.get("status"))
    return DataSourceJob(
        data_source_uuid=to_str(obj.get("data_source_uuid")),
        status=status,
        status_raw=status_raw,
        started_at=to_datetime(obj.get("started_at")),
        completed_at=to_datetime(obj.get("completed_at")),
        error_msg=to_str(obj.get("error_msg")),
        error_details=to_str(obj.get("error_details")),
        **_counters(obj, _DS_COUNTERS),
    )


def _list_of(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def parse_job(obj: object) -> Job:
    """One indexing job; raises `SkippedItem` when it is not an object or carries no uuid."""
    if not isinstance(obj, Mapping):
        raise SkippedItem(f"job is a {type(obj).__name__}, not an object")
    uuid = _uuid(obj, "job")
    phase, phase_raw = to_enum(Phase, obj.get("phase"))
    status, status_raw = to_enum(Status, obj.get("status"))
    return Job(
        uuid=uuid,
        knowledge_base_uuid=to_str(obj.get("knowledge_base_uuid")),
        phase=phase,
        phase_raw=phase_raw,
        status=status,
        status_raw=status_raw,
        created_at=to_datetime(obj.get("created_at")),
        started_at=to_datetime(obj.get("started_at")),
        finished_at=to_datetime(obj.get("finished_at")),
        updated_at=to_datetime(obj.get("updated_at")),
        completed_datasources=to_int(obj.get("completed_datasources")),
        total_datasources=to_int(obj.get("total_datasources")),
        total_tokens=to_int(obj.get("total_tokens")),
        tokens=to_int(obj.get("tokens")),
        is_report_available=to_bool(obj.get("is_report_available")),
        data_source_uuids=tuple(
            text for u in _list_of(obj.get("data_source_uuids")) if (text := to_str(u))
        ),
        data_source_jobs=tuple(
            parse_data_source(d)
            for d in _list_of(obj.get("data_source_jobs"))
            if isinstance(d, Mapping)
        ),
        **_counters(obj, _HISTORICAL_TOTALS),
    )


def parse_knowledge_base(obj: object) -> KnowledgeBase:
    """One knowledge base; raises `SkippedItem` without a uuid; an unusable last job is None."""
    if not isinstance(obj, Mapping):
        raise SkippedItem(f"knowledge base is a {type(obj).__name__}, not an object")
    uuid = _uuid(obj, "knowledge base")
    try:
        last_job: Job | None = parse_job(obj.get("last_indexing_job"))
    except SkippedItem:
        last_job = None  # never indexed: the API sends nothing, `{}` or an empty uuid
    return KnowledgeBase(
        uuid=uuid,
        name=to_str(obj.get("name")),
        region=to_str(obj.get("region")),
        project_id=to_str(obj.get("project_id")),
        created_at=to_datetime(obj.get("created_at")),
        updated_at=to_datetime(obj.get("updated_at")),
        last_indexing_job=last_job,
        embedding_model_uuid=to_str(obj.get("embedding_model_uuid")),
    )


def _uuid(obj: Mapping[str, Any], what: str) -> str:
    """The item's uuid; `SkippedItem` when it has none that can be read."""
    raw = obj.get("uuid")
    uuid = to_str(raw)
    if uuid is None:
        unreadable = isinstance(raw, str) and not is_text(raw)
        raise SkippedItem(
            f"{what} uuid is not valid UTF-8" if unreadable else f"{what} has no uuid"
        )
    return uuid


def unreadable_text(body: object, path: str = "") -> list[tuple[str, str | None]]:
    """Where `body` holds text that cannot be read: (field path, uuid of the item it is in).

    Paths name fields, not positions (`knowledge_bases[].name`), so that one cause reads the
    same on every page. Walks the whole value: call it only when `body.may_hold_bad_text`
    says there may be something to find.
    """
    found: list[tuple[str, str | None]] = []
    stack: list[tuple[object, str, str | None]] = [(body, path, None)]
    while stack:
        node, where, owner = stack.pop()
        if isinstance(node, str):
            if not is_text(node):
                found.append((where or "(body)", owner))
        elif isinstance(node, list):
            stack.extend((item, f"{where}[]", owner) for item in node)
        elif isinstance(node, Mapping):
            owner = to_str(node.get("uuid")) or owner
            for key, value in node.items():
                name = key if is_text(key) else "(unreadable key)"
                stack.append((value, f"{where}.{name}" if where else name, owner))
    return sorted(found, key=lambda pair: (pair[0], pair[1] or ""))


def unknown_values(job: Job) -> set[str]:
    """Every enum string in the job (its phase, status, data-source statuses) nobody knows yet."""
    return set(job.unknown_values)


def require_object(body: object, what: str) -> Mapping[str, Any]:
    """The body as a JSON object, else `MalformedResponse` naming what was expected."""
    if not isinstance(body, Mapping):
        raise MalformedResponse(f"{what}: expected a JSON object, got {type(body).__name__}")
    return body


def parse_single(body: object, key: str, parse: Callable[[object], T]) -> T:
    """The one object under `key` (as in `{"job": {...}}`), else `MalformedResponse`."""
    try:
        return parse(require_object(body, key).get(key))
    except SkippedItem as exc:
        raise MalformedResponse(f"{key}: {exc}") from exc


def parse_items(
    body: object,
    key: str,
    parse: Callable[[object], T],
    *,
    required: bool = True,
    limit: int | None = None,
) -> tuple[tuple[T, ...], tuple[str, ...], int]:
    """The usable items under `key`, the reasons others were skipped, and the raw item count.

    More than `limit` items raises `OverLimit` before any is parsed.
    """
    obj = require_object(body, key)
    raw = obj.get(key)
    if raw is None and not required:
        raw = []
    if not isinstance(raw, list):
        raise MalformedResponse(f"{key}: expected a JSON array, got {type(raw).__name__}")
    if limit is not None and len(raw) > limit:
        raise OverLimit(key, len(raw), limit)
    items: list[T] = []
    skipped: list[str] = []
    for index, entry in enumerate(raw):
        try:
            items.append(parse(entry))
        except SkippedItem as exc:
            skipped.append(f"{key}[{index}]: {exc}")
        except Exception as exc:  # whatever stops one item's parser, the others are kept
            skipped.append(f"{key}[{index}]: unreadable ({type(exc).__name__})")
    return tuple(items), tuple(skipped), len(raw)


def parse_page(
    body: object, key: str, parse: Callable[[object], T], *, limit: int | None = None
) -> Page[T]:
    """One page of a list; `has_next` is false on an empty page, without `next`, or at the end.

    A missing `items` array is an empty page (the API omits empty lists); `links.pages.prev`
    and `previous` are both accepted and neither is needed. More than `limit` items raises
    `OverLimit` before any is parsed.
    """
    items, skipped, raw_count = parse_items(body, key, parse, required=False, limit=limit)
    obj = require_object(body, key)
    links = obj.get("links")
    pages_links = links.get("pages") if isinstance(links, Mapping) else None
    meta = obj.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    page, pages, total = (to_int(meta.get(k)) for k in ("page", "pages", "total"))
    signals: list[bool] = []
    next_link = to_str(pages_links.get("next")) if isinstance(pages_links, Mapping) else None
    if isinstance(pages_links, Mapping):
        signals.append(next_link is not None)
    if page is not None and pages is not None:
        signals.append(page < pages)
    has_next = raw_count > 0 and bool(signals) and all(signals)
    return Page(items, skipped, raw_count, has_next, page, pages, total, _page_of(next_link))


def _page_of(link: str | None) -> int | None:
    """The `page` query parameter of a link, when it has exactly one that is a number."""
    if link is None:
        return None
    try:
        values = parse_qs(urlsplit(link).query).get("page", [])
    except ValueError:
        return None
    return to_int(values[0]) if len(values) == 1 else None


def parse_api_error(body: object) -> ApiError:
    """The `{id, message, request_id}` of an error answer; anything else gives empty fields."""
    if not isinstance(body, Mapping):
        return ApiError()
    return ApiError(
        id=to_str(body.get("id")),
        message=to_str(body.get("message")),
        request_id=to_str(body.get("request_id")),
    )


def parse_rate_limit(headers: Mapping[str, str], *, now: float | None = None) -> RateLimit:
    """The rate-limit headers, read case-insensitively; `retry-after` as seconds.

    An HTTP-date `retry-after` is turned into seconds only when `now` (Unix time) is given.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    retry_after: float | None = None
    raw_retry = lowered.get("retry-after")
    if raw_retry is not None:
        retry_after = _retry_after_seconds(raw_retry, now)
    return RateLimit(
        limit=to_int(lowered.get("ratelimit-limit")),
        remaining=to_int(lowered.get("ratelimit-remaining")),
        reset=to_int(lowered.get("ratelimit-reset")),
        retry_after=retry_after,
    )


def _retry_after_seconds(raw: str, now: float | None) -> float | None:
    try:
        seconds = float(raw.strip())
    except ValueError:
        if now is None:
            return None
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None

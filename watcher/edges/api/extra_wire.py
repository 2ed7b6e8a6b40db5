"""Parsing the answers of the extra reads: a KB's data sources, its database status, agents.

Like `watcher.edges.api.wire`, every function turns whatever the API sent into values or
raises `SkippedItem` for an item that cannot be used (not an object, no uuid); a value the
enum does not know becomes `UNKNOWN` with its raw text kept. An agent's answer also carries
API keys (`api_keys`, `api_key_infos`, provider keys): only the uuid, the name and the
uuids of its knowledge bases are ever read from it, nothing else is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from watcher.core.facts import Agent, DatabaseStatus, DataSource, SourceType
from watcher.edges.api.wire import SkippedItem, require_object, to_enum, to_str

# Each member of `apiKnowledgeBaseDataSource`, its type, and the fields that name the place
# (joined with "/"), in the order the spec lists them.
_KINDS: tuple[tuple[str, SourceType, tuple[str, ...]], ...] = (
    ("web_crawler_data_source", SourceType.WEB_CRAWLER, ("base_url",)),
    ("spaces_data_source", SourceType.SPACES, ("bucket_name", "item_path")),
    ("aws_data_source", SourceType.S3, ("bucket_name", "item_path")),
    ("file_upload_data_source", SourceType.FILE_UPLOAD, ("original_file_name",)),
    ("dropbox_data_source", SourceType.DROPBOX, ("folder",)),
    ("google_drive_data_source", SourceType.GOOGLE_DRIVE, ("folder_name", "folder_id")),
)


def parse_kb_data_source(obj: object) -> DataSource:
    """One `apiKnowledgeBaseDataSource` as a person recognises it; `SkippedItem` without uuid."""
    if not isinstance(obj, Mapping):
        raise SkippedItem(f"data source is a {type(obj).__name__}, not an object")
    uuid = to_str(obj.get("uuid"))
    if uuid is None:
        raise SkippedItem("data source has no uuid")
    for key, kind, names in _KINDS:
        member = obj.get(key)
        if isinstance(member, Mapping) and (where := _where(member, names, kind)):
            return DataSource(uuid, kind, where)
    # the deprecated top-level fields of a bucket source
    if where := _where(obj, ("bucket_name", "item_path"), SourceType.SPACES):
        return DataSource(uuid, SourceType.SPACES, where)
    return DataSource(uuid, SourceType.UNKNOWN, uuid)


def _where(member: Mapping[str, Any], names: tuple[str, ...], kind: SourceType) -> str:
    parts = [text for name in names if (text := to_str(member.get(name)))]
    if kind is SourceType.WEB_CRAWLER:
        return _without_userinfo(parts[0]) if parts else ""
    if kind is SourceType.GOOGLE_DRIVE:
        return parts[0] if parts else ""  # the folder's name when known, else its id
    return "/".join(part.strip("/") if i else part.rstrip("/") for i, part in enumerate(parts))


def _without_userinfo(url: str) -> str:
    """A crawler URL without `user:password@` (a credential never reaches an alert)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def parse_database_status(body: object) -> tuple[DatabaseStatus, str | None]:
    """The `database_status` of `apiGetKnowledgeBaseOutput` (UNKNOWN with the raw text for a
    word the enum does not know; UNKNOWN and None when it is missing)."""
    return to_enum(DatabaseStatus, require_object(body, "answer").get("database_status"))


def parse_agent_ref(obj: object) -> Agent:
    """One `apiAgentPublic` of the agent list: its uuid and name (its KBs are not listed)."""
    if not isinstance(obj, Mapping):
        raise SkippedItem(f"agent is a {type(obj).__name__}, not an object")
    uuid = to_str(obj.get("uuid"))
    if uuid is None:
        raise SkippedItem("agent has no uuid")
    return Agent(uuid, to_str(obj.get("name")) or uuid)


def parse_agent(obj: object) -> Agent:
    """One `apiAgent`: uuid, name and the uuids of its `knowledge_bases` (nothing else)."""
    ref = parse_agent_ref(obj)
    assert isinstance(obj, Mapping)
    kbs = obj.get("knowledge_bases")
    uuids = tuple(
        uuid
        for kb in (kbs if isinstance(kbs, list) else [])
        if isinstance(kb, Mapping) and (uuid := to_str(kb.get("uuid")))
    )
    return Agent(ref.uuid, ref.name, uuids)

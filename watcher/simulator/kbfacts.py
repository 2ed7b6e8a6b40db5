"""The simulated answers of the extra reads: a KB's data sources, its database, its agents.

Shapes follow `apiKnowledgeBaseDataSource` (one member object per kind of source),
`apiGetKnowledgeBaseOutput.database_status` (`dbaasClusterStatus`), `apiAgentPublic` for the
agent list (which names no knowledge bases, as DigitalOcean's does not) and `apiAgent` for one
agent, whose `knowledge_bases` are full knowledge-base objects.

In a scenario a data source may say where it reads (`"kind"`: `web`, `spaces`, `s3`, `file`,
`dropbox`, `drive`; `"where"`: the URL, `bucket/path`, file name or folder; default a crawler
of `https://<key>.example.com`); the timeline's `{"database": {"kb": KEY, "status": WORD}}`
sets a KB's database status from then on (any word, unknown ones included; default ONLINE);
`"agents": [{"key", "name", "knowledge_bases": [KB keys]}]` lists the account's agents.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]
KINDS = ("web", "spaces", "s3", "file", "dropbox", "drive")


def source_body(uuid: str, kind: str, where: str, created: str) -> JsonObject:
    """One `apiKnowledgeBaseDataSource` of `kind` reading `where`."""
    body: JsonObject = {"uuid": uuid, "created_at": created, "updated_at": created}
    bucket, _, path = where.partition("/")
    match kind:
        case "web":
            body["web_crawler_data_source"] = {
                "base_url": where,
                "crawling_option": "PATH",
                "embed_media": False,
            }
        case "spaces":
            body["spaces_data_source"] = {
                "bucket_name": bucket,
                "item_path": path,
                "region": "tor1",
            }
        case "s3":
            body["aws_data_source"] = {
                "bucket_name": bucket,
                "item_path": path,
                "region": "us-east-1",
            }
        case "file":
            body["file_upload_data_source"] = {
                "original_file_name": where,
                "size_in_bytes": "48213",
                "stored_object_key": f"uploads/{uuid}",
            }
        case "dropbox":
            body["dropbox_data_source"] = {"folder": where}
        case "drive":
            body["google_drive_data_source"] = {"folder_id": uuid, "folder_name": where}
        case _:
            raise ValueError(f"unknown data source kind {kind!r}; one of {', '.join(KINDS)}")
    return body


def agent_public(uuid: str, name: str, created: str) -> JsonObject:
    """One `apiAgentPublic` of the agent list (no knowledge bases: the list has none)."""
    return {"uuid": uuid, "name": name, "created_at": created, "region": "tor1"}


def agent_body(uuid: str, name: str, created: str, kbs: list[JsonObject]) -> JsonObject:
    """One `apiAgent` with its knowledge bases (full objects), and API keys that a client
    must never keep (here to prove it does not)."""
    return {
        "uuid": uuid,
        "name": name,
        "created_at": created,
        "region": "tor1",
        "knowledge_bases": kbs,
        "api_key_infos": [{"uuid": uuid, "name": "key", "secret_key": "sk-sim-secret-0000"}],
    }

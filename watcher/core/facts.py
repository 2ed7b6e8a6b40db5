"""What the extra reads learn about a knowledge base, and what alerts say of it. Pure.

- **Data sources by name** (`DataSource`): a KB's sources as a person recognises them, the
  crawler's base URL, the Spaces or S3 bucket and path, the uploaded file's name, the Dropbox
  or Google Drive folder, each with its type (`SourceType`).
- **Database health** (`DatabaseStatus`): the `database_status` of `GET
  /v2/gen-ai/knowledge_bases/{uuid}`; anything but ONLINE is unhealthy (`database_unhealthy`,
  then `database_recovered` when it is ONLINE again). A value the enum does not know is
  `UNKNOWN` with its raw text kept, and counts as unhealthy only once the API says so again
  with a known value (an unknown word never raises an alert).
- **Impact** (`Agent`): the agents whose knowledge bases include the KB.

`with_facts` puts what is known on a cycle's transitions: every job event names its sources,
failure and stall events the unhealthy database and the agents the KB feeds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, assert_never

from watcher.core.clocks import Elapsed
from watcher.core.model import EventKind
from watcher.core.state import Transition


class SourceType(StrEnum):
    """What kind of place a data source reads (one per `apiKnowledgeBaseDataSource` member)."""

    WEB_CRAWLER = "web crawler"
    SPACES = "Spaces"
    S3 = "S3"
    FILE_UPLOAD = "file"
    DROPBOX = "Dropbox"
    GOOGLE_DRIVE = "Google Drive"
    UNKNOWN = "source"


@dataclass(frozen=True, slots=True)
class DataSource:
    """One data source of a KB: its uuid, type and what a person recognises (`where`)."""

    uuid: str
    type: SourceType
    where: str

    @property
    def label(self) -> str:
        """`web crawler https://docs.example.com`, `Spaces docs-bucket/manuals/`, ..."""
        return f"{self.type.value} {self.where}"


class DatabaseStatus(StrEnum):
    """A KB's database cluster status (`dbaasClusterStatus`); only ONLINE is healthy."""

    UNKNOWN = "UNKNOWN"
    CREATING = "CREATING"
    ONLINE = "ONLINE"
    POWEROFF = "POWEROFF"
    REBUILDING = "REBUILDING"
    REBALANCING = "REBALANCING"
    DECOMMISSIONED = "DECOMMISSIONED"
    FORKING = "FORKING"
    MIGRATING = "MIGRATING"
    RESIZING = "RESIZING"
    RESTORING = "RESTORING"
    POWERING_ON = "POWERING_ON"
    UNHEALTHY = "UNHEALTHY"
    UPGRADING = "UPGRADING"

    @property
    def is_healthy(self) -> bool:
        return self is DatabaseStatus.ONLINE


@dataclass(frozen=True, slots=True)
class Agent:
    """One agent and the KBs it uses (`GET /v2/gen-ai/agents/{uuid}` → `knowledge_bases`)."""

    uuid: str
    name: str
    kb_uuids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KbFacts:
    """What is known of one KB beyond its jobs (empty until the extra reads got it)."""

    sources: tuple[DataSource, ...] = ()
    database: DatabaseStatus | None = None
    database_raw: str | None = None  # the API's word when the enum does not know it
    agents: tuple[str, ...] = ()  # names of the agents that use the KB

    @property
    def database_text(self) -> str | None:
        if self.database is None:
            return None
        return self.database_raw or self.database.value


_FAILURES = frozenset({EventKind.FAILED, EventKind.PARTIAL, EventKind.STALLED})


def with_facts(transitions: Sequence[Transition], facts: Mapping[str, KbFacts]) -> list[Transition]:
    """The transitions with what is known of their KB: sources on every job event; an
    unhealthy database and the agents fed on failed, partial and stalled ones."""
    out = []
    for t in transitions:
        known = facts.get(t.kb_uuid or "")
        if known is None or t.job is None:
            out.append(t)
            continue
        sources = _job_sources(known.sources, t.job.data_source_uuids)
        extra: dict[str, Any] = {"source_names": tuple((s.uuid, s.label) for s in sources)}
        if t.kind in _FAILURES:
            extra["agents"] = known.agents
            if known.database is not None and known.database is not DatabaseStatus.ONLINE:
                extra["database_status"] = known.database_text
        out.append(replace(t, **extra))
    return out


def _job_sources(sources: Sequence[DataSource], named: Sequence[str]) -> list[DataSource]:
    """The job's own sources when it names some that are known, else every source of the KB."""
    chosen = [s for s in sources if s.uuid in set(named)]
    return chosen or list(sources)


class HealthChange(StrEnum):
    """What a new database status reading means against the previous one."""

    NONE = "none"
    UNHEALTHY = "unhealthy"
    RECOVERED = "recovered"


def health_change(before: DatabaseStatus | None, after: DatabaseStatus) -> HealthChange:
    """`UNHEALTHY` when a known non-ONLINE status follows ONLINE or nothing; `RECOVERED` when
    ONLINE follows a known non-ONLINE status. UNKNOWN never changes anything."""
    if after is DatabaseStatus.UNKNOWN:
        return HealthChange.NONE
    was_unhealthy = before is not None and before not in (
        DatabaseStatus.ONLINE,
        DatabaseStatus.UNKNOWN,
    )
    if after.is_healthy:
        return HealthChange.RECOVERED if was_unhealthy else HealthChange.NONE
    return HealthChange.NONE if was_unhealthy else HealthChange.UNHEALTHY


def health_transition(
    kb_uuid: str,
    kb_name: str | None,
    change: HealthChange,
    status: str,
    at: datetime,
    episode: int,
) -> Transition | None:
    """The `database_unhealthy` / `database_recovered` event of `change`, or None.

    `episode` numbers the KB's unhealthy spells, so the id is deterministic: recording the
    same reading twice (a crash between the event and the stored status) is a no-op.
    """
    match change:
        case HealthChange.NONE:
            return None
        case HealthChange.UNHEALTHY:
            kind = EventKind.DATABASE_UNHEALTHY
        case HealthChange.RECOVERED:
            kind = EventKind.DATABASE_RECOVERED
        case _:
            assert_never(change)
    return Transition(
        event_id=f"database/{kb_uuid}/{kind.value}/{episode}",
        kind=kind,
        at=at,
        kb_uuid=kb_uuid,
        kb_name=kb_name,
        database_status=status,
    )


# --- the stored form of each fact (JSON text in the store's `kb_facts` table) ---------------


def encode_sources(sources: Sequence[DataSource]) -> str:
    return json.dumps([[s.uuid, s.type.name, s.where] for s in sources])


def decode_sources(text: str) -> tuple[DataSource, ...]:
    """The stored sources; an entry that cannot be read is left out."""
    out = []
    for item in _json_list(text):
        if isinstance(item, list) and len(item) == 3 and all(isinstance(v, str) for v in item):
            kind = SourceType[item[1]] if item[1] in SourceType.__members__ else SourceType.UNKNOWN
            out.append(DataSource(item[0], kind, item[2]))
    return tuple(out)


def decode_database(text: str) -> tuple[DatabaseStatus | None, str | None]:
    """A stored database status: the member and the raw word (when the enum lacked it)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None, None
    if not isinstance(data, dict) or data.get("status") not in DatabaseStatus.__members__:
        return None, None
    raw = data.get("raw")
    return DatabaseStatus[data["status"]], raw if isinstance(raw, str) else None


def encode_agent(agent: Agent) -> str:
    return json.dumps({"name": agent.name, "kbs": list(agent.kb_uuids)})


def decode_agent(uuid: str, text: str) -> Agent | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    kbs = tuple(k for k in data.get("kbs", ()) if isinstance(k, str))
    return Agent(uuid, data["name"], kbs)


def encode_uuids(uuids: Sequence[str]) -> str:
    return json.dumps(list(uuids))


def decode_uuids(text: str) -> tuple[str, ...]:
    return tuple(u for u in _json_list(text) if isinstance(u, str))


def _json_list(text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def agents_by_kb(agents: Sequence[Agent]) -> dict[str, tuple[str, ...]]:
    """Per KB uuid, the sorted names of the agents that use it."""
    found: dict[str, set[str]] = {}
    for agent in agents:
        for kb in agent.kb_uuids:
            found.setdefault(kb, set()).add(agent.name)
    return {kb: tuple(sorted(names)) for kb, names in found.items()}


@dataclass(frozen=True, slots=True)
class StoredFact:
    """One extra read's last result as the store keeps it (table `kb_facts`).

    `subject` the read's target (a KB or agent uuid, "" for the account), `kind` the read's
    registered name, `value` its JSON text, `read_at` when it was read on the elapsed clock
    (None: never in a comparable boot), `marker` what its trigger compares (the latest job
    of the KB when the data sources were read), `episode` the unhealthy spells counted so far
    (the database events' ids).
    """

    subject: str
    kind: str
    value: str
    read_at: Elapsed | None = None
    marker: str | None = None
    episode: int = 0

"""The registry of extra reads: every read beyond the polling, one line each.

An extra read shares the token's hourly budget with the polling and never delays it: the
pure planner (`watcher.core.extras.plan`) decides each cycle which registered reads are due
within the share, and `watcher.service.extrarun.ExtraReads` makes them, counts the requests
they really sent, and stores each result as a `StoredFact` (table `kb_facts`, by target and
read name).

To add a read, write a fetch (`async def fetch(source, target) -> str`, returning the JSON
text to keep; `target` is a KB uuid, an agent uuid or "" as its `Scope` says; raise a
`SourceError` to skip it this time) and register it at the bottom of this module::

    register(ReadSpec("kb_details", Scope.KB, HOURLY, Priority.LOW), read_kb_details)

`every` is its cadence, `Priority` decides which reads go first when the share is short
(HIGH first), `on_new_job=True` reads a KB's value again when a new job starts, `cost` is
the requests one read takes. Read the result back with `ExtraReads.fact(target, name)`.

The schedules (`watcher.service.kbwatch`, read during the poll), the per-file reports and the
model prices (`watcher.service.costs`) are not registered here but share the same budget
(`watcher.service.budget.ReadsBudget`): the schedules as candidates of the same plan.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from watcher.core.extras import Priority, ReadSpec, Scope
from watcher.core.facts import encode_agent, encode_sources, encode_uuids
from watcher.core.ports import ExtraSource

Fetch = Callable[[ExtraSource, str], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class ExtraRead:
    """A registered read: what the planner knows of it, and how to make it."""

    spec: ReadSpec
    fetch: Fetch


REGISTRY: list[ExtraRead] = []
"""Every extra read, in registration order (names are unique)."""


def register(spec: ReadSpec, fetch: Fetch) -> None:
    """Add a read to the registry; a second read of the same name is a programming error."""
    if any(read.spec.name == spec.name for read in REGISTRY):
        raise ValueError(f"an extra read named {spec.name!r} is already registered")
    REGISTRY.append(ExtraRead(spec, fetch))


# --- the fetches ------------------------------------------------------------------------

DATA_SOURCES = "data_sources"
DATABASE = "database"
AGENTS = "agents"
AGENT = "agent"


async def read_data_sources(source: ExtraSource, kb_uuid: str) -> str:
    """A KB's data sources by name (`watcher.core.facts.decode_sources` reads it back)."""
    return encode_sources(await source.list_kb_data_sources(kb_uuid))


async def read_database(source: ExtraSource, kb_uuid: str) -> str:
    """A KB's database status: `{"status": MEMBER, "raw": text-or-null}`."""
    status, raw = await source.get_database_status(kb_uuid)
    return json.dumps({"status": status.name, "raw": raw})


async def read_agents(source: ExtraSource, _: str) -> str:
    """The uuids of the account's agents (each one's KBs are a read of its own)."""
    return encode_uuids([agent.uuid for agent in await source.list_agents()])


async def read_agent(source: ExtraSource, agent_uuid: str) -> str:
    """One agent's name and the uuids of the KBs it uses."""
    return encode_agent(await source.get_agent(agent_uuid))


# --- the registrations: one line per read -----------------------------------------------

DAILY, HOURLY, HALF_HOURLY = timedelta(days=1), timedelta(hours=1), timedelta(minutes=30)

register(ReadSpec(DATA_SOURCES, Scope.KB, DAILY, Priority.HIGH, on_new_job=True), read_data_sources)
register(ReadSpec(DATABASE, Scope.KB, HALF_HOURLY, Priority.NORMAL), read_database)
register(ReadSpec(AGENTS, Scope.ACCOUNT, HOURLY, Priority.LOW), read_agents)
register(ReadSpec(AGENT, Scope.AGENT, HOURLY, Priority.LOW), read_agent)

"""`watcher cancel JOB` and `watcher reindex KB`: the two writes, asked for by a person.

Each prints one line per call saying what DigitalOcean did: a 403 names the scope the token
lacks (`genai:update` to cancel, `genai:create` to start) and where the token came from; a
reindex DigitalOcean skipped because a job is running is said to be skipped, not failed.
Returns 0 when the call did its part, 1 otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from watcher.config import Config
from watcher.core.remedy import Call, CallResult
from watcher.service.remedies import cancel_call, start_call
from watcher.service.runtime import api_client

Echo = Callable[[str], None]


def _said(what: str, call: Call) -> tuple[str, int]:
    match call.result:
        case CallResult.OK:
            return f"{what}: done (job {call.job_uuid}, {call.text})", 0
        case CallResult.SKIPPED:
            return (
                f"{what}: skipped by DigitalOcean, a job is already running on this knowledge "
                f"base ({call.text})",
                1,
            )
        case CallResult.ENDED:
            return f"{what}: the job has already ended ({call.text})", 1
        case CallResult.FORBIDDEN | CallResult.FAILED:
            return f"{what}: failed: {call.text}", 1


async def cancel_command(config: Config, job_uuid: str, *, echo: Echo) -> int:
    """Cancel one indexing job (`PUT /v2/gen-ai/indexing_jobs/{uuid}/cancel`)."""
    client = api_client(config, max_attempts=2)
    try:
        call = await cancel_call(client, job_uuid)
    finally:
        await client.aclose()
    text, code = _said(f"cancel {job_uuid}", call)
    echo(text)
    return code


async def reindex_command(
    config: Config, kb_uuid: str, sources: Sequence[str], *, echo: Echo
) -> int:
    """Start an indexing job on one KB, of `sources` (all of them when empty)."""
    client = api_client(config, max_attempts=2)
    try:
        call = await start_call(client, kb_uuid, sources)
    finally:
        await client.aclose()
    text, code = _said(f"reindex {kb_uuid}", call)
    echo(text)
    return code


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def find_kb(config: Config, kb: str) -> tuple[str | None, str]:
    """The uuid of `kb`: a configured name, a uuid as is, else the name of one knowledge base
    of the account (one read of the list, `genai:read`); (None, why) when there is none or
    more than one. Raises `SourceError` when the list cannot be read."""
    named = next((k.uuid for k in config.knowledge_bases if k.name == kb), None)
    if named is not None:
        return named, ""
    if _UUID.match(kb.strip().lower()):
        return kb.strip().lower(), ""
    client = api_client(config, max_attempts=2)
    try:
        found = [k.uuid for k in await client.list_knowledge_bases() if k.name == kb]
    finally:
        await client.aclose()
    if len(found) == 1:
        return found[0], ""
    if found:
        return None, f"{len(found)} knowledge bases are named {kb!r}: name one by its uuid"
    return None, f"no knowledge base is named {kb!r} (configured or on the account)"

"""The one-shot commands behind the CLI: test-notify, status, the online check, ack, retry
(`once` is `watcher.service.once`, `health` is `watcher.service.healthcheck`)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial

import structlog

from watcher.config import Config, describe
from watcher.config.build import loc_text
from watcher.config.preflight import listen_note
from watcher.core import costview, watchview
from watcher.core import status_view as status
from watcher.core.account import unmatched_refs
from watcher.core.apihealth import API_HEALTH_KEY, ApiHealth
from watcher.core.cost import PRICES_KEY, decode_prices
from watcher.core.durations import format_elapsed
from watcher.core.errors import (
    ConfigError,
    ConfigProblem,
    Forbidden,
    NotFound,
    SourceError,
    Unauthorized,
    WatcherError,
)
from watcher.core.health import HEARTBEAT_KEY, Heartbeat
from watcher.core.incident import Ack
from watcher.core.inert import inert
from watcher.core.lease import Lease
from watcher.core.model import KnowledgeBase
from watcher.core.outbox import Message, SendResult
from watcher.core.pace import PACE_KEY
from watcher.core.ports import MetaStore
from watcher.core.present import with_test_event
from watcher.core.redact import SECRETS
from watcher.core.render import render_test
from watcher.core.replicas import replica_lines, replicas_json
from watcher.core.schedules import KbWatch
from watcher.core.snapshot import StoreSnapshot
from watcher.edges import host
from watcher.edges.hostclock import monotonic_now
from watcher.service.accountcheck import (
    MISSING_KEY,
    UNMATCHED_KEY,
    decode_missing,
    decode_unmatched,
)
from watcher.service.accountstatus import account_lines, accounts_json, with_accounts
from watcher.service.healthcheck import no_state, shared_store
from watcher.service.kbwatch import WATCH_KEY
from watcher.service.runtime import api_client, build_notifier, cycle_settings, utcnow
from watcher.service.silence_commands import local_zone
from watcher.service.stores import open_store, store_absent

log = structlog.get_logger(__name__)


async def check_online(config: Config, *, echo: Callable[[str], None]) -> int:
    """`check-config --online`: read each account with its token and check the configuration
    against it; print the description and return 0, or raise ConfigError naming each route
    entry that matches no knowledge base and each watched uuid the account does not list."""
    problems: list[ConfigProblem] = []
    counts = []
    for index, account in enumerate(config.account_list()):
        one = config.for_account(account)
        listing = await _read_account(one, index if config.several_accounts else None)
        counts.append(f"{account.name} {len(listing)}")
        problems += _online_problems(one, listing, index if config.several_accounts else None)
    if problems:
        raise ConfigError(problems)
    echo(describe(config, listen_note=listen_note(config.http.listen)))
    listed = f"{counts[0].split()[-1]}" if len(counts) == 1 else ", ".join(counts)
    echo(f"  Account:    {listed} knowledge base(s) listed; every route entry and watched")
    echo("              knowledge base found")
    return 0


async def _read_account(config: Config, index: int | None) -> list[KnowledgeBase]:
    """The account's KB listing; a refused token is a ConfigError naming where it came from
    (`index`: its `[[accounts]]` entry, None for the single account)."""
    client = api_client(config, max_attempts=2)
    try:
        return await client.list_knowledge_bases()
    except (Unauthorized, Forbidden) as exc:
        key = "token" if index is None else f"accounts[{index}]"
        raise ConfigError([ConfigProblem(key, str(exc), config.token_source or "")]) from exc
    except NotFound as exc:
        source = config.source_of("api", "base_url")
        raise ConfigError([ConfigProblem("api.base_url", str(exc), source)]) from exc
    except SourceError as exc:  # not the configuration's fault as far as we can tell: exit 1
        where = f"api.base_url from {config.source_of('api', 'base_url')}"
        raise WatcherError(
            f"cannot read the account at {config.api.base_url} ({where}): {exc}"
        ) from exc
    finally:
        await client.aclose()


def _online_problems(
    config: Config, account: Sequence[KnowledgeBase], index: int | None
) -> list[ConfigProblem]:
    """Route entries matching nothing in the account, and watched KBs it does not list."""
    settings = cycle_settings(config)
    problems = [
        ConfigProblem(
            ref.key,
            f"route {ref.route!r}: {ref.reason}",
            config.source_of("routes", ref.index, "knowledge_bases", ref.position),
        )
        for ref in unmatched_refs(settings.route_refs, settings.watched, account)
    ]
    listed = {kb.uuid: kb for kb in account}
    prefix: tuple[str | int, ...] = () if index is None else ("accounts", index)
    for position, kb in enumerate(config.knowledge_bases):
        if kb.uuid not in listed:
            loc = (*prefix, "knowledge_bases", position, "uuid")
            key = loc_text(loc)
            problems.append(
                ConfigProblem(key, _not_listed(kb.name, kb.uuid, account), config.source_of(*loc))
            )
    return problems


def _not_listed(name: str | None, uuid: str, account: Sequence[KnowledgeBase]) -> str:
    """Why a watched uuid is not in the account, with what it probably should be."""
    label = f"{name!r} ({uuid})" if name else uuid
    text = f"{label} is not a knowledge base of this account"
    same_name = [kb.uuid for kb in account if name and kb.name == name]
    close = difflib.get_close_matches(uuid, [kb.uuid for kb in account], n=1, cutoff=0.8)
    if same_name:
        return f"{text}; the account's knowledge base named {name!r} has uuid {same_name[0]}"
    if close:
        return f"{text}; did you mean {close[0]}?"
    return f"{text} (a typo, another account or project, or deleted)"


def test_message(now: datetime) -> Message:
    """The alert `watcher test-notify` sends."""
    return render_test(now)


async def send_test(config: Config, route: str | None) -> dict[str, SendResult]:
    """Send a test alert through the real notifier to every route (or one); results by route."""
    notifier = build_notifier(config)
    names = [r.name for r in config.routes if route is None or r.name == route]
    now = utcnow()
    message = with_test_event(test_message(now), now)  # event routes post the test event
    return {name: await notifier.send(name, message) for name in names}


async def retry_dead(
    config: Config, ids: Sequence[int] | None, *, echo: Callable[[str], None]
) -> int:
    """Queue dead letters again (`watcher retry ID...|--all`); 1 when none could be."""
    if store_absent(config):
        echo(f"no state file at {config.state.path}: the watcher has not run yet")
        return 1
    now = utcnow()
    store = await open_store(config, now)
    try:
        queued = await store.retry_dead(now, list(ids) if ids else None)
    finally:
        await store.close()
    missing = [i for i in ids or () if i not in queued]
    for i in missing:
        echo(f"#{i} is not a dead letter (see `watcher status`: dead #ID)")
    if not queued:
        echo("nothing to retry: no dead letters" if ids is None else "nothing queued again")
        return 1
    listed = ", ".join(f"#{i}" for i in queued)
    echo(
        f"queued {len(queued)} dead letter(s) again ({listed}): they go out with the next "
        "cycle of `watcher run`, or now with `watcher once`"
    )
    return 1 if missing else 0


async def acknowledge_incident(
    config: Config, ref: str, by: str, comment: str | None, *, echo: Callable[[str], None]
) -> int:
    """`watcher ack KB|JOB`: acknowledge the open incident of that KB (no more reminders or
    escalation for it); 1 when there is no store yet. `AckRefused` when `ref` names nothing
    known or its KB has no open incident."""
    if store_absent(config):
        echo(no_state(config))
        return 1
    ack = Ack(by=by, at=utcnow(), comment=comment)
    store = await open_store(config, ack.at)
    try:
        incident = await store.acknowledge(ref, ack)
    finally:
        await store.close()
    failures = f"{incident.failures} failure{'s' if incident.failures != 1 else ''} in a row"
    echo(
        inert(
            f"acknowledged the incident of {incident.kb_name or incident.kb_uuid} ({failures} "
            f"since {incident.since.isoformat(timespec='seconds')}) as {ack.by}: no more "
            "reminders or escalation for it; it closes with the next successful job"
        )
    )
    return 0


async def read_status(
    config: Config,
    *,
    as_json: bool,
    echo: Callable[[str], None],
    kbs: Sequence[str] = (),
    states: Sequence[str] = (),
) -> int:
    """Print what the store knows (`watcher status`); 1 when there is no state file yet.

    `kbs` (names or uuids) and `states` (`status_view.STATE_WORDS`) keep only those KBs
    (`status_view.only`); raises `status_view.UnknownKbError` for a name the store lacks."""
    if store_absent(config):
        echo(no_state(config))
        return 1
    now = utcnow()
    store = await open_store(config, now)
    try:
        snapshot = await with_accounts(store, config, await store.snapshot(now))
        if kbs or states:
            snapshot = status.only(snapshot, kbs, states)
        accounts = await accounts_json(store, config, snapshot)
        pace = await store.get_meta(PACE_KEY)
        # with several accounts each has its own (`accounts_json`)
        api = None if accounts else ApiHealth.decode(await store.get_meta(API_HEALTH_KEY))
        beat = Heartbeat.decode(await store.get_meta(HEARTBEAT_KEY))
        lease = await store.read_lease()
        silences = await store.silences(now)
        shared = await store.replicas() if shared_store(store) else None
        prices = decode_prices(await store.get_meta(PRICES_KEY))
        watches = await _watches(store, snapshot)
        setup = status.SetupFindings(
            missing=tuple(decode_missing(await store.get_meta(MISSING_KEY))),
            unmatched=tuple(decode_unmatched(await store.get_meta(UNMATCHED_KEY))),
        )
    finally:
        await store.close()
    # Ages of the API's timestamps are told on the API's clock, as the daemon last read it.
    api_now = beat.api_now(monotonic_now()) if beat else None  # None: never recorded
    if as_json:
        data = status.as_json(snapshot, now, setup, api_now, silences)
        data["poll"] = json.loads(pace) if pace else None
        if api is not None:  # the last cycle's word on the API: failing since when, and why
            since = api.failing_since
            data["api"] = {
                "failing_since": since.isoformat() if since else None,
                "error": api.last_error,
            }
        data["lease"] = _lease_json(lease)
        data["cost_and_time"] = costview.as_json(snapshot, prices, api_now)
        data["schedules_and_freshness"] = watchview.as_json(watches)
        if accounts:  # several [[accounts]]
            data["accounts"] = accounts
        if shared is not None:  # several replicas on one database
            data.update(replicas_json(*shared))
            data["lease"] = None
        # values redacted before they are JSON-escaped (a secret with a quote in it changes)
        echo(json.dumps(SECRETS.redact_value(data), indent=2))
    else:
        table = partial(status.table, snapshot, now, setup, api_now, silences, local_zone())
        asked = [f"--kb {kb}" for kb in kbs] + [f"--state {state}" for state in states]
        echo(table(empty=f"(no knowledge base matches {' '.join(asked)})") if asked else table())
        if api is not None and api.failing_since is not None:
            echo(inert(SECRETS.redact(_api_failing(api.failing_since, api.last_error, now))))
        for line in account_lines(accounts):
            echo(inert(line))
        for line in costview.lines(snapshot, prices, api_now):
            echo(line)
        for line in watchview.lines(snapshot, watches):
            echo(line)
        if pace:
            p = json.loads(pace)
            every = f"every {p['interval_s']:g}s ({p['reason']})"
            polled = shared is not None or (lease is not None and lease.holder is not None)
            echo(f"Polling {every}" if polled else f"Polling: nobody polls now (the last {every})")
        lines = [_lease_line(lease)] if shared is None else replica_lines(*shared)
        for line in lines:
            echo(inert(line))  # names a host and a command: one line, inert
    return 0


def _api_failing(since: datetime, error: str | None, now: datetime) -> str:
    """`API failing since 2026-12-02T16:35:05+00:00 (3m 10s ago): 401 ...`: why no cycle
    succeeds, as the last one recorded it (a refused token says so here, not only in logs)."""
    ago = format_elapsed(max(now - since, timedelta(0)))
    when = since.isoformat(timespec="seconds")
    return f"API failing since {when} ({ago} ago): {error or 'no answer'}"


async def _watches(store: MetaStore, snapshot: StoreSnapshot) -> dict[str, KbWatch]:
    """What the daemon remembers of each KB's schedule and freshness (unreadable: left out)."""
    found = {}
    for kb in snapshot.kbs:
        raw = await store.get_meta(WATCH_KEY.format(uuid=kb.uuid))
        if raw:
            try:
                found[kb.uuid] = KbWatch.decode(raw)
            except ValueError:
                continue
    return found


def _lease_json(lease: Lease | None) -> dict[str, object] | None:
    """The store's lease for `status --json`: who polls this store (pid, host, command)."""
    if lease is None:
        return None
    holder = lease.holder
    return {
        "epoch": lease.epoch,
        "holder": None
        if holder is None
        else {"command": holder.command, "pid": holder.pid, "host": holder.host},
        "since": None if holder is None else holder.since,
    }


def _lease_line(lease: Lease | None) -> str:
    if lease is None or lease.holder is None:
        return "Polled by: nobody right now (no watcher holds the store)"
    line = f"Polled by: {lease.holder.describe()} (lease epoch {lease.epoch})"
    now = host.lease_time()
    if now.clock != lease.clock or now.seconds >= lease.expires:
        line += "; its lease has run out: that process stopped renewing it"
    return line

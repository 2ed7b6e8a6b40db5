"""Every known secret stays out of every output boundary; no control character reaches a person.

One property per boundary, each over every URL shape apprise documents (`tests.leaks`) and
secrets of all printable characters (in a part secret only by guess, a generic webhook's path,
those that could be a credential: `watcher.config.guessed`), echoed back in the forms an API or
a library would use (raw, percent-encoded, JSON-escaped, in a header dump). The leak check: no
three characters of the secret in a row that the same output made with a stand-in secret does
not also hold.

- the store: `GuardedStore` over a real SQLite file; every column of every table, and the raw
  bytes of the file and its WAL;
- alerts: rows claimed through `GuardedStore` from a store that still holds the secret,
  rendered one by one and grouped, sent through `GuardedNotifier`: every body format, and
  what the notifier reports back;
- the terminal: `watcher status`, `status --json` and `check-config` through the real CLI;
- logs: the real processor chain, console and JSON, exception text included.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import structlog
from click.testing import CliRunner
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.leaks import (
    HOSTILE_NAMES,
    SECRET_PROPERTY,
    SECRETS,
    URL_SHAPES,
    assert_no_leak,
    fits,
    url_with,
    without_times,
)
from tests.stores import open_held, store_with_a_dead_letter
from watcher.cli import main
from watcher.core.guard import GuardedNotifier, GuardedStore
from watcher.core.inert import is_inert
from watcher.core.model import DataSourceJob, EventKind, Job, Phase, Status
from watcher.core.outbox import (
    BodyFormat,
    Budget,
    DeliveryState,
    Message,
    OutboxItem,
    SendResult,
    Settlement,
    TargetResult,
)
from watcher.core.plan import plan
from watcher.core.redact import SECRETS as REGISTRY
from watcher.core.render import DASHBOARD, render
from watcher.core.state import Change, Delivery, JobState, KbState, Transition
from watcher.service.config_secrets import register_url_secrets
from watcher.service.logs import TRACEBACK_MARK, configure_logging

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LOG_LINE = re.compile(r"^<time> +\[", re.MULTILINE)  # a console log line, its time masked
TOKEN_SHAPE = "<the API token>"
SHAPES = st.sampled_from((TOKEN_SHAPE, *URL_SHAPES))
# How a secret comes back from an API, a proxy or a library.
ECHOES: tuple[Callable[[str], str], ...] = (
    lambda s: s,
    lambda s: f"refused: {s}",
    lambda s: f"GET /v2/x?key={quote(s, safe='')} failed",
    lambda s: f"upstream said {json.dumps({'Authorization': 'Bearer ' + s})}",
    lambda s: f"headers: {{'authorization': {s!r}}}",
    lambda s: f"{s}{s} twice, no space",
)
ECHO = st.sampled_from(ECHOES)


def register(shape: str, secret: str) -> None:
    """What the CLI and `open_runtime` do at configuration load, for one secret."""
    REGISTRY.clear()
    if shape == TOKEN_SHAPE:
        REGISTRY.register(secret)
    else:
        register_url_secrets(url_with(shape, secret))


def hostile_job(text: str) -> Job:
    return Job(
        uuid="job-1",
        knowledge_base_uuid="kb-1",
        phase=Phase.FAILED,
        status=Status.FAILED,
        data_source_jobs=(
            DataSourceJob(data_source_uuid="ds-1", error_msg=text, error_details=text),
        ),
    )


def hostile_transition(text: str, kind: EventKind = EventKind.FAILED) -> Transition:
    return Transition(
        event_id="job-1/failed",
        kind=kind,
        at=NOW,
        kb_uuid="kb-1",
        kb_name=f"docs {text}",
        job=hostile_job(text),
        detail=text,
    )


# --- the store --------------------------------------------------------------------------------


async def _write_everything(path: Path, text: str) -> None:
    store = await open_held(path, NOW)
    guarded = GuardedStore(store)
    try:
        transition = hostile_transition(text)
        change = Change(
            cycle_id="c1",
            at=NOW,
            kbs=(KbState("kb-1", f"docs {text}", NOW, "job-1"),),
            jobs=(JobState(hostile_job(text), "kb-1", NOW, NOW),),
            transitions=(transition,),
            deliveries=(Delivery(transition.event_id, "ops"),),
        )
        health = json.dumps({"failing_since": None, "alerted": True, "last_error": text})
        await guarded.record(change, meta={"api_health": health, "note": text})
        [item] = await guarded.claim_due(NOW, 10)
        target = TargetResult("JSON", f"json://x/{text}", ok=False, detail=text, index=0)
        settled = Settlement(item.id, DeliveryState.PENDING, NOW, 1, NOW, text, (target,))
        await guarded.settle([settled])
        await guarded.set_meta("other", text)
    finally:
        await store.close()


def _dump(path: Path) -> str:
    """Every value of every table, then the raw bytes of the file and its WAL (as latin-1)."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [repr(row) for t in tables for row in conn.execute(f"SELECT * FROM {t}")]
    finally:
        conn.close()
    files = [p.read_bytes().decode("latin-1") for p in sorted(path.parent.glob(f"{path.name}*"))]
    return "\n".join(rows + files)


@SECRET_PROPERTY
@given(shape=SHAPES, secret=SECRETS, echo=ECHO)
def test_the_store_holds_no_secret_an_api_or_a_receiver_echoed(
    tmp_path_factory: pytest.TempPathFactory,
    shape: str,
    secret: str,
    echo: Callable[[str], str],
) -> None:
    assume(fits(shape, secret))

    def stored(s: str) -> str:
        register(shape, s)
        path = tmp_path_factory.mktemp("store") / "watcher.db"
        asyncio.run(_write_everything(path, echo(s)))
        return _dump(path)

    assert_no_leak(secret, stored)


# --- alerts -----------------------------------------------------------------------------------


class Capture:
    """A notifier that keeps what it was given and answers with what it is told to."""

    def __init__(self, answer: SendResult) -> None:
        self.answer = answer
        self.sent: list[Message] = []

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return ()

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        self.sent.append(message)
        self.sent.extend((fitted or {}).values())
        return self.answer


class OldStore:
    """A store written by an older version: what it hands out still holds the secret."""

    def __init__(self, items: list[OutboxItem]) -> None:
        self.items = items

    async def claim_due(
        self, now: datetime, limit: int, longest_wait: timedelta | None = None
    ) -> list[OutboxItem]:
        return self.items


def _delivered(text: str) -> str:
    """The path of an alert: rows claimed from the store, rendered (one each, and grouped),
    sent; what a service would get in every format, and what comes back to be logged."""
    item = OutboxItem(1, "ops", hostile_transition(text), "c1", NOW)
    claimed = asyncio.run(GuardedStore(OldStore([item, item])).claim_due(NOW, 10))  # type: ignore[arg-type]
    target = TargetResult("JSON", f"json://x/{text}", ok=False, detail=text)
    inner = Capture(SendResult(ok=False, error=text, targets=(target,)))
    guard = GuardedNotifier(inner)
    # whole, and fitted into a small budget (notes and lists cut after rendering)
    small = {"ops": (Budget(), Budget(body=400, title=80, title_in_body=True))}
    sends = plan(claimed, 5, DASHBOARD, small) + plan(claimed, 1, DASHBOARD, small)
    results = [
        asyncio.run(guard.send("ops", send.message, send.skip, dict(send.fitted))) for send in sends
    ]
    sent = [m.title + "\n" + "\n".join(m.body_in(f) for f in BodyFormat) for m in inner.sent]
    return "\n".join(sent + [repr(r) for r in results])


@SECRET_PROPERTY
@given(shape=SHAPES, secret=SECRETS, echo=ECHO)
def test_no_alert_carries_a_secret_in_any_format_and_no_result_brings_one_back(
    shape: str, secret: str, echo: Callable[[str], str]
) -> None:
    assume(fits(shape, secret))

    def alerts(s: str) -> str:
        register(shape, s)
        return _delivered(echo(s))

    assert_no_leak(secret, alerts)


@SECRET_PROPERTY
@given(name=HOSTILE_NAMES, kind=st.sampled_from(list(EventKind)))
def test_no_control_character_reaches_an_alert(name: str, kind: EventKind) -> None:
    inner = Capture(SendResult(ok=True))
    guard = GuardedNotifier(inner)
    asyncio.run(guard.send("ops", render(hostile_transition(name, kind))))
    [message] = inner.sent
    assert is_inert(message.title)
    assert all(is_inert(message.body_in(f), newlines=True) for f in BodyFormat)


# --- the terminal -----------------------------------------------------------------------------


def _config(tmp: Path, url: str) -> Path:
    path = tmp / "watcher.toml"
    text = (
        f'[state]\npath = "{(tmp / "watcher.db").as_posix()}"\n'
        f'[[routes]]\nname = "ops"\nurls = [{json.dumps(url)}]\n'
    )
    path.write_text(text, encoding="utf-8")
    return path


async def _old_store(path: Path, text: str) -> None:
    """A store written without the guard (by an older version): secrets and controls in it."""
    await store_with_a_dead_letter(path, NOW, hostile_transition(text), text, text)


def _cli(tmp: Path, url: str, *args: str, token: str = "dop_v1_" + "0" * 64) -> str:
    REGISTRY.clear()
    env = {"DIGITALOCEAN_ACCESS_TOKEN": token, "WATCHER_CONFIG": str(_config(tmp, url))}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.output


TERMINAL_SHAPES = st.sampled_from(tuple(s for s in URL_SHAPES if not s.startswith("tgram")))


@SECRET_PROPERTY
@given(shape=TERMINAL_SHAPES, secret=SECRETS, echo=ECHO)
def test_status_and_status_json_print_no_secret_even_from_an_old_store(
    tmp_path_factory: pytest.TempPathFactory,
    shape: str,
    secret: str,
    echo: Callable[[str], str],
) -> None:
    assume(fits(shape, secret))

    def printed(s: str) -> str:
        tmp = tmp_path_factory.mktemp("status")
        asyncio.run(_old_store(tmp / "watcher.db", echo(s)))
        url = url_with(shape, s)
        return without_times(_cli(tmp, url, "status") + _cli(tmp, url, "status", "--json"))

    assert_no_leak(secret, printed)


@SECRET_PROPERTY
@given(shape=TERMINAL_SHAPES, secret=SECRETS)
def test_check_config_prints_no_secret(
    tmp_path_factory: pytest.TempPathFactory, shape: str, secret: str
) -> None:
    assume(fits(shape, secret))

    def printed(s: str) -> str:
        return _cli(tmp_path_factory.mktemp("check"), url_with(shape, s), "check-config")

    assert_no_leak(secret, printed)


@SECRET_PROPERTY
@given(name=HOSTILE_NAMES)
def test_status_never_writes_a_control_character_to_the_terminal(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    """A KB name with escape sequences, BEL, NUL or a newline neither drives the terminal nor
    forges a row: the table has exactly one line for the one knowledge base."""
    tmp = tmp_path_factory.mktemp("controls")
    asyncio.run(_old_store(tmp / "watcher.db", name))
    table = _cli(tmp, "json://127.0.0.1:9/hook", "status")
    as_json = _cli(tmp, "json://127.0.0.1:9/hook", "status", "--json")
    for output in (table, as_json):
        assert is_inert(output, newlines=True), repr(output)
    rows = [line for line in table.splitlines() if "job-1" in line]
    assert len([line for line in rows if not line.startswith("  dead #")]) == 1, table


# --- logs -------------------------------------------------------------------------------------


def _logged(text: str, fmt: str) -> str:
    stream = io.StringIO()
    configure_logging("debug", fmt, stream=stream)
    log = structlog.get_logger("test")
    log.warning("api_failed", error=text, nested={"items": [text, 3]})
    logging.getLogger("apprise").warning("could not send to %s", text)
    try:
        raise RuntimeError(text)
    except RuntimeError:
        log.exception("cycle_crashed")
    structlog.reset_defaults()
    return without_times(stream.getvalue())


@SECRET_PROPERTY
@given(shape=SHAPES, secret=SECRETS, echo=ECHO, fmt=st.sampled_from(["console", "json"]))
def test_no_log_line_shows_a_secret(
    shape: str, secret: str, echo: Callable[[str], str], fmt: str
) -> None:
    assume(fits(shape, secret))

    def logged(s: str) -> str:
        register(shape, s)
        return _logged(echo(s), fmt)

    assert_no_leak(secret, logged)


@SECRET_PROPERTY
@given(name=HOSTILE_NAMES)
def test_no_log_line_carries_a_control_character(name: str) -> None:
    output = _logged(name, "console")
    assert is_inert(output, newlines=True), repr(output)
    # every line is a log line (it starts with its time) or a marked traceback line
    for line in output.splitlines():
        assert LOG_LINE.match(line) or line.startswith(TRACEBACK_MARK), repr(line)
    assert len(LOG_LINE.findall(output)) == len(LOG_LINE.findall(_logged("plain", "console")))

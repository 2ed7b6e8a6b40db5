"""A webhook path made of ordinary words (`/watcher`, `/hooks/alerts`) masks none of them in
logs, alerts, `status` or `check-config`: a part of a URL secret only by guess is masked only
when it could be a credential (`watcher.config.guessed`), and a token-looking segment beside
the words still is, everywhere."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner

from tests.core.test_guard import Capture
from tests.service.test_logs import restore_logging  # noqa: F401  (autouse: logs put back)
from tests.stores import store_with_a_dead_letter
from watcher.cli import main
from watcher.config import load_config
from watcher.core.guard import GuardedNotifier
from watcher.core.model import DataSourceJob, EventKind, Job, Phase, Status
from watcher.core.outbox import Message, SendResult
from watcher.core.redact import SECRETS
from watcher.core.render import render
from watcher.core.state import Transition
from watcher.service.config_secrets import register_config_secrets
from watcher.service.logs import configure_logging

TOKEN = "dop_v1_" + "0" * 64
KEY = "Wq7TzXk2pLm9"  # a webhook's secret path segment
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def _config(tmp: Path, url: str, ping: str = "") -> Path:
    path = tmp / "watcher.toml"
    text = (
        f'[state]\npath = "{(tmp / "watcher.db").as_posix()}"\n'
        f'[[routes]]\nname = "ops"\nurls = [{json.dumps(url)}]\n'
        f"[heartbeat]\nurl = {json.dumps(ping)}\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


def _loaded(tmp: Path, url: str, ping: str = "") -> None:
    """What `run` does at start: register the config's secrets, classified at once."""
    config = load_config(_config(tmp, url, ping), {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    register_config_secrets(config)
    SECRETS.resolve_pending()


def _log_line(logger: str, event: str, **values: Any) -> dict[str, Any]:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    structlog.get_logger(logger).info(event, **values)
    [line] = out.getvalue().splitlines()
    return json.loads(line)  # type: ignore[no-any-return]


def test_a_route_with_the_path_watcher_leaves_logger_names_and_text_readable(
    tmp_path: Path,
) -> None:
    _loaded(tmp_path, "json://127.0.0.1:33379/watcher")
    line = _log_line("watcher.service.extrarun", "extra_reads_planned", note="the watcher plans")
    assert line["logger"] == "watcher.service.extrarun"
    assert line["note"] == "the watcher plans"


def test_a_route_with_the_path_hooks_alerts_leaves_those_words_readable(tmp_path: Path) -> None:
    _loaded(tmp_path, "json://127.0.0.1:33379/hooks/alerts")
    line = _log_line("watcher.service.cycle", "alert_sent", detail="2 alerts sent to /hooks/alerts")
    assert line["detail"] == "2 alerts sent to /hooks/alerts"


def test_a_path_named_like_one_of_our_modules_never_masks_its_logger(tmp_path: Path) -> None:
    """`pgschema` reads as no word (five consonants in a row), but it is a name of ours."""
    _loaded(tmp_path, "json://127.0.0.1:33379/pgschema")
    line = _log_line("watcher.edges.store.pgschema", "schema_checked")
    assert line["logger"] == "watcher.edges.store.pgschema"


def test_a_heartbeat_path_of_words_masks_none_of_them_and_a_uuid_path_is_masked(
    tmp_path: Path,
) -> None:
    uuid = "9f3c1b2a-4d5e-11ef-8a1b-0242ac120002"
    _loaded(tmp_path, "json://127.0.0.1:9/x", ping="https://hc.example.com/watcher")
    line = _log_line("watcher.service.heartbeat", "ping_failed", path="/watcher", uuid=uuid)
    assert (line["logger"], line["path"], line["uuid"]) == (
        "watcher.service.heartbeat",
        "/watcher",
        uuid,
    )
    SECRETS.clear()
    _loaded(tmp_path, "json://127.0.0.1:9/x", ping=f"https://hc-ping.com/{uuid}")
    line = _log_line("watcher.service.heartbeat", "ping_failed", said=f"no check {uuid}")
    assert line["said"] == "no check ***"


URL = f"json://127.0.0.1:9/hooks/alerts/{KEY}"
SAID = f"alerts refused at /hooks/alerts/{KEY}: watcher key {KEY} unknown"
# the whole path is secret once a segment of it is: it goes as one piece
SHOWN = "alerts refused at /***: watcher key *** unknown"


def test_a_token_looking_segment_beside_the_words_is_masked_in_a_log_line(
    tmp_path: Path,
) -> None:
    _loaded(tmp_path, URL)
    line = _log_line("watcher.service.cycle", "alert_failed", error=SAID)
    assert (line["logger"], line["error"]) == ("watcher.service.cycle", SHOWN)


class Refusing(Capture):
    """A notifier that keeps what it is given and answers with the receiver's words."""

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        await super().send(route, message, skip, fitted)
        return SendResult(ok=False, error=SAID)


def _transition() -> Transition:
    job = Job(
        uuid="job-1",
        knowledge_base_uuid="kb-1",
        phase=Phase.FAILED,
        status=Status.FAILED,
        data_source_jobs=(DataSourceJob(data_source_uuid="ds-1", error_msg=SAID),),
    )
    return Transition("job-1/failed", EventKind.FAILED, NOW, "kb-1", "alerts", job, detail=SAID)


def test_a_token_looking_segment_beside_the_words_is_masked_in_an_alert(tmp_path: Path) -> None:
    _loaded(tmp_path, URL)
    inner = Refusing()
    result = asyncio.run(GuardedNotifier(inner).send("ops", render(_transition())))
    [sent] = inner.sent
    assert KEY not in sent.title + sent.body + sent.text + sent.html
    assert SHOWN in sent.text and "alerts" in sent.title
    assert result.error == SHOWN


def _cli(tmp: Path, *args: str) -> str:
    SECRETS.clear()
    env = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN, "WATCHER_CONFIG": str(_config(tmp, URL))}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False).output


@pytest.mark.parametrize(
    "url", ["json://127.0.0.1:45527/hooks/watcher", "json://example.com/hooks/alerts"]
)
def test_a_route_url_with_no_secret_in_it_is_shown_whole(tmp_path: Path, url: str) -> None:
    """A URL none of whose parts is a secret is no secret either: `check-config`, a log
    line's `target` and a delivery's words show it as written, not as `***`."""
    SECRETS.clear()
    env = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN, "WATCHER_CONFIG": str(_config(tmp_path, url))}
    shown = CliRunner().invoke(main, ["check-config"], env=env, catch_exceptions=False).output
    assert url in shown
    _loaded(tmp_path, url)
    line = _log_line("watcher.service.dispatch", "alert_delivered", target=url)
    assert line["target"] == url
    assert SECRETS.redact(f"posted to {url}") == f"posted to {url}"


def test_a_route_url_with_a_secret_in_it_is_masked_whole_where_it_appears_as_written(
    tmp_path: Path,
) -> None:
    _loaded(tmp_path, URL)
    assert URL not in SECRETS.redact(f"posted to {URL}")
    assert KEY not in SECRETS.redact(f"posted to {URL}")


def test_check_config_shows_the_words_of_the_path_and_masks_the_token(tmp_path: Path) -> None:
    shown = _cli(tmp_path, "check-config")
    assert KEY not in shown
    assert "json://127.0.0.1:9/hooks/alerts/****" in shown


def test_status_shows_the_words_and_masks_the_token(tmp_path: Path) -> None:
    path = tmp_path / "watcher.db"
    asyncio.run(store_with_a_dead_letter(path, NOW, _transition(), "alerts", SAID))
    for shown in (_cli(tmp_path, "status"), _cli(tmp_path, "status", "--json")):
        assert KEY not in shown
        assert SHOWN in shown, shown

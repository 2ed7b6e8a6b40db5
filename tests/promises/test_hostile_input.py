"""Hostile input never crashes the watcher, never injects markup into alerts, never leaks.

- Random JSON to the wire parsers and random answers (status, headers, body) to the API
  client through `httpx.MockTransport`: a parsed value or a typed `watcher.core.errors` error.
- Random TOML text and random config tables to `load_config`: only `ConfigError`.
- KB names and API error texts full of markdown links, `<script>`, backticks and newlines
  reach a webhook and an email (text and HTML parts) escaped.
- The state file is private (0600); plain http to a non-loopback host is refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.harness import TOKEN, open_harness, route
from tests.promises import PROPERTY
from tests.receivers import SmtpReceiver, WebhookReceiver
from watcher.config import Config, load_config
from watcher.core.errors import ConfigError, MalformedResponse, WatcherError
from watcher.core.inert import is_inert
from watcher.edges.api import wire
from watcher.edges.api.client import ApiClient, ApiSettings, RequestRetry

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
ENUMISH = st.sampled_from(
    [
        "BATCH_JOB_PHASE_RUNNING",
        "BATCH_JOB_PHASE_SUCCEEDED",
        "INDEX_JOB_STATUS_PARTIAL",
        "index_job_status_completed",
        "BATCH_JOB_PHASE_COMPLETED",
        "",
        " ",
    ]
)
FIELD_VALUES = JSON | ENUMISH | st.sampled_from(["0001-01-01T00:00:00Z", "2026-13-45T99:00:00Z"])
FIELD_VALUES |= st.sampled_from(["9999-12-31T23:59:59-23:59", "1e400", "NaN", "-0", "12.0"])
JOB_KEYS = [
    "uuid",
    "knowledge_base_uuid",
    "phase",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "completed_datasources",
    "total_datasources",
    "total_tokens",
    "tokens",
    "is_report_available",
    "data_source_uuids",
    "data_source_jobs",
    "total_items_failed",
]
JOBISH = st.dictionaries(st.sampled_from(JOB_KEYS), FIELD_VALUES, max_size=12)
JOBISH = JOBISH | st.fixed_dictionaries(
    {"uuid": st.text(min_size=1, max_size=8)},
    optional={k: FIELD_VALUES for k in JOB_KEYS[1:]}
    | {"data_source_jobs": st.lists(st.dictionaries(st.text(max_size=20), FIELD_VALUES))},
)
KBISH = st.fixed_dictionaries(
    {}, optional={"uuid": FIELD_VALUES, "name": FIELD_VALUES, "last_indexing_job": JOBISH | JSON}
)
BODIES = JSON | st.fixed_dictionaries(
    {},
    optional={
        "jobs": st.lists(JOBISH | JSON, max_size=4) | JSON,
        "job": JOBISH | JSON,
        "knowledge_bases": st.lists(KBISH | JSON, max_size=4) | JSON,
        "indexed_data_sources": st.lists(JSON, max_size=3) | JSON,
        "links": JSON | st.just({"pages": {"next": "x"}}),
        "meta": JSON | st.fixed_dictionaries({"page": FIELD_VALUES, "pages": FIELD_VALUES}),
    },
)


@PROPERTY
@given(body=BODIES)
def test_wire_parsing_of_any_json_gives_values_or_malformed_response(body: object) -> None:
    parsers: list[Callable[[], object]] = [
        lambda: wire.parse_page(body, "jobs", wire.parse_job),
        lambda: wire.parse_page(body, "knowledge_bases", wire.parse_knowledge_base),
        lambda: wire.parse_single(body, "job", wire.parse_job),
        lambda: wire.parse_items(body, "indexed_data_sources", wire.parse_data_source),
        lambda: wire.parse_api_error(body),
    ]
    for parse in parsers:
        with contextlib.suppress(MalformedResponse):
            parse()


@PROPERTY
@given(job=JOBISH)
def test_any_job_object_parses_or_is_skipped_and_its_values_are_sane(job: dict[str, Any]) -> None:
    try:
        parsed = wire.parse_job(job)
    except wire.SkippedItem:
        return
    _ = (parsed.is_terminal, parsed.outcome, parsed.is_running, parsed.is_pending)
    for moment in (parsed.created_at, parsed.started_at, parsed.finished_at, parsed.updated_at):
        assert moment is None or moment.tzinfo is not None


@PROPERTY
@given(headers=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=6))
def test_rate_limit_headers_of_any_text_parse_to_numbers_or_none(
    headers: dict[str, str],
) -> None:
    rate = wire.parse_rate_limit(headers, now=1.8e9)
    assert rate.retry_after is None or (math.isfinite(rate.retry_after) and rate.retry_after >= 0)


ANSWERS = st.tuples(
    st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 409, 429, 500, 502, 503]),
    st.dictionaries(
        st.sampled_from(["retry-after", "ratelimit-reset", "ratelimit-remaining", "x-request-id"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    ),
    st.one_of(
        BODIES.map(lambda b: json.dumps(b, allow_nan=True).encode()),
        st.binary(max_size=200),
        st.just(b"<html><body>502 Bad Gateway</body></html>"),
    ),
)


@PROPERTY
@given(answers=st.lists(ANSWERS, min_size=1, max_size=6))
async def test_the_client_turns_any_answer_into_a_value_or_a_typed_error(
    answers: list[tuple[int, dict[str, str], bytes]],
) -> None:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        assert TOKEN in request.headers["authorization"]
        status, headers, body = queue.pop(0) if queue else answers[-1]
        return httpx.Response(status, headers=headers, content=body)

    async def no_wait(seconds: float) -> None:
        assert seconds >= 0

    client = ApiClient(
        ApiSettings(
            "https://api.example.invalid", max_list_items=600, retry=RequestRetry(max_attempts=2)
        ),
        TOKEN,
        token_source="test",
        transport=httpx.MockTransport(handler),
        sleep=no_wait,
    )
    async with client:
        for call in (
            client.list_knowledge_bases,
            client.list_jobs,
            lambda: client.get_job("job-1"),
            lambda: client.list_kb_jobs("kb-1"),
            lambda: client.list_job_data_sources("job-1"),
        ):
            try:
                await call()
            except WatcherError as exc:
                assert TOKEN not in str(exc)
                assert TOKEN[7:] not in str(exc)


# --- configuration ---------------------------------------------------------------------

TOML_TEXT = st.text(max_size=200) | st.lists(
    st.sampled_from(
        [
            "[api]",
            "[poll]",
            "[[routes]]",
            "[[knowledge_bases]]",
            "[stall]",
            'base_url = "http://10.0.0.1"',
            'interval = "-5s"',
            "interval = 0",
            'urls = ["json://127.0.0.1:9/x"]',
            'name = "ops"',
            'uuid = "nope"',
            "events = ['*']",
            "events = 3",
            'token_file = "/nonexistent"',
            "x = [1, 'a']",
            'timeout = "1e9d"',
            "per_page = 99999999999999999999999",
            "= broken",
        ]
    ),
    max_size=12,
).map("\n".join)


@PROPERTY
@given(text=TOML_TEXT)
def test_any_toml_text_loads_or_raises_only_config_error(text: str, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("cfg") / "watcher.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path, {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    except ConfigError as exc:
        assert TOKEN not in str(exc)


SECTIONS = ["api", "poll", "stall", "state", "delivery", "alerts", "log", "http", "routes"]
KEYS = [
    "base_url",
    "timeout",
    "interval",
    "active_interval",
    "jitter",
    "path",
    "retry_base",
    "storm_threshold",
    "level",
    "format",
    "listen",
    "no_progress_after",
    "per_page",
    "max_requests_per_minute",
    "token_file",
    "bogus",
]
SCALARS = (
    st.text(max_size=20)
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["30s", "1h30m", "0s", "-1s", "http://127.0.0.1:1", "https://x.invalid"])
)
TABLE = st.dictionaries(st.sampled_from(KEYS), SCALARS | st.lists(SCALARS, max_size=3), max_size=4)
CONFIGS = st.dictionaries(st.sampled_from(SECTIONS), TABLE, max_size=4) | st.fixed_dictionaries(
    {},
    optional={
        "routes": st.lists(
            st.dictionaries(
                st.sampled_from(["name", "urls", "events", "knowledge_bases", "bogus"]),
                SCALARS | st.lists(SCALARS, max_size=3),
                max_size=4,
            ),
            max_size=3,
        ),
        "knowledge_bases": st.lists(
            st.dictionaries(st.sampled_from(["uuid", "name", "x"]), SCALARS, max_size=2),
            max_size=3,
        ),
        "poll": TABLE,
    },
)


def toml(data: Mapping[str, Any]) -> str:
    """A minimal TOML writer for the generated tables (scalars, arrays, tables, arrays of)."""
    lines: list[str] = []
    for name, value in data.items():
        if isinstance(value, list):
            for entry in value:
                lines.append(f"[[{name}]]")
                lines += [f"{_key(k)} = {_value(v)}" for k, v in entry.items()]
        else:
            lines.append(f"[{name}]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value) if "e" in repr(value) or "." in repr(value) else f"{value}.0"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


@PROPERTY
@given(data=CONFIGS)
@example(data={"api": {"timeout": -86399999913601}})  # once an OverflowError, not ConfigError
@example(data={"stall": {"no_progress_after": "9" * 40 + "d"}})
def test_any_config_table_loads_or_raises_only_config_error(
    data: dict[str, Any], tmp_path_factory: Any
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "watcher.toml"
    path.write_text(toml(data), encoding="utf-8")
    try:
        load_config(path, {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    except ConfigError as exc:
        assert TOKEN not in str(exc)


# --- security ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://api.digitalocean.com", "http://10.0.0.5:8080", "http://[2001:db8::1]"]
)
def test_plain_http_to_a_non_loopback_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"api\.base_url") as caught:
        Config.from_mapping({"api": {"base_url": url}}, token=TOKEN)
    assert "loopback" in str(caught.value)
    assert TOKEN not in str(caught.value)


HOSTILE = (
    "[click me](http://evil.example/steal) <script>alert('x')</script> `rm -rf /` "
    "<img src=x onerror=alert(1)>\n# Heading\n**bold** ![img](http://evil.example/i.png)"
)


# a markdown link that is not ours (the control panel's)
UNESCAPED_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\((?!https://cloud\.digitalocean\.com/)")
UNESCAPED_TAG = re.compile(r"(?<!\\)<\s*(script|img)")


async def test_hostile_kb_names_and_errors_reach_webhook_and_email_escaped(
    tmp_path: Path, webhook_receiver: WebhookReceiver, smtp_receiver: SmtpReceiver
) -> None:
    scenario = {
        "name": "hostile",
        "knowledge_bases": [
            {"key": "evil", "name": HOSTILE, "data_sources": [{"key": "x", "items": 20}]}
        ],
        "timeline": [
            {
                "at": 5,
                "start_job": {
                    "kb": "evil",
                    "run": 10,
                    "outcome": "failed",
                    "error_msg": HOSTILE,
                    "error_details": HOSTILE,
                },
            }
        ],
    }
    routes = [
        route("hook", webhook_receiver.url_json("/hook"), ["failed"]),
        route("mail", smtp_receiver.url, ["failed"]),
    ]
    async with open_harness(scenario, tmp_path, webhook_receiver, routes=routes) as rig:
        await rig.cycle()
        await rig.run(30)
        mode = stat.S_IMODE((tmp_path / "watcher.db").stat().st_mode)
    assert mode == 0o600
    [hook] = [r.json for r in webhook_receiver.requests]
    [mail] = smtp_receiver.mails
    # titles are plain text on one line: shown as the API wrote the name, never as markup
    for title in (hook["title"], mail.subject):
        assert "\n" not in title and is_inert(title), title
        assert "[click me](http://evil.example/steal)" in title
    # the webhook's body is markdown: every link and tag escaped
    assert not UNESCAPED_LINK.search(hook["message"]), hook["message"]
    assert not UNESCAPED_TAG.search(hook["message"]), hook["message"]
    assert "\\[click me\\](http://evil" in hook["message"]
    assert "\\<script\\>" in hook["message"]
    # the email's HTML part is our HTML body: entities, no tag, no link but the control panel's
    html_part = mail.message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "<script" not in html and "<img" not in html
    assert 'href="http://evil.example' not in html
    assert "&lt;script&gt;" in html
    # the email's text part shows the API's words literally, as plain text may
    assert "<script>alert('x')</script>" in mail.text


async def test_the_longest_durations_a_config_accepts_run_cycles_without_overflow(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    from tests.harness import job_scenario

    longest = {k: "3650d" for k in ("no_progress_after", "pending_after", "max_runtime")}
    scenario = job_scenario(["docs"], [{"at": 5, "kb": "docs", "run": 20}])
    async with open_harness(
        scenario, tmp_path, webhook_receiver, stall=longest, delivery={"dead_after": "3650d"}
    ) as rig:
        await rig.cycle()
        await rig.run(40)
        assert all(report.ok for report in rig.reports)
        assert [a.kind.value for a in rig.alerts()] == ["started", "completed"]

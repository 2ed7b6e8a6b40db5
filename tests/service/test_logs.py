"""Logging: one redacting chain, JSON off a terminal, stdlib loggers in the same format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from watcher.core.redact import SECRETS
from watcher.service.logs import configure_logging

REGISTERED = "my-registered-secret-42"
DO_TOKEN = "dop_v1_" + "fedcba9876543210" * 4
LEAKS = (REGISTERED, DO_TOKEN, "fedcba9876543210")


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root logger, structlog, the secret registry and the context back after a test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)
    structlog.contextvars.clear_contextvars()
    SECRETS.clear()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def fail_with_token_in_a_local() -> None:
    token = DO_TOKEN
    registered = REGISTERED
    raise RuntimeError(f"API refused {token} (also {registered})")


def test_lines_are_json_with_level_timestamp_and_bound_context_when_not_a_tty() -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    structlog.contextvars.bind_contextvars(cycle_id="c-17", kb="kb-1")
    structlog.get_logger("watcher.service.cycle").info("cycle_finished", jobs=3)

    [line] = json_lines(out)
    assert line["event"] == "cycle_finished"
    assert line["level"] == "info"
    assert line["cycle_id"] == "c-17"
    assert line["kb"] == "kb-1"
    assert line["jobs"] == 3
    assert line["logger"] == "watcher.service.cycle"
    assert line["timestamp"].endswith("Z")


def test_numbers_booleans_and_none_come_out_as_they_went_in_and_strings_are_still_redacted() -> (
    None
):
    """The scalars of a `cycle_finished` line skip redaction (nothing in them to mask), the
    strings beside them do not."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    SECRETS.register(REGISTERED)
    structlog.get_logger("watcher.service.daemon").info(
        "cycle_finished", ok=True, duration_s=0.25, requests=3, due=None, error=f"x {REGISTERED}"
    )

    [line] = json_lines(out)
    assert (line["ok"], line["duration_s"], line["requests"], line["due"]) == (True, 0.25, 3, None)
    assert REGISTERED not in line["error"]


def test_console_format_is_used_when_forced_even_off_a_terminal() -> None:
    out = io.StringIO()
    configure_logging("info", "console", stream=out)
    structlog.get_logger("watcher.service.cycle").info("cycle_finished", jobs=3)

    text = out.getvalue()
    assert "cycle_finished" in text
    assert "jobs=3" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_auto_format_is_console_on_a_terminal_and_json_when_forced() -> None:
    tty = Terminal()
    configure_logging("info", "auto", stream=tty)
    structlog.get_logger().info("on_terminal")
    assert "on_terminal" in tty.getvalue()
    assert not tty.getvalue().lstrip().startswith("{")

    forced = Terminal()
    configure_logging("info", "json", stream=forced)
    structlog.get_logger().info("forced_json")
    assert json_lines(forced)[0]["event"] == "forced_json"


def test_stdlib_library_loggers_come_out_in_the_same_json_format() -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    structlog.contextvars.bind_contextvars(cycle_id="c-9")
    logging.getLogger("apprise").warning("Failed to send %s notification", "Slack")

    [line] = json_lines(out)
    assert line["event"] == "Failed to send Slack notification"
    assert line["level"] == "warning"
    assert line["logger"] == "apprise"
    assert line["cycle_id"] == "c-9"
    assert "timestamp" in line


def test_level_filtering_drops_lower_levels_from_structlog_and_stdlib() -> None:
    out = io.StringIO()
    configure_logging("warning", stream=out)
    log = structlog.get_logger("watcher.test")
    log.info("dropped_info")
    logging.getLogger("watcher.other").info("dropped stdlib info")
    log.warning("kept_warning")
    log.error("kept_error")

    assert [line["event"] for line in json_lines(out)] == ["kept_warning", "kept_error"]


def test_noisy_libraries_are_quiet_at_info_and_audible_at_debug() -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    logging.getLogger("httpx").info("HTTP Request: GET /v2")
    logging.getLogger("apprise").info("Sent notification")
    assert out.getvalue() == ""

    configure_logging("debug", stream=out)
    logging.getLogger("httpx").info("HTTP Request: GET /v2")
    assert [line["event"] for line in json_lines(out)] == ["HTTP Request: GET /v2"]


def test_configuring_twice_does_not_duplicate_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", stream=first)
    configure_logging("info", stream=second)
    structlog.get_logger().info("once")
    logging.getLogger("apprise").warning("once too")

    assert first.getvalue() == ""
    assert [line["event"] for line in json_lines(second)] == ["once", "once too"]


def test_unknown_level_or_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="debug"):
        configure_logging("loud")
    with pytest.raises(ValueError, match="console"):
        configure_logging("info", "xml")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secrets_never_reach_the_output_from_any_source(fmt: str) -> None:
    """A registered and a dop_v1_ token are masked in events, kwargs, stdlib and tracebacks."""
    out = io.StringIO()
    configure_logging("debug", fmt, stream=out)
    SECRETS.register(REGISTERED)
    log = structlog.get_logger("watcher.test")

    log.info(f"event carrying {REGISTERED}")
    log.info(
        "kwarg_carrying", token=DO_TOKEN, url=f"https://x:{REGISTERED}@h/", nested=[REGISTERED]
    )
    logging.getLogger("apprise").warning("sending with %s and %s", REGISTERED, DO_TOKEN)
    try:
        fail_with_token_in_a_local()
    except RuntimeError:
        log.exception("api_call_failed")
        logging.getLogger("apscheduler").exception("job raised")

    text = out.getvalue()
    assert "api_call_failed" in text
    assert "fail_with_token_in_a_local" in text  # the traceback is there...
    for leak in LEAKS:
        assert leak not in text  # ...but no secret in it, its message or its frame locals
    assert text.count("***") >= 8


def test_json_tracebacks_carry_frames_without_locals() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    try:
        fail_with_token_in_a_local()
    except RuntimeError:
        structlog.get_logger().exception("api_call_failed")

    [line] = json_lines(out)
    [exc] = line["exception"]
    assert exc["exc_type"] == "RuntimeError"
    assert exc["exc_value"].startswith("API refused dop_v1_***")
    assert [f["name"] for f in exc["frames"]][-1] == "fail_with_token_in_a_local"
    assert all("locals" not in frame for frame in exc["frames"])

"""The one place logging is configured: structlog and stdlib loggers share one processor chain.

Every line, whether it comes from `structlog.get_logger()` or from a library's stdlib logger
(apprise, httpx, apscheduler, uvicorn, asyncio), runs through the same list of processors inside
a `structlog.stdlib.ProcessorFormatter`, so it carries the same keys, is redacted the same way
and comes out as JSON when the stream is not a terminal, or as console text when it is.

The redaction step is the log boundary of `watcher.core.redact.SECRETS`: every known secret is
masked in every value, exception text included, and every string is made inert
(`watcher.core.inert`): a KB name or an API message cannot drive the terminal or forge a log line.
Only a rendered traceback keeps its line breaks, and on a terminal each of its lines starts
with a mark, so that an exception's message cannot pass for a log line either.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from watcher.core.inert import inert
from watcher.core.redact import SECRETS

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
FORMATS = ("auto", "json", "console")

# Chatty libraries: their INFO lines repeat every cycle and say nothing an operator needs.
_QUIET_UNLESS_DEBUG = ("httpx", "httpcore", "apscheduler", "uvicorn", "uvicorn.error")
_ALWAYS_QUIET = ("apprise",)
_ROUTED = ("apprise", "httpx", "httpcore", "apscheduler", "uvicorn", "asyncio")

# Keys whose values the redaction processor must leave alone: exc_info is an exception tuple
# that the exception step has already turned into text (or data) before redaction runs.
_NOT_REDACTED = frozenset({"exc_info", "_record", "_from_structlog"})
# Values that no redaction or neutralising changes (`redact_value` and `_inert_value` return them
# as they are): most of a `cycle_finished` line, which is written every cycle.
_SCALARS = (bool, int, float, type(None))
# Values that are multi-line on purpose (a formatted traceback).
_MULTILINE = frozenset({"exception", "stack"})
TRACEBACK_MARK = "  │ "

_handler: logging.Handler | None = None


def configure_logging(
    level: str = "info", fmt: str = "auto", *, stream: TextIO | None = None
) -> None:
    """Send every log line (structlog and stdlib) through one redacting chain to `stream`."""
    numeric = _parse_level(level)
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = stream if stream is not None else sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not _is_tty(out))
    # Handlers run synchronously in the thread that logs, so context variables and the clock
    # read at format time are those of the call: the whole chain can live in the formatter.
    chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.StackInfoRenderer(),
        # Frame locals are never rendered: a token was seen leaking through them.
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        if as_json
        else structlog.processors.format_exc_info,
        redact_secrets,
        *([] if as_json else [mark_traceback]),
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=_is_tty(out), exception_formatter=structlog.dev.plain_traceback
        ),
    ]
    handler = logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processors=chain))
    _install(handler, numeric)
    structlog.configure(
        processors=[structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached, so a later configure_logging call (a reload, a test) reaches every logger.
        cache_logger_on_first_use=False,
    )


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Mask registered secrets and secret shapes in every event value, exception text included,
    and neutralise control and bidi characters in every string."""
    return {
        key: value
        if key in _NOT_REDACTED or isinstance(value, _SCALARS)
        else _inert_value(SECRETS.redact_value(value), multiline=key in _MULTILINE)
        for key, value in event_dict.items()
    }


def mark_traceback(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """On a terminal, start every line of a traceback with `TRACEBACK_MARK`: an exception's
    message (which may quote the API) then cannot pass a line of its own for a log line."""
    text = event_dict.get("exception")
    if isinstance(text, str) and text:
        event_dict["exception"] = "\n".join(TRACEBACK_MARK + line for line in text.split("\n"))
    return event_dict


def _inert_value(value: object, *, multiline: bool = False) -> object:
    """`value` (already redacted: strings, numbers, lists and dicts) with inert strings."""
    if isinstance(value, str):
        return inert(value, newlines=multiline)
    if isinstance(value, dict):
        return {_inert_value(k): _inert_value(v, multiline=multiline) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_inert_value(v, multiline=multiline) for v in value)
    return value


def _install(handler: logging.Handler, numeric: int) -> None:
    """Replace the previous handler on the root logger and set the libraries' levels."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(numeric)
    _handler = handler
    for name in _ROUTED:
        logging.getLogger(name).propagate = True
        logging.getLogger(name).setLevel(logging.NOTSET)
    quiet = max(numeric, logging.WARNING)
    for name in _QUIET_UNLESS_DEBUG:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else quiet)
    # Filtered at the handler, not by the logger's level: the apprise notifier turns apprise's
    # DEBUG lines on to read HTTP statuses and SMTP replies from them (they never reach here).
    handler.addFilter(_QuietBelow(_ALWAYS_QUIET, quiet))


class _QuietBelow(logging.Filter):
    """Drops the records of the named libraries below `level`."""

    def __init__(self, names: tuple[str, ...], level: int) -> None:
        super().__init__()
        self.names, self.level = names, level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or record.name.split(".")[0] not in self.names


def _parse_level(level: str) -> int:
    """Return the stdlib level for a name like `info`; raise ValueError naming the choices."""
    try:
        return LEVELS[level.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}") from None


def _is_tty(stream: Any) -> bool:
    """Return whether `stream` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False

"""The `console://` apprise scheme: prints each alert as a framed block on stdout (`watcher demo`).

Registered with apprise's `@notify` decorator, so alerts reach the terminal through the same
delivery path as Slack or email. It takes plain text (the alert's text body, nothing to strip)
and, being a terminal, prints nothing but inert text (`watcher.core.inert`): the only escape
sequences on screen are its own colours. `console://?color=no` turns colour off; by default
colour is used when stdout is a terminal and `NO_COLOR` is unset, and `color=yes` forces it.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any

import apprise
from apprise.decorators import notify
from apprise.manager_plugins import NotificationManager

from watcher.core.inert import inert

SCHEME = "console"
_WIDTH = 72
_RESET = "\033[0m"
_STYLE: Mapping[str, tuple[str, str]] = {
    # notify type -> (marker, ANSI colour)
    "failure": ("✖ FAILURE", "\033[1;31m"),
    "warning": ("▲ WARNING", "\033[1;33m"),
    "success": ("✔ SUCCESS", "\033[1;32m"),
    "info": ("● INFO", "\033[1;36m"),
}
_YES = frozenset({"yes", "y", "true", "1", "on", "always"})
_NO = frozenset({"no", "n", "false", "0", "off", "never"})
_print_lock = threading.Lock()
_register_lock = threading.Lock()

_BULLET = re.compile(r"^(\s*)- ", re.MULTILINE)


def plain_text(text: str) -> str:
    """An alert's text body as the terminal shows it: inert, bullets drawn as `•`."""
    return _BULLET.sub(r"\1• ", inert(text.replace("\r\n", "\n"), newlines=True)).strip("\n")


def frame(title: str, body: str, notify_type: str, *, color: bool) -> str:
    """A framed block: a header rule with the severity marker, the title, the body."""
    marker, ansi = _STYLE.get(notify_type, (notify_type.upper(), ""))
    paint = (lambda s: f"{ansi}{s}{_RESET}") if color and ansi else (lambda s: s)
    head = f"┌─ {marker} "
    lines = [paint(head + "─" * max(0, _WIDTH - len(head)))]
    if title:
        lines.append(paint("│ ") + (f"\033[1m{title}{_RESET}" if color else title))
        lines.append(paint("│"))
    lines.extend(paint("│ ") + line if line else paint("│") for line in body.split("\n"))
    lines.append(paint("└" + "─" * (_WIDTH - 1)))
    return "\n".join(lines)


def _wants_color(meta: Mapping[str, Any]) -> bool:
    """Colour per `?color=`, else when stdout is a terminal and NO_COLOR is unset."""
    asked = str(meta.get("qsd", {}).get("color", "")).strip().lower()
    if asked in _YES:
        return True
    if asked in _NO:
        return False
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _print_alert(
    body: str, title: str, notify_type: str, *args: Any, meta: Mapping[str, Any], **kwargs: Any
) -> bool:
    """Print one alert to stdout; apprise calls this for every `console://` target."""
    block = frame(inert(title), plain_text(body), notify_type, color=_wants_color(meta))
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    # A terminal that cannot show the frame still gets the alert, with `?` for what it lacks.
    block = block.encode(encoding, "replace").decode(encoding, "replace")
    with _print_lock:
        print(block, file=sys.stdout, flush=True)
    return True


def register_console_scheme() -> None:
    """Make `console://` an apprise URL; calling it again does nothing."""
    with _register_lock:
        # apprise leaves its plugin manager and decorator untyped
        if SCHEME in NotificationManager():  # type: ignore[no-untyped-call]
            return
        register = notify(  # type: ignore[no-untyped-call]
            on=SCHEME, name="Console", body_format=apprise.NotifyFormat.TEXT
        )
        register(_print_alert)

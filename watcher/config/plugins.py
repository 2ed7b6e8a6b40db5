"""apprise's plugins, loaded for the schemes a configuration uses instead of all of them.

apprise's plugin manager imports every plugin module (about 190, 25 MB and 0.35 s) the first
time anything looks a scheme up, unless it already holds a loaded directory: its public
`load_modules(path, name)` loads the plugin modules a directory lists, and from then on the
manager answers from what it holds. So the watcher finds the module of each scheme it needs by
reading the plugins' `protocol` / `secure_protocol` lines (text, no import), lists those modules
in a scratch directory, and has the manager load them under apprise's own package name.

Any doubt loads everything, as apprise would: a scheme no plugin file names, a module that did
not register the scheme after loading, or a manager that was already loaded whole. So a URL
apprise knows is never refused for want of its plugin, and an unknown one is refused by apprise
itself, with every plugin loaded.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]{0,31})://")
# `protocol = "json"`, `secure_protocol = ("bsky", "bluesky")`, over several lines too; a
# literal first, so the search skips ahead (a leading `^\s+` made it 50 times slower)
_DECLARED = re.compile(r"protocol[ \t]*=[ \t]*(\([^)]*\)|\"[^\"]*\"|'[^']*')")
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")
_MODULE = re.compile(r"^(?!base|_)[a-z0-9_]+$", re.I)  # what apprise's manager itself loads
_lock = threading.Lock()


def load_plugins_for(urls: Iterable[str]) -> None:
    """Have apprise's plugin manager hold the plugins of these URLs' schemes (at least).

    Cheap when they are held already; loads every plugin when a scheme cannot be placed.
    """
    schemes = {m.group(1).lower() for url in urls if (m := _SCHEME.match(url))}
    with _lock:
        manager = _manager()
        if _whole(manager):
            return
        missing = {s for s in schemes if not _holds(manager, s)}
        if not missing:
            return
        table = modules_by_scheme()
        modules = {table.get(s) for s in missing}
        if None in modules:
            manager.load_modules()  # a scheme no plugin file names: apprise's own way
            return
        try:
            with tempfile.TemporaryDirectory(prefix="watcher-apprise-") as listing:
                for module in modules:
                    Path(listing, f"{module}.py").touch()  # names only: imported by name
                manager.load_modules(path=listing, name="apprise.plugins")
        except OSError:  # no writable temporary directory: apprise's own way, all of them
            manager.load_modules()
            return
        if any(not _holds(manager, s) for s in missing):
            manager.load_modules()


def loaded_plugin_modules() -> int:
    """How many apprise plugin modules this process holds (for the benchmark and tests)."""
    import sys

    return sum(1 for name in sys.modules if name.startswith("apprise.plugins."))


@lru_cache(maxsize=1)
def modules_by_scheme() -> dict[str, str]:
    """Scheme to the plugin module that declares it, read from apprise's plugin sources."""
    root = Path(_plugins_dir())
    table: dict[str, str] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        name = entry.name.removesuffix(".py")
        if not _MODULE.match(name) or (entry.is_file() and not entry.name.endswith(".py")):
            continue
        files = sorted(Path(entry.path).rglob("*.py")) if entry.is_dir() else [Path(entry.path)]
        for file in files:
            for scheme in _declared(_read(file)):
                table.setdefault(scheme.lower(), name)
    return table


def _declared(text: str) -> list[str]:
    """The schemes a plugin source assigns to `protocol` or `secure_protocol` on a line."""
    found = []
    for declared in _DECLARED.finditer(text):
        head = text[text.rfind("\n", 0, declared.start()) + 1 : declared.start()].strip()
        if head in ("", "secure_"):
            found += _QUOTED.findall(declared.group(1))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _plugins_dir() -> str:
    import apprise

    return os.path.join(os.path.dirname(apprise.__file__), "plugins")


def _manager() -> Any:
    from apprise.manager_plugins import NotificationManager

    return NotificationManager()  # type: ignore[no-untyped-call]  # a singleton


def _whole(manager: Any) -> bool:
    """Whether the manager loaded apprise's plugin directory whole."""
    return bool(manager.module_path in getattr(manager, "_loaded", ()))


def _holds(manager: Any, scheme: str) -> bool:
    # `in` loads everything on a manager that holds nothing yet: ask only a loaded one
    return bool(manager) and scheme in manager

"""`WATCHER_` environment overrides: `WATCHER_POLL__INTERVAL=30s` sets `[poll] interval`.

`__` separates levels; a number selects an entry of an existing table array
(`WATCHER_ROUTES__0__URLS`). Tables and lists are given as JSON (`WATCHER_ROUTES='[...]'`
replaces every route), scalars as plain text that the field then validates.

Read here rather than by pydantic-settings (2.16), which cannot give what the contract
promises: it ignores an unknown `WATCHER_` section (`WATCHER_POL__INTERVAL`) instead of
refusing it, cannot patch one entry of a table array (`WATCHER_ROUTES__0__URLS` replaces the
file's list with a dict, then fails as "Input should be a valid list"), and merges every source
before validating, so no error can name the variable or the file a key came from.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, get_origin

from watcher.config.build import SECTIONS, TABLE_ARRAYS, loc_text, unknown_message
from watcher.config.checks import Loc
from watcher.core.errors import ConfigProblem

ENV_PREFIX = "WATCHER_"
NESTING = "__"
# WATCHER_ variables that name no config key (the CLI reads them itself).
RESERVED_ENV = frozenset({"WATCHER_CONFIG"})


def apply_env(
    data: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[Loc, str], list[ConfigProblem]]:
    """Merge every override into a copy of `data`; also say which env var set which key."""
    merged: dict[str, Any] = copy.deepcopy(dict(data))
    where: dict[Loc, str] = {}
    problems: list[ConfigProblem] = []
    for name, path in sorted(_overrides(env), key=lambda item: (len(item[1]), item[0])):
        if not path or any(part == "" for part in path):
            problems.append(ConfigProblem("(name)", "is not a config key path", name))
            continue
        if path[0] not in SECTIONS and path[0] not in TABLE_ARRAYS:
            valid = [*SECTIONS, *TABLE_ARRAYS]
            message = unknown_message(str(path[0]), valid, "section")
            problems.append(ConfigProblem(loc_text(path), message, name))
            continue
        try:
            value = _decode(env[name], expects_json=_expects_json(path))
            created = _assign(merged, path, value)
        except ValueError as exc:
            problems.append(ConfigProblem(loc_text(path), str(exc), name))
            continue
        where[path] = name
        # A table the variable brought into being is its own: a problem found there (an
        # unknown key, a missing one) is the variable's, never the file's.
        for table in created:
            where.setdefault(table, name)
    return merged, where, problems


def _overrides(env: Mapping[str, str]) -> list[tuple[str, Loc]]:
    found = []
    for name in env:
        if not name.upper().startswith(ENV_PREFIX) or name.upper() in RESERVED_ENV:
            continue
        parts = name[len(ENV_PREFIX) :].lower().split(NESTING)
        path = tuple(int(part) if part.isdigit() else part for part in parts)
        found.append((name, path if parts != [""] else ()))
    return found


def _expects_json(path: Loc) -> bool:
    """Whether the key at `path` holds a table or a list (so the value must be JSON)."""
    head, rest = path[0], path[1:]
    if not rest:
        return head in SECTIONS or head in TABLE_ARRAYS
    if head in TABLE_ARRAYS:
        if not isinstance(rest[0], int):
            return False
        model, rest = TABLE_ARRAYS[str(head)], rest[1:]
        if not rest:
            return True
    elif head in SECTIONS:
        model = SECTIONS[str(head)]
    else:
        return False
    info = model.model_fields.get(str(rest[0]))
    return len(rest) == 1 and info is not None and get_origin(info.annotation) in (tuple, list)


def _decode(raw: str, *, expects_json: bool) -> Any:
    if not expects_json:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"must be JSON here (a list or table): {exc.msg} at column {exc.colno}"
        ) from None


def _assign(data: dict[str, Any], path: Loc, value: Any) -> list[Loc]:
    """Set `value` at `path`, creating tables on the way (returned); indexes must exist."""
    created: list[Loc] = []
    node: Any = data
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise ValueError(
                    f"there is no entry {part} to change ({size} in the file); set the whole "
                    f"list as JSON in {ENV_PREFIX}{loc_text(path[:depth]).upper()} instead"
                )
        elif not isinstance(node, dict):
            raise ValueError(f"cannot set a key inside {loc_text(path[:depth])}: not a table")
        if last:
            node[part] = value
        elif isinstance(node, dict) and part not in node:
            node[part] = {}
            created.append(path[: depth + 1])
        node = node[part]
    return created

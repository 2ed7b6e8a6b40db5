"""Validate a dict shaped like the TOML file into sections, collecting every problem.

Each section (and each `[[routes]]` / `[[knowledge_bases]]` entry) is validated on its own, so
that a bad value in one place does not hide a cross-section problem in another. The parts
that validated become a `Config` in `watcher.config.tree`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from watcher.config import checks
from watcher.config.accounts import DEFAULT_ACCOUNT, AccountConfig, account_issues
from watcher.config.checks import Issue, Loc
from watcher.config.heartbeat import HeartbeatConfig
from watcher.config.intervals import TimeIntervalsConfig
from watcher.config.preflight import Preflight
from watcher.config.remediation import CostConfig, RemediationConfig
from watcher.config.routes import RouteConfig
from watcher.config.sections import (
    AlertsConfig,
    ApiConfig,
    DeliveryConfig,
    FreshnessConfig,
    HttpConfig,
    KnowledgeBaseConfig,
    LogConfig,
    PollConfig,
    SchedulesConfig,
    Section,
    StallConfig,
    StateConfig,
)
from watcher.core.errors import ConfigProblem

SECTIONS: dict[str, type[Section]] = {
    "api": ApiConfig,
    "poll": PollConfig,
    "stall": StallConfig,
    "state": StateConfig,
    "delivery": DeliveryConfig,
    "alerts": AlertsConfig,
    "log": LogConfig,
    "http": HttpConfig,
    "heartbeat": HeartbeatConfig,
    "schedules": SchedulesConfig,
    "freshness": FreshnessConfig,
    "cost": CostConfig,
    "remediation": RemediationConfig,
}
TABLE_ARRAYS: dict[str, type[Section]] = {
    "knowledge_bases": KnowledgeBaseConfig,
    "routes": RouteConfig,
    "time_intervals": TimeIntervalsConfig,
    "accounts": AccountConfig,
}
S = TypeVar("S", bound=Section)


@dataclass
class Parts:
    """The pieces that validated, by section name; table arrays keep each entry's index."""

    sections: dict[str, Section] = field(default_factory=dict)
    arrays: dict[str, list[tuple[int, Section]]] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)

    def get(self, name: str, kind: type[S]) -> S | None:
        value = self.sections.get(name)
        return value if isinstance(value, kind) else None

    def entries(self, name: str, kind: type[S]) -> list[tuple[int, S]]:
        return [(i, item) for i, item in self.arrays.get(name, []) if isinstance(item, kind)]


def collect(
    data: Mapping[str, Any],
    *,
    check_urls: bool,
    preflight: Preflight = Preflight.NONE,
    env: Mapping[str, str] | None = None,
) -> tuple[Parts, list[Issue]]:
    """Validate every section and run every cross-section check that can run.

    `check_urls` asks apprise whether each route URL loads; `preflight` runs the machine
    checks (state path, listen address) of `watcher.config.preflight`; `env` is where a
    relative `secret_file` finds `$CREDENTIALS_DIRECTORY` (the process's environment if None).
    """
    parts, issues = Parts(), []
    context = {"check_urls": check_urls, "preflight": preflight, "env": env}
    valid = [*SECTIONS, *TABLE_ARRAYS]
    for key in data:
        if key not in valid:
            issues.append(Issue((key,), unknown_message(key, valid, "section")))
    for name, model in SECTIONS.items():
        try:
            parts.sections[name] = model.model_validate(data.get(name, {}), context=context)
        except ValidationError as exc:
            issues.extend(_issues(exc, (name,), model))
    for name, model in TABLE_ARRAYS.items():
        issues.extend(_validate_array(parts, name, model, data.get(name, []), context))
    issues.extend(_cross_checks(parts))
    return parts, issues


def _validate_array(
    parts: Parts, name: str, model: type[Section], raw: object, context: dict[str, Any]
) -> list[Issue]:
    if not isinstance(raw, list | tuple):
        parts.broken.add(name)
        return [Issue((name,), f"must be an array of tables ([[{name}]])")]
    issues: list[Issue] = []
    valid: list[tuple[int, Section]] = []
    for index, item in enumerate(raw):
        try:
            valid.append((index, model.model_validate(item, context=context)))
        except ValidationError as exc:
            issues.extend(_issues(exc, (name, index), model))
    parts.arrays[name] = valid
    if issues:
        parts.broken.add(name)
    return issues


def _cross_checks(parts: Parts) -> list[Issue]:
    issues: list[Issue] = []
    if poll := parts.get("poll", PollConfig):
        issues += checks.poll_issues(poll)
    if delivery := parts.get("delivery", DeliveryConfig):
        issues += checks.delivery_issues(delivery)
    kbs = parts.entries("knowledge_bases", KnowledgeBaseConfig)
    routes = parts.entries("routes", RouteConfig)
    issues += checks.kb_issues(kbs)
    accounts = parts.entries("accounts", AccountConfig)
    several = bool(accounts) or "accounts" in parts.broken
    issues += account_issues(accounts, len(kbs), present=several)
    watched = None if "knowledge_bases" in parts.broken else [kb for _, kb in kbs]
    if several:
        broken = "accounts" in parts.broken
        watched = None if broken else [kb for _, a in accounts for kb in a.knowledge_bases]
    issues += checks.route_issues(routes, watched, complete="routes" not in parts.broken)
    if not several or "accounts" not in parts.broken:
        names = [a.name for _, a in accounts] if several else [DEFAULT_ACCOUNT]
        issues += checks.route_account_issues(routes, names)
    if "time_intervals" not in parts.broken:
        windows = parts.entries("time_intervals", TimeIntervalsConfig)
        issues += checks.window_issues(windows, routes)
    if not routes and "routes" not in parts.broken:
        issues.append(Issue(("routes",), "no [[routes]] defined: alerts would reach nobody"))
    return issues


def _issues(exc: ValidationError, prefix: Loc, model: type[BaseModel]) -> Iterable[Issue]:
    for error in exc.errors(include_input=False, include_url=False, include_context=True):
        loc = prefix + tuple(error["loc"])
        yield Issue(loc, _message(error, loc, _model_at(model, tuple(error["loc"]))))


def _model_at(model: type[BaseModel], path: Loc) -> type[BaseModel]:
    """The (nested) model that holds the last key of `path`, for its list of valid keys."""
    for part in path[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue
        inner = field.annotation
        if get_origin(inner) is tuple:
            inner = get_args(inner)[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
    return model


def _message(error: ErrorDetails, loc: Loc, model: type[BaseModel]) -> str:
    """A pydantic error as a sentence that never contains the input."""
    kind = error["type"]
    if kind == "extra_forbidden":
        if loc[-2:] == ("api", "token"):
            return (
                "the token is never read from the config file: set DIGITALOCEAN_ACCESS_TOKEN "
                "or use api.token_file"
            )
        return unknown_message(str(loc[-1]), list(model.model_fields), "key")
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return _REWORDED.get(kind, error["msg"])


_REWORDED = {
    "missing": "is required",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "model_type": "must be a table",
    "dict_type": "must be a table",
    "model_attributes_type": "must be a table",
}


def unknown_message(key: str, valid: Sequence[str], what: str) -> str:
    """`unknown key; did you mean 'x'?` (or the valid names when none is close)."""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(valid)}"
    return f"unknown {what}; {hint}"


def loc_text(loc: Loc) -> str:
    """`("routes", 1, "urls")` as `routes[1].urls`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def to_problems(
    issues: Iterable[Issue], default_source: str, where: Mapping[Loc, str] | None = None
) -> list[ConfigProblem]:
    """Tie each issue to its source: the env var that set it (or a parent of it), else the file."""
    where = where or {}
    problems = []
    for issue in issues:
        source = default_source
        for depth in range(len(issue.loc), 0, -1):
            if issue.loc[:depth] in where:
                source = where[issue.loc[:depth]]
                break
        problems.append(ConfigProblem(loc_text(issue.loc), issue.message, source))
    return problems

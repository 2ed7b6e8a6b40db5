"""Human text of a loaded configuration, with the token and apprise URLs masked."""

from __future__ import annotations

import re

from pydantic import SecretStr

from watcher.config.routes import RouteConfig
from watcher.config.sections import KnowledgeBaseConfig
from watcher.config.tree import Config
from watcher.config.urls import mask_url
from watcher.durations import format_duration as fmt

_TOKEN_PREFIX = re.compile(r"[a-z]{2,4}_v\d+_")


def mask_token(token: SecretStr) -> str:
    """`dop_v1_…abcd`: the well-known prefix and the last four characters, for long tokens only."""
    value = token.get_secret_value()
    if len(value) < 24:
        return "set"
    match = _TOKEN_PREFIX.match(value)
    return f"{match.group(0) if match else ''}…{value[-4:]}"


def describe(config: Config) -> str:
    """What was loaded, one aspect per line, secrets masked."""
    api, poll, stall = config.api, config.poll, config.stall
    delivery = config.delivery
    lines = [
        f"Configuration {config.source} is valid.",
        f"  API:        {api.base_url} (timeout {fmt(api.timeout)}, at most "
        f"{api.max_requests_per_minute} requests/min, leaving {api.reserve} of the rate limit, "
        f"{api.per_page} per page)",
        f"  Token:      {_token_line(config)}",
        f"  Polling:    every {fmt(poll.interval)}, every {fmt(poll.active_interval)} while a "
        f"job is pending or running, jitter up to {fmt(poll.jitter)}",
        f"  Watching:   {_watching(config.knowledge_bases)}",
        f"  Stalled:    pending over {fmt(stall.pending_after)}, no progress for "
        f"{fmt(stall.no_progress_after)}, or running over {fmt(stall.max_runtime)}",
        f"  State:      {config.state.path} (history kept {fmt(config.state.retention)})",
        f"  Delivery:   retry after {fmt(delivery.retry_base)} doubling to "
        f"{fmt(delivery.retry_max)}, give up after {fmt(delivery.dead_after)}, group more than "
        f"{delivery.storm_threshold} events per route and cycle, "
        f"send timeout {fmt(delivery.timeout)}",
        f"  API alerts: api_unreachable after {fmt(config.alerts.api_unreachable_after)}",
        f"  Logging:    level {config.log.level}, format {config.log.format}",
        f"  HTTP:       {_http(config)}",
        f"  Routes:     {len(config.routes)}",
    ]
    lines += [line for route in config.routes for line in _route_lines(route)]
    if config.overrides:
        lines.append(f"  Overridden by the environment: {', '.join(config.overrides)}")
    return "\n".join(lines)


def _token_line(config: Config) -> str:
    if config.token is None:
        return "not set"
    return f"{mask_token(config.token)} (from {config.token_source})"


def _watching(kbs: tuple[KnowledgeBaseConfig, ...]) -> str:
    if not kbs:
        return "every knowledge base of the account"
    names = ", ".join(f"{kb.name} ({kb.uuid})" if kb.name else kb.uuid for kb in kbs)
    return f"{len(kbs)} knowledge base(s): {names}"


def _http(config: Config) -> str:
    return f"listening on {config.http.listen}" if config.http.listen else "off"


def _route_lines(route: RouteConfig) -> list[str]:
    kbs = "all watched" if route.all_kbs else ", ".join(route.knowledge_bases)
    lines = [
        f"    - {route.name}: events {', '.join(route.events)}; knowledge bases {kbs}",
    ]
    lines += [f"        {mask_url(url.get_secret_value())}" for url in route.urls]
    return lines

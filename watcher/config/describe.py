"""Human text of a loaded configuration, with the token and apprise URLs masked.

Route URLs are masked from what apprise says is secret in each (`watcher.config.url_secrets`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import SecretStr

from watcher.config.routes import RouteConfig
from watcher.config.sections import KnowledgeBaseConfig, is_loopback_host, split_host_port
from watcher.config.tree import Config
from watcher.config.url_secrets import url_secrets
from watcher.core.durations import format_setting as fmt
from watcher.core.health import health_limit
from watcher.core.remedy import OnStalled

_TOKEN_PREFIX = re.compile(r"[a-z]{2,4}_v\d+_")


def mask_token(token: SecretStr) -> str:
    """`dop_v1_… (sha256 3f2a9c1b)`: the well-known prefix and a fingerprint, no character of
    the token itself. Compare with `printf %s "$DIGITALOCEAN_ACCESS_TOKEN" | sha256sum`."""
    value = token.get_secret_value()
    match = _TOKEN_PREFIX.match(value)
    fingerprint = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{match.group(0) if match else ''}… (sha256 {fingerprint})"


def _health_line(config: Config) -> str:
    poll = config.poll
    limit = health_limit(poll.interval, poll.cycle_deadline, config.delivery.timeout)
    return (
        f"a cycle must finish every {fmt(limit)} (live) and succeed as often (ready): "
        "poll.interval + 2 x poll.cycle_deadline + delivery.timeout"
    )


def describe(config: Config, *, listen_note: str | None = None) -> str:
    """What was loaded, one aspect per line, secrets masked (`listen_note`: who holds the
    listen port, when `check-config` found one of ours there)."""
    api, poll, stall = config.api, config.poll, config.stall
    delivery = config.delivery
    lines = [
        f"Configuration {config.source} is valid.",
        f"  API:        {api.base_url} (timeout {fmt(api.timeout)}, at most "
        f"{api.max_requests_per_minute} requests/min, leaving {api.reserve} of the rate limit, "
        f"{api.per_page} per page; answers up to {api.max_response_size.human_readable()}, "
        f"lists up to {api.max_list_items:,} items)",
        f"  Token:      {_token_line(config)}",
        f"  Extras:     {_extras_line(config)}",
        f"  Polling:    every {fmt(poll.interval)}, every {fmt(poll.active_interval)} while a "
        f"job is pending or running, jitter up to {fmt(poll.jitter)}; a cycle reads the API "
        f"for at most {fmt(poll.cycle_deadline)}",
        f"  Health:     {_health_line(config)}",
        f"  Watching:   {_watching(config.knowledge_bases)}",
        f"  Stalled:    pending over {fmt(stall.pending_after)}, no progress for "
        f"{fmt(stall.no_progress_after)}, or running over {fmt(stall.max_runtime)}",
        f"  State:      {_state(config)}",
        f"  Delivery:   retry after {fmt(delivery.retry_base)} doubling to "
        f"{fmt(delivery.retry_max)}, give up after {fmt(delivery.dead_after)}, group more than "
        f"{delivery.storm_threshold} alerts due at once per route, "
        f"send timeout {fmt(delivery.timeout)}, at most one message per URL every "
        f"{_pace(delivery.send_interval)}",
        f"  Own alerts: api_unreachable after {fmt(config.alerts.api_unreachable_after)}, "
        f"delivery_failing after {fmt(config.alerts.delivery_failing_after)}",
        f"  Heartbeat:  {_heartbeat(config)}",
        f"  Schedules:  {_schedules(config)}",
        f"  Budgets:    {_budgets(config)}",
        f"  Cost:       {_cost(config)}",
        f"  Remediate:  {_remediation(config)}",
        f"  Logging:    level {config.log.level}, format {config.log.format}",
        f"  HTTP:       {_http(config, listen_note)}",
        f"  Trust:      {_trust(config)}",
        f"  Routes:     {len(config.routes)}",
    ]
    if config.several_accounts:  # the Token and Watching lines above are the first account's
        at = lines.index(f"  Token:      {_token_line(config)}")
        lines[at : at + 1] = _account_lines(config)
        lines = [line for line in lines if not line.startswith("  Watching:   ")]
    lines += [line for route in config.routes for line in _route_lines(route)]
    if config.overrides:
        lines.append(f"  Overridden by the environment: {', '.join(config.overrides)}")
    return "\n".join(lines)


def _schedules(config: Config) -> str:
    """Schedules (`schedule_missed` after the grace) and freshness (`stale`)."""
    default = config.freshness.fresh_within
    own = [kb for kb in config.knowledge_bases if kb.fresh_within is not None]
    fresh = f"fresh within {fmt(default)}" if default else "fresh within the schedule's gap + 2h"
    if own:
        fresh += "; " + ", ".join(
            f"{kb.name or kb.uuid}: {fmt(kb.fresh_within)}" for kb in own if kb.fresh_within
        )
    return (
        f"read every {fmt(config.schedules.read_every)}, a run is missed "
        f"{fmt(config.schedules.grace)} after its time; {fresh}"
    )


def _heartbeat(config: Config) -> str:
    plan = config.heartbeat.plan()
    if plan is None:
        return "off (set [heartbeat] url to have a monitor hear when the watcher stops)"
    fail = plan.failure_url
    failures = f"failed ones to {_masked_ping(fail)}" if fail else "failed ones ping nothing"
    return (
        f"{plan.method} {_masked_ping(plan.url)} after each successful cycle, {failures} "
        f"(each within {fmt(plan.timeout)})"
    )


def _masked_ping(url: str) -> str:
    """Scheme and host only: the rest of a ping URL is its secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…"


def _budgets(config: Config) -> str:
    """The error budgets: tolerated failed items per knowledge base."""
    default = config.alerts.tolerate_failed_items
    own = [kb for kb in config.knowledge_bases if kb.tolerate_failed_items is not None]
    if default is None and not own:
        return "none (every partial job is partial)"
    parts = [
        f"{kb.name or kb.uuid}: {kb.tolerate_failed_items.setting}"
        for kb in own
        if kb.tolerate_failed_items
    ]
    if default is not None:
        parts.append(f"every other knowledge base: {default.setting}")
    return "a partial job with failed items within this is completed: " + "; ".join(parts)


def _cost(config: Config) -> str:
    cost = config.cost
    spike = (
        f"cost_spike over {cost.spike_factor:g} times the median of a KB's last "
        f"{cost.spike_window} priced jobs (given {cost.spike_min_history})"
        if cost.spike_factor is not None
        else "cost_spike off (set [cost] spike_factor)"
    )
    return f"prices read every {fmt(cost.prices_every)}; {spike}"


def _remediation(config: Config) -> str:
    r = config.remediation
    if r.on_stalled is OnStalled.NOTHING:
        return "off (stalled jobs are only alerted; set [remediation] on_stalled)"
    dry = ", dry run: nothing is sent" if r.dry_run else " (needs genai:update and genai:create)"
    return f"{r.on_stalled} a stalled job, at most {r.max_attempts} time(s) per incident{dry}"


def _token_line(config: Config) -> str:
    if config.token is not None:
        return f"{mask_token(config.token)} (from {config.token_source})"
    if config.token_problem:
        return f"none (not required here; `run` needs one): {config.token_problem}"
    return "not set"


def _account_lines(config: Config) -> list[str]:
    """`Accounts:` and one line per account: its token (masked, and where it came from), its
    KBs and its rate budget."""
    lines = [f"  Accounts:   {len(config.accounts)} (each polled on its own, alerts name it)"]
    for account in config.account_list():
        if account.token is not None:
            token = f"{mask_token(account.token)} from {account.token_source}"
        else:
            token = "no token loaded (not required here)"
        lines.append(
            f"    - {account.name}: token {token}; watching {_watching(account.knowledge_bases)}; "
            f"at most {account.max_requests_per_minute} requests/min, leaving {account.reserve}"
        )
    return lines


def _watching(kbs: tuple[KnowledgeBaseConfig, ...]) -> str:
    if not kbs:
        return "every knowledge base of the account"
    names = ", ".join(f"{kb.name} ({kb.uuid})" if kb.name else kb.uuid for kb in kbs)
    return f"{len(kbs)} knowledge base(s): {names}"


def _http(config: Config, note: str | None) -> str:
    http = config.http
    if not http.listen:
        return "off"
    head = f"listening on {http.listen}" + (f" ({note})" if note else "")
    token = http.auth_token_file
    if is_loopback_host(split_host_port(http.listen)[0]):
        rule = "the page and /api/v1 for this machine only; " + (
            f"writes with the token of {token}" if token else "no writes from the page (no token)"
        )
    elif token:
        rule = f"the page, /api/v1 and /metrics with the token of {token}; probes open"
    else:
        rule = "only /healthz, /readyz and /metrics (the page needs http.auth_token_file)"
    return f"{head}: {rule}; at most {http.max_connections} connections"


def _pace(interval: timedelta) -> str:
    """Pacing is often under a second (`0.4s`), which `format_setting` would round away."""
    seconds = interval.total_seconds()
    return f"{seconds:g}s" if seconds < 60 and seconds != int(seconds) else fmt(interval)


def _trust(config: Config) -> str:
    if config.ca_bundle is None:
        return "the default CA certificates (set http.ca_bundle behind a TLS-inspecting proxy)"
    return f"CA bundle {config.ca_bundle} (from {config.ca_bundle_source}), for the API and alerts"


def _incident_text(route: RouteConfig) -> str:
    """What the route does with an open incident: reminders, escalation."""
    parts = []
    if route.repeat_after is not None:
        parts.append(f"reminded every {fmt(route.repeat_after)} until acknowledged")
    if route.escalate_after is not None and route.escalate_to is not None:
        parts.append(
            f"sent on to route {route.escalate_to} when not acknowledged within "
            f"{fmt(route.escalate_after)}"
        )
    return "; ".join(parts)


def _route_lines(route: RouteConfig) -> list[str]:
    kbs = "all watched" if route.all_kbs else ", ".join(route.knowledge_bases)
    pace = ""
    if route.send_interval is not None:
        every = _pace(route.send_interval) if route.send_interval else None
        pace = f"; one message per URL every {every}" if every else "; not paced"
    shown = ""
    if route.format == "event":
        shown = (
            f"; signed JSON events ({len(route.signing_keys)} secret(s) from {route.secret_file})"
        )
    elif route.title_template or route.body_template:
        which = [
            k.removesuffix("_template")
            for k in ("title_template", "body_template")
            if getattr(route, k)
        ]
        shown = f"; own {' and '.join(which)} template"
    heard = f"; accounts {', '.join(route.accounts)}" if route.accounts else ""
    lines = [
        f"    - {route.name}: events {', '.join(route.events)}; knowledge bases {kbs}{heard}"
        f"{pace}{shown}",
    ]
    if incidents := _incident_text(route):
        lines.append(f"        incidents: {incidents}")
    if route.mute_during:
        after = "each event" if route.format == "event" else "one message"
        lines.append(f"        quiet during {', '.join(route.mute_during)} (held, then {after})")
    if route.digest_schedule is not None:
        lines.append(f"        digest {route.digest_schedule.describe()}")
    for url in route.urls:
        text = url.get_secret_value()
        if route.format == "event":  # a webhook's path is often its secret
            lines.append(f"        {_masked_ping(text)}")
            continue
        # apprise is loaded already (the URLs were just checked), so this costs nothing more
        lines.append(f"        {url_secrets(text).masked(text)}")
    return lines


def _extras_line(config: Config) -> str:
    """The extra reads' share of the hourly ceiling, in requests an hour, and what stays
    outside it (the prices' floor, the reports an alert waits for)."""
    api = config.api
    per_hour = int(api.max_requests_per_minute * 60 * api.extra_reads_share)
    outside = (
        f"model prices (2 requests every {fmt(config.cost.prices_every)}) and per-file reports "
        f"still read; every extra read waits while fewer than {api.reserve} of the rate limit "
        "remain or the minute has no room beyond the next poll"
    )
    if per_hour <= 0:
        return (
            "off (api.extra_reads_share = 0): alerts name data sources by uuid only, no "
            f"database health, agents nor schedules; {outside}"
        )
    return (
        f"at most {per_hour:,} requests/hour ({api.extra_reads_share:.0%} of the ceiling), "
        f"spread over the hour, for data source names, database health, agents, schedules and "
        f"per-file reports; {outside}"
    )


def _state(config: Config) -> str:
    """The store, and on a shared one its leases (`[state]`)."""
    state = config.state
    kept = f"history kept {fmt(state.retention)}"
    if not state.shared:
        return f"{state.path} ({kept})"
    return (
        f"{state.where()}, shared by replicas: one polls each token under a {fmt(state.lease)} "
        f"lease, every one delivers (claims last {fmt(state.claim_lease)}); {kept}"
    )

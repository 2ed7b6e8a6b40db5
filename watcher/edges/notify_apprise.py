"""The apprise edge: sends one rendered message to every URL of a route and reports each target.

How a failure is classified (apprise 2.3, read from its source and tried against loopback
receivers): `AppriseResult` gives each target's status (SUCCESS, FAILURE, TIMEOUT) and its
captured log lines, but not the HTTP status. Apprise's HTTP plugins (json, form, xml, mmost,
slack, discord, ntfy and most others) write it into a WARNING line ending in `error=NNN.`, so
the status is parsed from there. A target is a permanent failure when every status it reported
is a 4xx other than 408/429, or when apprise cannot parse its URL; a TIMEOUT, a 5xx, a refused
or dropped connection, an SMTP refusal, or a failure without a status is retryable.

Each send builds a fresh `Apprise` (plugins remember what they delivered and throttle repeated
sends), turns apprise's own retries off (the outbox owns retries), caps each target and the
whole call at `timeout` seconds, and lowers socket timeouts to about that so no abandoned
worker outlives the call by much. Only apprise's privacy-masked URLs leave this module; log lines
copied into details are scrubbed of every URL fragment the masked URL hides.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, assert_never

import apprise
import structlog

from watcher.model import Severity
from watcher.state import Message, SendResult, TargetResult

log = structlog.get_logger(__name__)

APP_ID = "gradient-watcher"
_HTTP_STATUS = re.compile(r"\berror=(\d{3})\b")
_RETRYABLE_4XX = frozenset({408, 429})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
_URL_SEPARATORS = re.compile(r"[/:@?&=#,;+\s]+")
_MIN_SECRET_LEN = 4
_MAX_DETAIL = 400
_SOCKET_GRACE = 1.0
_MAX_ERROR = 1000


def notify_type(severity: Severity) -> apprise.NotifyType:
    """The apprise notify type that carries `severity` (icons, colours, email markers)."""
    match severity:
        case Severity.FAILURE:
            return apprise.NotifyType.FAILURE
        case Severity.WARNING:
            return apprise.NotifyType.WARNING
        case Severity.SUCCESS:
            return apprise.NotifyType.SUCCESS
        case Severity.INFO:
            return apprise.NotifyType.INFO
        case _:
            assert_never(severity)


def validate_url(url: str) -> bool:
    """True when apprise knows the scheme and can parse the URL into a notification target."""
    return bool(apprise.Apprise().add(url))


class AppriseNotifier:
    """Delivers messages to the apprise URLs of named routes, one bounded attempt per send."""

    def __init__(self, routes: Mapping[str, Sequence[str]], *, timeout: float = 30.0) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self._routes = {
            name: (urls,) if isinstance(urls, str) else tuple(urls) for name, urls in routes.items()
        }
        self._timeout = float(timeout)

    @property
    def routes(self) -> tuple[str, ...]:
        """The route names this notifier can send to, in configuration order."""
        return tuple(self._routes)

    async def send(
        self, route: str, message: Message, skip: frozenset[int] = frozenset()
    ) -> SendResult:
        """Send `message` once to every URL of `route` but those in `skip` (by index, the ones
        an earlier attempt reached), in parallel, and report each target's outcome."""
        urls = self._routes.get(route)
        if not urls:
            why = "has no URLs" if urls is not None else "is not configured"
            log.warning("alert_failed", route=route, status="permanent", detail=f"route {why}")
            return SendResult(ok=False, permanent=True, error=f"route {route!r} {why}")
        asset = apprise.AppriseAsset(
            app_id=APP_ID, app_desc="Gradient Watcher", service_timeout=self._timeout
        )
        attempts = await asyncio.gather(
            *(
                self._send_one(index, url, message, asset)
                for index, url in enumerate(urls)
                if index not in skip
            )
        )
        targets = tuple(t for found, _ in attempts for t in found)
        call_error = next((error for _, error in attempts if error), None)
        result = _summarise(targets, call_error)
        _log_targets(route, result)
        return result

    async def _send_one(
        self, index: int, url: str, message: Message, asset: apprise.AppriseAsset
    ) -> tuple[list[TargetResult], str | None]:
        """One URL on its own apprise object, so each result is known to belong to its URL."""
        plugin: Any = apprise.Apprise.instantiate(url, asset=asset)
        if plugin is None:
            return [replace(_unparseable(url), index=index)], None
        secrets = _hidden_fragments(url, str(plugin.url(privacy=True)))
        self._tame(plugin)
        sender = apprise.Apprise(asset=asset)
        sender.add(plugin)
        targets, call_error = await self._dispatch(sender, message, secrets)
        return [replace(t, index=index) for t in targets], call_error

    async def _dispatch(
        self, sender: apprise.Apprise, message: Message, secrets: set[str]
    ) -> tuple[list[TargetResult], str | None]:
        """Run the one apprise call; return per-target results and a call-level error, if any."""
        if not len(sender):
            return [], None
        outcome = await sender.async_notify(
            body=message.body,
            title=message.title,
            notify_type=notify_type(message.severity),
            body_format=apprise.NotifyFormat.MARKDOWN,
            timeout=self._timeout,
        )
        with outcome:
            targets = [_target_result(service, secrets) for service in outcome]
            call_error = None
            if not outcome and all(t.ok for t in targets):
                lines = _scrub(" ".join(e.message for e in outcome.call_logs()), secrets)
                call_error = f"apprise did not deliver ({outcome.status.name}): {lines}".strip()
        return targets, call_error

    def _tame(self, plugin: Any) -> None:
        """Turn apprise's retries off and keep its socket timeouts near ours.

        A little above ours, so that apprise reports a TIMEOUT (not a connection error) and its
        abandoned worker thread still ends soon after.
        """
        plugin.retry = 0
        bound = self._timeout + _SOCKET_GRACE
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, bound)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout, bound)


def _target_result(service: Any, secrets: set[str]) -> TargetResult:
    """One apprise per-target result, classified, with its log lines scrubbed of secrets."""
    name, url = str(service.name), str(service.url)
    if service:
        return TargetResult(name=name, url=url, ok=True, detail="delivered")
    lines = [e.message for e in service.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
    said = _scrub(" ".join(lines), secrets) or "apprise gave no reason"
    statuses = [int(code) for code in _HTTP_STATUS.findall(" ".join(lines))]
    status_name = service.status.name
    if status_name == "TIMEOUT":
        kind = "retryable: timed out"
    elif statuses and all(_is_permanent(code) for code in statuses):
        kind = f"permanent: HTTP {statuses[-1]}"
    elif statuses:
        kind = f"retryable: HTTP {statuses[-1]}"
    else:
        kind = "retryable"
    return TargetResult(name=name, url=url, ok=False, detail=_clip(f"{kind}: {said}", _MAX_DETAIL))


def _is_permanent(status: int) -> bool:
    return 400 <= status < 500 and status not in _RETRYABLE_4XX


def _unparseable(url: str) -> TargetResult:
    """A target apprise could not load, named by its scheme alone (the rest may be secret)."""
    match = _SCHEME.match(url)
    shown = f"{match.group(1)}://…" if match else "(not a URL)"
    detail = (
        "permanent: apprise cannot parse this URL "
        "(unknown scheme, missing parts, or a service not available on this system)"
    )
    return TargetResult(name="unparseable", url=shown, ok=False, detail=detail)


def _summarise(targets: Sequence[TargetResult], call_error: str | None) -> SendResult:
    """Fold per-target outcomes into one result: ok only when every target took the message."""
    failed = [t for t in targets if not t.ok]
    if not failed and call_error is None:
        return SendResult(ok=True, targets=tuple(targets))
    permanent = bool(failed) and call_error is None
    permanent = permanent and all(t.detail.startswith("permanent") for t in failed)
    parts = [f"{t.name} {t.url}: {t.detail}" for t in failed]
    if call_error:
        parts.append(call_error)
    error = f"{len(failed)} of {len(targets)} targets failed: " + "; ".join(parts)
    return SendResult(
        ok=False, permanent=permanent, error=_clip(error, _MAX_ERROR), targets=tuple(targets)
    )


def _log_targets(route: str, result: SendResult) -> None:
    for target in result.targets:
        if target.ok:
            log.info("alert_delivered", route=route, target=target.url, service=target.name)
        else:
            log.warning(
                "alert_failed",
                route=route,
                target=target.url,
                service=target.name,
                status=target.detail.split(":", 1)[0],
                detail=target.detail,
            )


def _hidden_fragments(url: str, privacy_url: str) -> set[str]:
    """The pieces of `url` that apprise's privacy URL does not show: treat them as secrets."""
    body = _SCHEME.sub("", url)
    pieces = (p for p in _URL_SEPARATORS.split(body) if len(p) >= _MIN_SECRET_LEN)
    return {p for p in pieces if p not in privacy_url}


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

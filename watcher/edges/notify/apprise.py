"""The apprise edge: sends rendered messages to the URLs of a route and reports each target.

Each URL is sent to on its own: a fresh plugin object (plugins remember what they sent and
throttle repeated sends), apprise's own retries off (the outbox owns retries), and apprise
run synchronously on a thread of that URL's lane (`watcher.edges.notify.lanes`), which holds the
hard deadline: `timeout` seconds (`delivery.timeout`) for the whole send, whatever the
receiver does. apprise's socket timeouts are set to the same `timeout` (its default read
timeout of 4 s would otherwise fail a service that answers in 6), unless the URL asks for
less with `cto=` / `rto=`; its `overflow` becomes `truncate` unless the URL chooses one, as
the last guard behind the rendering that already fits each service (`budgets`).

Each target gets the body in the format apprise will use for it (`resolve_format`, markdown
preferred), so apprise converts nothing and every piece of outside text is escaped for exactly
that format; a service that has no title field gets the title escaped for its body format
(apprise blends it in as is).

Why a target failed is read by `watcher.edges.notify.causes`. No URL leaves this module
unmasked: targets are named by `watcher.config.url_secrets` (apprise's privacy mode and
templates, plus user info, headers, secret arguments and webhook paths), and log lines copied
into details are scrubbed of every secret part of the URL before they are clipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, assert_never
from urllib.parse import parse_qs, urlsplit

import apprise
import structlog

from watcher.config.plugins import load_plugins_for
from watcher.config.url_secrets import UrlSecrets, url_secrets
from watcher.core.markup import escape
from watcher.core.model import Severity
from watcher.core.outbox import (
    BodyFormat,
    Budget,
    FailureCause,
    FailureKind,
    Message,
    SendResult,
    TargetResult,
)
from watcher.core.redact import MASK, secret_forms
from watcher.edges.notify.causes import Line, Reading, classify
from watcher.edges.notify.lanes import LaneBusy, Lanes, LaneTimeout

log = structlog.get_logger(__name__)

APP_ID = "gradient-watcher"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
_MIN_SECRET_LEN = 3
# Services apprise declares plain text although the service renders markdown in them: they
# get the escaped markdown body, or a name like `[x](http://evil)` would become a link.
_RENDERS_MARKDOWN = frozenset({"mmost", "mmosts", "zulip"})
_MAX_DETAIL = 400
_MAX_ERROR = 1000
_APPRISE_LOGGER = logging.getLogger("apprise")


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


def body_format(plugin: Any) -> BodyFormat:
    """The format apprise will hand this target's service: its own choice for a markdown body
    (`resolve_format`, which honours a `?format=` in the URL), except for services that render
    markdown in what apprise calls plain text."""
    if set(_schemes(plugin)) & _RENDERS_MARKDOWN:
        return BodyFormat.MARKDOWN
    return BodyFormat(str(plugin.resolve_format(apprise.NotifyFormat.MARKDOWN).value))


def _schemes(plugin: Any) -> tuple[str, ...]:
    found: list[str] = []
    for attr in ("protocol", "secure_protocol"):
        value = getattr(plugin, attr, None)
        found += [value] if isinstance(value, str) else list(value or ())
    return tuple(found)


def budget_of(plugin: Any) -> Budget:
    """What one apprise plugin's service takes, from its class limits (characters), and the
    body format it gets (`body_format`)."""
    body = int(getattr(plugin, "body_maxlen", 0) or 0)
    title = int(getattr(plugin, "title_maxlen", 0) or 0)
    lines = int(getattr(plugin, "body_max_line_count", 0) or 0)
    buffer = max(int(getattr(plugin, "overflow_buffer", 0) or 0), 0)
    return Budget(
        body=body - buffer if body > 0 else None,
        title=title if title > 0 else None,
        title_in_body=bool(getattr(plugin, "overflow_amalgamate_title", False)),
        lines=lines if lines > 0 else None,
        format=body_format(plugin),
    )


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What apprise reported for one URL, copied out of its result on the worker thread."""

    ok: bool
    status: str
    name: str
    url: str
    lines: tuple[Line, ...]


class AppriseNotifier:
    """Delivers messages to the apprise URLs of named routes, one bounded attempt per send.

    `ca_bundle` (a PEM file) replaces the default trust store for HTTPS targets; `lanes` may
    be shared (tests), by default each notifier has its own.
    """

    def __init__(
        self,
        routes: Mapping[str, Sequence[str]],
        *,
        timeout: float = 30.0,
        ca_bundle: Path | None = None,
        lanes: Lanes | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self._routes = {
            name: (urls,) if isinstance(urls, str) else tuple(urls) for name, urls in routes.items()
        }
        self._timeout = float(timeout)
        self._ca_bundle = str(ca_bundle) if ca_bundle is not None else None
        self._lanes = lanes or Lanes()
        self._budgets: dict[str, tuple[Budget, ...]] = {}
        self._secrets: dict[str, tuple[UrlSecrets, set[str]]] = {}
        self._plugins_held = False

    @property
    def routes(self) -> tuple[str, ...]:
        """The route names this notifier can send to, in configuration order."""
        return tuple(self._routes)

    def budgets(self, route: str) -> tuple[Budget, ...]:
        """Per URL of `route`, by index: how much text its service takes (apprise's limits)."""
        if route not in self._budgets:
            self._hold_plugins()
            found = []
            for url in self._routes.get(route, ()):
                plugin = apprise.Apprise.instantiate(url, asset=self._asset())
                found.append(budget_of(plugin) if plugin is not None else Budget())
            self._budgets[route] = tuple(found)
        return self._budgets[route]

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        """Send once to every URL of `route` but those in `skip` (by index, the ones an
        earlier attempt reached), in parallel, each within the deadline; report each one."""
        urls = self._routes.get(route)
        if not urls:
            why = "has no URLs" if urls is not None else "is not configured"
            kind = FailureKind.PERMANENT
            log.warning("alert_failed", route=route, status=kind.value, detail=f"route {why}")
            return SendResult(ok=False, failure=kind, error=f"route {route!r} {why}")
        if _APPRISE_LOGGER.level != logging.DEBUG:
            _APPRISE_LOGGER.setLevel(logging.DEBUG)  # see notify_causes: codes are at DEBUG
        chosen = fitted or {}
        targets = await asyncio.gather(
            *(
                self._send_one(route, index, url, chosen.get(index, message))
                for index, url in enumerate(urls)
                if index not in skip
            )
        )
        result = _summarise(targets)
        _log_targets(route, result)
        return result

    async def _send_one(self, route: str, index: int, url: str, message: Message) -> TargetResult:
        """One URL, on its own plugin object and its own lane."""
        self._hold_plugins()
        plugin: Any = apprise.Apprise.instantiate(url, asset=self._asset())
        if plugin is None:
            return _unparseable(url, index)
        self._tame(plugin, url)
        known, secrets = self._classified(url)
        name, masked = str(plugin.service_name), known.masked(url)
        fmt = body_format(plugin)
        if plugin.title_maxlen <= 0:  # blended into the body as is: escape it for the body
            message = replace(message, title=escape(message.title, fmt))
        size = len(message.body_in(fmt))
        send = partial(_deliver, plugin, self._asset(), message, fmt)
        try:
            attempt = await self._lanes.run((route, index), send, self._timeout)
        except LaneBusy:
            return _failed(name, masked, index, size, Reading(FailureCause.BUSY), "")
        except LaneTimeout:
            said = f"no complete answer within {self._timeout:g} s; the connection was closed"
            return _failed(name, masked, index, size, Reading(FailureCause.TIMEOUT), said)
        if attempt.ok:
            return TargetResult(
                attempt.name,
                masked,
                ok=True,
                detail="delivered",
                index=index,
                sent_chars=size,
            )
        said = _scrub(" ".join(m for lv, m in attempt.lines if lv != "DEBUG"), secrets)
        reading = classify(attempt.status, attempt.lines)
        return _failed(attempt.name, masked, index, size, reading, said)

    def _hold_plugins(self) -> None:
        """Load the apprise plugins of every configured URL's scheme, once, and no other
        (`watcher.config.plugins`: the rest of apprise's ~190 stay out of memory)."""
        if not self._plugins_held:
            load_plugins_for(url for urls in self._routes.values() for url in urls)
            self._plugins_held = True

    def _classified(self, url: str) -> tuple[UrlSecrets, set[str]]:
        """The URL's secret parts and what to scrub from its log lines, once per notifier."""
        if url not in self._secrets:
            known = url_secrets(url)
            self._secrets[url] = (known, _scrub_forms(url, known))
        return self._secrets[url]

    def _asset(self) -> apprise.AppriseAsset:
        # Synchronous and without apprise's own deadline: the plugin runs on our lane's
        # thread, which holds the deadline (apprise's shared pool would otherwise run it).
        return apprise.AppriseAsset(
            app_id=APP_ID, app_desc="Gradient Watcher", async_mode=False, service_timeout=0
        )

    def _tame(self, plugin: Any, url: str) -> None:
        """No apprise retries; socket timeouts, overflow and trust as the docstring says."""
        asked = {key.lower() for key in parse_qs(urlsplit(url).query)}
        plugin.retry = 0
        for attribute, key in (("socket_connect_timeout", "cto"), ("socket_read_timeout", "rto")):
            chosen = getattr(plugin, attribute) if key in asked else self._timeout
            setattr(plugin, attribute, min(chosen, self._timeout))
        if "overflow" not in asked:
            plugin.overflow_mode = apprise.OverflowMode.TRUNCATE
        if self._ca_bundle is not None and plugin.verify_certificate is True:
            plugin.verify_certificate = self._ca_bundle  # requests takes a CA bundle path here


def _deliver(
    plugin: Any, asset: apprise.AppriseAsset, message: Message, fmt: BodyFormat
) -> _Attempt:
    """On the lane's thread: one synchronous apprise call in the target's own body format
    (apprise converts nothing), its outcome copied out."""
    sender = apprise.Apprise(asset=asset)
    sender.add(plugin)
    outcome = sender.notify(
        body=message.body_in(fmt),
        title=message.title,
        notify_type=notify_type(message.severity),
        body_format=apprise.NotifyFormat(fmt.value),
        log_level=logging.DEBUG,
    )
    with outcome:
        services = list(outcome)
        lines = tuple((e.level, e.message) for s in services for e in s.logs())
        lines += tuple((e.level, e.message) for e in outcome.call_logs())
        if not services:
            return _Attempt(False, outcome.status.name, "apprise", "", lines)
        first = services[0]
        ok = bool(first) and bool(outcome)
        return _Attempt(ok, first.status.name, str(first.name), str(first.url), lines)


def _failed(
    name: str, url: str, index: int, size: int, reading: Reading, said: str
) -> TargetResult:
    cause = reading.cause
    detail = f"{cause.kind.value}: {cause.explanation}{reading.code()}"
    detail += f": {said}" if said else ""
    return TargetResult(
        name=name,
        url=url,
        ok=False,
        detail=_clip(detail, _MAX_DETAIL),
        index=index,
        cause=cause,
        status=reading.status,
        sent_chars=size,
    )


def _unparseable(url: str, index: int) -> TargetResult:
    """A target apprise could not load, named by its scheme alone (the rest may be secret)."""
    match = _SCHEME.match(url)
    shown = f"{match.group(1)}://…" if match else "(not a URL)"
    cause = FailureCause.BAD_URL
    detail = (
        f"{cause.kind.value}: apprise cannot parse this URL "
        "(unknown scheme, missing parts, or a service not available on this system)"
    )
    return TargetResult(
        name="unparseable", url=shown, ok=False, detail=detail, index=index, cause=cause
    )


def _summarise(targets: Sequence[TargetResult]) -> SendResult:
    """Fold per-target outcomes into one result: ok only when every target took the message."""
    failed = [t for t in targets if not t.ok]
    if not failed:
        return SendResult(ok=True, targets=tuple(targets))
    permanent = all(t.kind is FailureKind.PERMANENT for t in failed)
    kind = FailureKind.PERMANENT if permanent else FailureKind.RETRYABLE
    parts = [f"{t.name} {t.url}: {t.detail}" for t in failed]
    error = f"{len(failed)} of {len(targets)} targets failed: " + "; ".join(parts)
    return SendResult(
        ok=False, failure=kind, error=_clip(error, _MAX_ERROR), targets=tuple(targets)
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
                status=(target.kind or FailureKind.RETRYABLE).value,
                cause=target.cause.value if target.cause else None,
                detail=target.detail,
            )


def _scrub_forms(url: str, known: UrlSecrets) -> set[str]:
    """What to mask in this URL's log lines: the URL and each secret part, in every form (even
    short ones: these lines are about this URL, so masking a little too much costs nothing)."""
    values = {url, *known.values}
    forms = {f for v in values for f in secret_forms(v)}
    return forms | {v for v in values if len(v) >= _MIN_SECRET_LEN}


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""Signed webhooks: each event POSTed as JSON, signed per Standard Webhooks (format = "event").

Why not an apprise plugin: apprise hands a plugin a title and a body to format, reports a
failure as log lines to be read back, and would need the secret inside a URL; here the body
is the event document exactly as signed, the headers are the specification's
(`webhook-id`, `webhook-timestamp`, `webhook-signature`, `watcher.core.signing`), the HTTP
status is read directly into a `FailureCause`, and the secrets never leave their file.

Each URL is sent to on its own, in parallel, each within `timeout` seconds for the whole
request (a receiver that trickles its answer is cut off), one send at a time per URL (a send
to a URL still busy fails at once as BUSY: nothing goes twice into a stalled receiver).
Redirects are not followed (the specification: update the URL instead). Every attempt is
signed afresh with the time it is made; the id is the message's, the same on every retry.
URLs are named masked (scheme and host: a webhook's path is often its secret).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import structlog

from watcher.config.trust import verify_context
from watcher.core.outbox import (
    Budget,
    FailureCause,
    FailureKind,
    Message,
    SendResult,
    TargetResult,
)
from watcher.core.signing import webhook_headers
from watcher.edges.notify.causes import http_cause

log = structlog.get_logger(__name__)

USER_AGENT = "gradient-watcher (Standard Webhooks)"
SERVICE = "Signed webhook"


def masked_webhook_url(url: str) -> str:
    """Scheme, host and port only: `https://ci.example.com/…`."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


class SignedWebhookNotifier:
    """POSTs event documents to the URLs of `format = "event"` routes, signed with each
    route's keys. `clock` gives the attempt's Unix time (the wall clock; tests pass theirs)."""

    def __init__(
        self,
        routes: Mapping[str, Sequence[str]],
        keys: Mapping[str, Sequence[bytes]],
        *,
        timeout: float = 30.0,
        ca_bundle: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._routes = {name: tuple(urls) for name, urls in routes.items()}
        self._keys = {name: tuple(k) for name, k in keys.items()}
        self._timeout, self._clock = timeout, clock
        self._verify = verify_context(ca_bundle)
        self._busy: set[tuple[str, int]] = set()

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(self._routes)

    def budgets(self, route: str) -> tuple[Budget, ...]:
        """No size limit of their own: a `Budget()` per URL."""
        return tuple(Budget() for _ in self._routes.get(route, ()))

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        """POST `message.document` to every URL of `route` but those in `skip`."""
        urls = self._routes.get(route)
        if not urls or not self._keys.get(route):
            why = "has no URLs or no signing keys" if urls is not None else "is not configured"
            return SendResult(ok=False, failure=FailureKind.PERMANENT, error=f"route {why}")
        async with httpx.AsyncClient(verify=self._verify, follow_redirects=False) as client:
            targets = await asyncio.gather(
                *(
                    self._send_one(client, route, index, url, message)
                    for index, url in enumerate(urls)
                    if index not in skip
                )
            )
        return _summarise(targets)

    async def _send_one(
        self, client: httpx.AsyncClient, route: str, index: int, url: str, message: Message
    ) -> TargetResult:
        shown = masked_webhook_url(url)
        document = message.document
        if document is None:  # a bug: the plan always attaches the event to these routes
            return _failed(shown, index, 0, FailureCause.CRASHED, "no event document to send")
        body = document.text.encode("utf-8")
        if (route, index) in self._busy:
            return _failed(shown, index, len(body), FailureCause.BUSY, "previous send still out")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **webhook_headers(self._keys[route], document.webhook_id, int(self._clock()), body),
        }
        self._busy.add((route, index))
        try:
            async with asyncio.timeout(self._timeout):
                answer = await client.post(
                    url, content=body, headers=headers, timeout=self._timeout
                )
        except TimeoutError:
            said = f"no complete answer within {self._timeout:g} s"
            return _failed(shown, index, len(body), FailureCause.TIMEOUT, said)
        except httpx.HTTPError as exc:
            said = f"{type(exc).__name__}: {str(exc).replace(url, shown)}"
            return _failed(shown, index, len(body), FailureCause.CONNECTION, said)
        finally:
            self._busy.discard((route, index))
        if answer.is_success:
            log.info("alert_delivered", route=route, target=shown, service=SERVICE)
            return TargetResult(
                SERVICE,
                shown,
                ok=True,
                detail="delivered",
                index=index,
                status=answer.status_code,
                sent_chars=len(body),
            )
        cause = FailureCause.REJECTED if answer.is_redirect else http_cause(answer.status_code, "")
        said = f"HTTP {answer.status_code}"
        return _failed(shown, index, len(body), cause, said, answer.status_code)


def _failed(
    url: str, index: int, size: int, cause: FailureCause, said: str, status: int | None = None
) -> TargetResult:
    detail = f"{cause.kind.value}: {cause.explanation}: {said}"
    log.warning("alert_failed", target=url, service=SERVICE, cause=cause.value, detail=detail)
    return TargetResult(
        SERVICE,
        url,
        ok=False,
        detail=detail,
        index=index,
        cause=cause,
        status=status,
        sent_chars=size,
    )


def _summarise(targets: Sequence[TargetResult]) -> SendResult:
    failed = [t for t in targets if not t.ok]
    if not failed:
        return SendResult(ok=True, targets=tuple(targets))
    permanent = all(t.kind is FailureKind.PERMANENT for t in failed)
    error = f"{len(failed)} of {len(targets)} targets failed: " + "; ".join(
        f"{t.url}: {t.detail}" for t in failed
    )
    return SendResult(
        ok=False,
        failure=FailureKind.PERMANENT if permanent else FailureKind.RETRYABLE,
        error=error,
        targets=tuple(targets),
    )

"""The heartbeat edge: one HTTP request to a monitor's ping URL, within a hard deadline.

`HeartbeatPinger.ping` sends a `Ping` (`watcher.core.pings`) with httpx and never raises for
what the monitor or the network does: it answers a `PingResult`. The deadline covers the
whole request, answer included (httpx's own timeouts apply per socket operation; a monitor
that trickles its answer is cut off all the same). The URL is a secret: results name it
masked (`masked_ping_url`), never whole.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from watcher.config.trust import verify_context
from watcher.core.pings import Ping, PingMethod

USER_AGENT = "gradient-watcher heartbeat"


def masked_ping_url(url: str) -> str:
    """The URL with everything after the host hidden: `https://hc-ping.com/…`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


@dataclass(frozen=True, slots=True)
class PingResult:
    """What one ping came to: `ok` for a 2xx answer; `error` says why not (no secret)."""

    ok: bool
    status: int | None = None
    error: str | None = None


class HeartbeatPinger:
    """Sends pings over one httpx client (its connections are kept between pings)."""

    def __init__(self, *, ca_bundle: Path | None = None) -> None:
        self._client = httpx.AsyncClient(
            verify=verify_context(ca_bundle),
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
        )

    async def ping(self, ping: Ping, seconds: float) -> PingResult:
        """Send `ping`; the result within `seconds`, whatever the monitor does."""
        try:
            async with asyncio.timeout(seconds):
                answer = await self._request(ping, seconds)
        except TimeoutError:
            return PingResult(False, error=f"no answer within {seconds:g} s")
        except httpx.HTTPError as exc:
            said = str(exc).replace(ping.url, masked_ping_url(ping.url)) or "request failed"
            return PingResult(False, error=f"{type(exc).__name__}: {said}")
        if answer.is_success:
            return PingResult(True, answer.status_code)
        return PingResult(False, answer.status_code, f"HTTP {answer.status_code}")

    async def _request(self, ping: Ping, seconds: float) -> httpx.Response:
        if ping.method is PingMethod.POST:
            return await self._client.post(
                ping.url,
                content=(ping.body or "").encode(),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=seconds,
            )
        return await self._client.get(ping.url, timeout=seconds)

    async def aclose(self) -> None:
        await self._client.aclose()

"""Watching the watcher: which heartbeat ping a finished cycle sends (`[heartbeat]`). Pure.

A dead man's switch: an outside monitor (healthchecks.io, an Uptime Kuma push monitor, any
URL that expects a request every so often) is pinged after each successful cycle, and its
failure URL after a failed one, so that someone hears when the watcher itself is gone, which
no alert of its own can say. The monitor raises the alarm when the pings stop.

- A successful cycle pings `url`; a failed one (the API unreadable, the cycle's deadline
  passed, the cycle crashed) pings the failure URL: `fail_url` when set, else `url` with
  `/fail` added to its path (healthchecks.io's convention; the query is kept). An empty
  `fail_url` sends no failure ping: the monitor then notices the silence.
- `GET` by default (every push monitor takes it); `POST` sends a one-line summary as the body
  (healthchecks.io shows it in the check's log), at most `MAX_BODY` characters.

The shell sends the ping off the cycle's path, within `timeout`, one at a time: a ping due
while the previous one is still out is skipped (the next cycle pings again) and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

MAX_BODY = 1000


class PingKind(StrEnum):
    """Which ping: after a successful cycle, or after a failed one."""

    SUCCESS = "success"
    FAIL = "fail"


class PingOutcome(StrEnum):
    """What became of a ping: the `outcome` label of `gradient_watcher_heartbeats`."""

    SENT = "sent"  # the monitor answered 2xx
    FAILED = "failed"  # an error, a non-2xx answer, or no answer within the timeout
    SKIPPED = "skipped"  # the previous ping was still out: not sent


class PingMethod(StrEnum):
    GET = "GET"
    POST = "POST"


@dataclass(frozen=True, slots=True)
class HeartbeatPlan:
    """The `[heartbeat]` settings: where to ping, how, and for how long at most.

    `fail_url` None means "`url` + /fail"; "" means no failure ping.
    """

    url: str
    fail_url: str | None = None
    method: PingMethod = PingMethod.GET
    timeout: timedelta = timedelta(seconds=10)

    @property
    def failure_url(self) -> str | None:
        """Where a failed cycle pings (None: nowhere)."""
        if self.fail_url is None:
            return fail_url_of(self.url)
        return self.fail_url or None


@dataclass(frozen=True, slots=True)
class Ping:
    """One ping to send: its kind, URL, method and body (None for GET)."""

    kind: PingKind
    url: str
    method: PingMethod
    body: str | None = None


def fail_url_of(url: str) -> str:
    """`url` with `/fail` added to its path, query and fragment kept
    (`https://hc-ping.com/<uuid>` -> `https://hc-ping.com/<uuid>/fail`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))


def ping_for(plan: HeartbeatPlan, ok: bool, summary: str) -> Ping | None:
    """The ping a cycle that ended `ok` (or not) sends, with `summary` as the body of a POST;
    None when a failed cycle has no failure URL."""
    kind = PingKind.SUCCESS if ok else PingKind.FAIL
    url = plan.url if ok else plan.failure_url
    if url is None:
        return None
    body = _clip(" ".join(summary.split())) if plan.method is PingMethod.POST else None
    return Ping(kind, url, plan.method, body)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_BODY else text[: MAX_BODY - 1] + "…"

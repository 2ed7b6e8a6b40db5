"""What the API client is told by the configuration: one frozen value (`ApiSettings`).

The collaborators a test replaces (the transport, the clocks, `sleep`, the jitter source, the
response observer) are not settings: `ApiClient` takes them as keyword arguments.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

MAX_PER_PAGE = 200
"""The API's largest page (`per_page`); a larger value is clamped to it."""

DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""16 MiB: a page of 200 knowledge bases whose latest jobs carry 40 data sources each is
about 3.7 MB; an answer over the cap is refused unread (see `ApiSettings.max_response_bytes`)."""

DEFAULT_MAX_LIST_ITEMS = 20_000
"""The most items one read of a list may hold: 1,000 knowledge bases' latest 15 jobs fit."""


@dataclass(frozen=True, slots=True)
class RequestRetry:
    """How often and how long to retry one request: at most `max_attempts` attempts, full-jitter
    exponential backoff from `backoff_base` up to `backoff_max` seconds between them, and any
    server-requested wait (`retry-after`, `ratelimit-reset`) capped at `max_wait` seconds."""

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_wait: float = 60.0


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The API client's settings (`[api]` in the config), with their units.

    - `base_url`: scheme, host and optional port, no trailing slash.
    - `timeout`: seconds one request may take in all: connecting, sending, the status line and
      headers, and the whole body. A request past it is abandoned (and retried, like a 5xx).
    - `max_requests_per_minute`: the client's own ceiling, in any sliding 60 seconds.
    - `per_page`: items asked per page of a list (1 to 200; clamped).
    - `max_response_bytes`: the largest body read from one answer, after content decoding
      (a compressed answer is measured as it inflates). A larger answer is refused unread, a
      failed read (`MalformedResponse`), and is not retried.
    - `max_list_items`: the most items one read of a list may hold (a sweep over every page,
      or one unpaged list); more, or a `meta.total` that says more, is a failed read.
    - `low_remaining`: below this `ratelimit-remaining` the client spreads what is left of the
      API's hourly quota until `ratelimit-reset`.
    - `retry`: the retry policy.
    - `verify`: the TLS trust (an `ssl.SSLContext` from `[http] ca_bundle`, or True for the
      default CAs).
    """

    base_url: str
    timeout: float = 30.0
    max_requests_per_minute: int = 120
    per_page: int = MAX_PER_PAGE
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_list_items: int = DEFAULT_MAX_LIST_ITEMS
    low_remaining: int = 250
    retry: RequestRetry = field(default_factory=RequestRetry)
    verify: ssl.SSLContext | bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        object.__setattr__(self, "per_page", max(1, min(self.per_page, MAX_PER_PAGE)))
        for name in ("timeout", "max_response_bytes", "max_list_items"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ApiSettings.{name} must be positive")

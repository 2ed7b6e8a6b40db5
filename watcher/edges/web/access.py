"""Who may read and who may write: the page's access rules, decided per request.

| request | loopback `listen` | other `listen`, token file set | other, no token file |
|---|---|---|---|
| `/healthz`, `/readyz` | open | open | open |
| `/metrics` | open | token | open (as before the page) |
| the page, `/api/v1` (GET) | open | token | refused |
| writes (`POST`) | token | token | token (refused without a file) |

- The token is the content of `[http] auth_token_file`, given as `Authorization: Bearer
  TOKEN`, or for reads as the password of HTTP Basic (any user name: a browser asks for it),
  and compared in constant time (`hmac.compare_digest`).
- Writes take the Bearer form only. A browser never adds that header by itself (it does
  resend Basic credentials, and a cookie, to any site's form), and another site's script
  cannot add it without a CORS preflight this server never grants: so a write can come only
  from the page's own script, with the token typed in. No cookie, no CSRF token needed.
- Reads that loopback grants without credentials check the `Host` header too: a loopback
  name or address only, so that a web page whose name resolves to 127.0.0.1 (DNS rebinding)
  cannot read the watcher through a visitor's browser.
- Probes stay open everywhere: kubelets and load balancers send no credentials, and the
  answer holds only a verdict and its reason (secrets masked).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from enum import Enum

from watcher.edges.web.server import is_loopback


class Need(Enum):
    """What a request asks for."""

    PROBE = "probe"
    METRICS = "metrics"
    READ = "read"
    WRITE = "write"


class Verdict(Enum):
    """What the rules say about one request."""

    ALLOW = "allow"
    NO_CREDENTIALS = "no_credentials"  # 401: credentials needed, none or wrong given
    NOT_SERVED = "not_served"  # 403: this listen address serves it to nobody without a token
    WRITES_OFF = "writes_off"  # 403: no token file, so no writes from the page
    FOREIGN_HOST = "foreign_host"  # 403: loopback read under a name that is not loopback


@dataclass(frozen=True, slots=True)
class Access:
    """The rules of one listener: whether it listens on loopback only, and the token."""

    loopback: bool
    token: str | None = None

    def judge(self, need: Need, authorization: str | None, host: str | None) -> Verdict:
        """The verdict for a request needing `need`, with these headers."""
        if need is Need.PROBE:
            return Verdict.ALLOW
        if need is Need.WRITE:
            if self.token is None:
                return Verdict.WRITES_OFF
            return Verdict.ALLOW if self._bearer(authorization) else Verdict.NO_CREDENTIALS
        if self.token is not None and self._credentials(authorization):
            return Verdict.ALLOW
        if self.loopback:
            return Verdict.ALLOW if _loopback_host(host) else Verdict.FOREIGN_HOST
        if need is Need.METRICS and self.token is None:
            return Verdict.ALLOW  # as it was before the page: scrapers kept working
        return Verdict.NO_CREDENTIALS if self.token is not None else Verdict.NOT_SERVED

    def _bearer(self, authorization: str | None) -> bool:
        scheme, _, value = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and self._matches(value.strip())

    def _credentials(self, authorization: str | None) -> bool:
        """A Bearer token, or HTTP Basic with the token as the password."""
        if self._bearer(authorization):
            return True
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        return self._matches(decoded.partition(":")[2])

    def _matches(self, given: str) -> bool:
        token = self.token
        if token is None or not given:
            return False
        return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def _loopback_host(host: str | None) -> bool:
    """Whether a `Host` header names this machine only (`localhost`, 127.0.0.0/8, `[::1]`)."""
    if not host:
        return True  # HTTP/1.0 without Host: no browser sends that
    name = host.strip()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    return is_loopback(name)

"""Why an apprise target failed, read from what the service answered (apprise 2.3).

apprise reports a failed target with a status (FAILURE, TIMEOUT) and the log lines the
plugin wrote; it does not hand over the HTTP status nor the SMTP reply. Both are in those
lines: HTTP plugins (json, form, xml, mmost, slack, discord, ntfy and most others) end a
WARNING line with `error=NNN.` and write the response body at DEBUG (`Response Details`);
the e-mail plugin wraps every SMTP error in "Connection error while submitting email" and
writes the exception, with the server's reply code, at DEBUG (`Socket Exception: (535,
b'...')`). The notifier captures DEBUG lines for exactly this; only WARNING lines and the
codes ever leave this module (DEBUG lines may carry URLs and server text).

    HTTP 401, 403; SMTP 530, 534, 535, 538   CREDENTIALS   permanent
    HTTP 413; 400 saying the text is too long TOO_LARGE     re-rendered shorter
    HTTP 408, 429                             RATE_LIMITED  retried
    other HTTP 4xx                            REJECTED      permanent
    HTTP 5xx                                  SERVER_ERROR  retried
    SMTP 4xx                                  MAIL_DEFERRED retried
    other SMTP 5xx                            MAIL_REFUSED  permanent
    no code, a connection error               CONNECTION    retried
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from watcher.core.outbox import FailureCause

_HTTP_STATUS = re.compile(r"\berror=(\d{3})\b")
_SMTP_REPLY = re.compile(r"\((\d{3}), b['\"]")
_SMTP_REFUSED = re.compile(r"was refused: (\d{3})\b")
_SIZE_WORDS = re.compile(
    r"too[ _-]?(long|large|big)|exceed|max(imum)?[ _-]?(length|size|len)|"
    r"or fewer in length|length must|payload too",
    re.IGNORECASE,
)
_CONNECTION_WORDS = re.compile(
    r"connection error|connection refused|timed? ?out|reset|remote end closed|"
    r"name or service not known|ssl|certificate",
    re.IGNORECASE,
)
_SMTP_CREDENTIALS = frozenset({530, 534, 535, 538})
Line = tuple[str, str]  # (level name, message)


@dataclass(frozen=True, slots=True)
class Reading:
    """A failed target's cause, the code it was read from, and that code's protocol."""

    cause: FailureCause
    status: int | None = None
    protocol: str | None = None  # "HTTP" or "SMTP"

    def code(self) -> str:
        """`(HTTP 401)` / `(SMTP 535)`, or empty without a code."""
        return f" ({self.protocol} {self.status})" if self.status is not None else ""


def classify(status_name: str, lines: Sequence[Line]) -> Reading:
    """Read why one target failed from apprise's status and the plugin's log lines."""
    if status_name == "TIMEOUT":
        return Reading(FailureCause.TIMEOUT)
    said = " ".join(message for level, message in lines if level != "DEBUG")
    debug = [message for level, message in lines if level == "DEBUG"]
    exceptions = " ".join(m for m in debug if m.startswith("Socket Exception"))
    smtp = [int(c) for c in _SMTP_REPLY.findall(exceptions) + _SMTP_REFUSED.findall(said)]
    if smtp:
        return Reading(_smtp_cause(smtp[-1]), smtp[-1], "SMTP")
    http = [int(code) for code in _HTTP_STATUS.findall(said)]
    if http:
        answer = " ".join(m for m in debug if m.startswith("Response Details"))
        return Reading(http_cause(http[-1], answer), http[-1], "HTTP")
    if _CONNECTION_WORDS.search(said):
        return Reading(FailureCause.CONNECTION)
    return Reading(FailureCause.UNKNOWN)


def http_cause(status: int, text: str) -> FailureCause:
    """The cause an HTTP `status` (with the answer `text`) says; see the module table."""
    if status in (401, 403):
        return FailureCause.CREDENTIALS
    if status == 413 or (status == 400 and _SIZE_WORDS.search(text)):
        return FailureCause.TOO_LARGE
    if status in (408, 429):
        return FailureCause.RATE_LIMITED
    if 400 <= status < 500:
        return FailureCause.REJECTED
    if status >= 500:
        return FailureCause.SERVER_ERROR
    return FailureCause.UNKNOWN


def _smtp_cause(code: int) -> FailureCause:
    if code in _SMTP_CREDENTIALS:
        return FailureCause.CREDENTIALS
    if 400 <= code < 500:
        return FailureCause.MAIL_DEFERRED
    if code >= 500:
        return FailureCause.MAIL_REFUSED
    return FailureCause.UNKNOWN

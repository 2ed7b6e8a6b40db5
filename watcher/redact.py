"""Masks secrets in text and in nested values before they reach a log line, an error or `status`.

Two kinds of secret are masked: those registered explicitly (the API token, every apprise URL
and the credential-looking parts of it) and those recognised by shape (DigitalOcean tokens,
`Bearer …`, `Authorization: …`, `user:pass@` in URLs, secret-named query parameters).
Everything here is pure except the process-wide `SECRETS` registry, which is a lock-guarded set.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
MIN_SECRET_LENGTH = 6

# Each pattern keeps its group 1 (a harmless prefix) and masks the rest of the match.
_SHAPES: tuple[re.Pattern[str], ...] = (
    # DigitalOcean personal, OAuth and refresh tokens.
    re.compile(r"(do[opr]_v1_)[0-9A-Za-z]+"),
    # An Authorization header in any rendering (`Authorization: x`, `'authorization': 'x'`).
    re.compile(r"(?i)\b((?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n]+"),
    re.compile(r"(?i)\b(bearer\s+)[^\s'\",;]+"),
    # Credentials in the authority part of any URL.
    re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s@'\"]*:[^/?#\s@'\"]*@"),
    # A query (or matrix) parameter whose name says it is secret.
    re.compile(
        r"(?i)([?&;][\w.\-]*(?:pass|pwd|token|secret|key|auth|signature|sig|credential)[\w.\-]*=)"
        r"[^&#\s'\"]*"
    ),
)
_SHAPE_MASKS = (r"\1" + MASK, r"\1" + MASK, r"\1" + MASK, r"\1" + MASK + "@", r"\1" + MASK)

# A URL path or host segment that looks like a credential rather than a word: long and mixing
# letters with digits, or very long. `indexing`, `hooks` or `127.0.0.1` never qualify.
_TOKENISH = re.compile(r"^(?=.*[A-Za-z])(?=.*\d)[\w\-:+=~]{8,}$|^[\w\-:+=~]{20,}$")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with every given secret and every secret-shaped substring masked."""
    pattern = _secret_pattern(secrets if isinstance(secrets, frozenset) else frozenset(secrets))
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for shape, mask in zip(_SHAPES, _SHAPE_MASKS, strict=True):
        text = shape.sub(mask, text)
    return text


def redact_value(value: object, secrets: Iterable[str] = ()) -> object:
    """Return `value` with every string inside it redacted; unknown objects become redacted str."""
    known = secrets if isinstance(secrets, frozenset) else frozenset(secrets)
    match value:
        case str():
            return redact(value, known)
        case bool() | int() | float() | None:
            return value
        case Mapping():
            return {
                redact(k, known) if isinstance(k, str) else k: redact_value(v, known)
                for k, v in value.items()
            }
        case tuple():
            return tuple(redact_value(v, known) for v in value)
        case list() | set() | frozenset():
            return [redact_value(v, known) for v in value]
        case _:
            # Exceptions and arbitrary objects: their str() is what a reader would see.
            return redact(str(value), known)


def secret_forms(value: str) -> set[str]:
    """Return the strings to mask for one secret: itself, its URL credential parts, encodings."""
    forms = {value, value.strip()}
    if "://" in value:
        forms |= _url_credentials(value)
    forms |= {quote(f, safe="") for f in forms} | {unquote(f) for f in forms}
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def _url_credentials(url: str) -> set[str]:
    """Return the parts of a URL that carry credentials: user, password, token-like segments."""
    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:
        return set()
    found = {p for p in (username, password) if p}
    # The raw authority, not `hostname`: that one is lower-cased, and some services put a token
    # with a colon in it there (Telegram's `tgram://123:ABC/...`).
    authority = parts.netloc.rpartition("@")[2]
    segments = [authority, *authority.split(":"), *parts.path.split("/")]
    found |= {s for s in segments if _TOKENISH.match(s)}
    for pair in re.split(r"[&;]", parts.query):
        _name, _, val = pair.partition("=")
        if _TOKENISH.match(unquote(val)):
            found.add(unquote(val))
    return found


@lru_cache(maxsize=16)
def _secret_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    """Compile one alternation of the given secrets, longest first, or None when there are none."""
    # Longest first, so a URL is masked whole before any of its parts can match inside it.
    usable = sorted((s for s in secrets if s), key=lambda s: (-len(s), s))
    if not usable:
        return None
    return re.compile("|".join(re.escape(s) for s in usable))


class SecretRegistry:
    """A thread-safe set of secrets to mask everywhere; values shorter than 6 chars are ignored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()

    def register(self, value: str) -> None:
        """Add `value` and its credential parts; skip values too short to mask without harm."""
        if len(value.strip()) < MIN_SECRET_LENGTH:
            return
        forms = secret_forms(value)
        with self._lock:
            self._secrets = self._secrets | forms

    def snapshot(self) -> frozenset[str]:
        """Return the secrets registered so far."""
        return self._secrets

    def clear(self) -> None:
        """Forget every registered secret (for tests and for reloading configuration)."""
        with self._lock:
            self._secrets = frozenset()

    def redact(self, text: str) -> str:
        """Return `text` with the registered secrets and the secret shapes masked."""
        return redact(text, self._secrets)


SECRETS = SecretRegistry()


def register_secret(value: str) -> None:
    """Register a secret in the process-wide registry that logging and errors redact with."""
    SECRETS.register(value)

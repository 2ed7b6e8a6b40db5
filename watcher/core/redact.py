"""Masks secrets in everything the watcher renders, stores or prints. One mechanism, four uses.

Known secrets are registered once, when the configuration is loaded: the API token, every
route URL whole, and each URL's secret parts as apprise classifies them (see
`watcher.config.url_secrets`; a part secret only by guess, such as a webhook's path segment,
only when it could be a credential, not when it reads as words: `watcher.config.guessed`).
Each secret is masked in every form it may take in a text: as is, percent-encoded (three
ways), percent-decoded, JSON- and repr-escaped, and escaped for markdown and HTML (an alert
body). Secret shapes are masked too, registered or not:
DigitalOcean tokens, `Bearer …`, `Authorization: …`, `user:pass@` in URLs, secret-named
query parameters, and the whole query of a signed URL (a per-file report's). Values shorter
than `MIN_SECRET_LENGTH` are not searched for in free text (they would mask ordinary words);
URLs mask them by position.

The process-wide `SECRETS` registry is applied at each output boundary: the log chain
(`watcher.service.logs`), the store (`watcher.core.guard.GuardedStore`), alerts (`GuardedNotifier`)
and the terminal (`watcher.cli.say`). Classifying a URL loads apprise (0.35 s): a URL registered
with `register_lazy` is classified only when a text holds one of its candidate pieces, so commands
that print nothing secret (`status`, `health`) never pay for it.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from watcher.core.markup import escape_html, escape_markdown, escape_markdown_inline, escape_text

MASK = "***"
MIN_SECRET_LENGTH = 6
# A piece of a URL shorter than a secret can be cannot hold one: it does not wake a classifier.
_MIN_CANDIDATE = MIN_SECRET_LENGTH
# Fields that name things rather than say them: masking them would break identities.
IDENTITY_FIELDS = frozenset(
    {
        "uuid",
        "knowledge_base_uuid",
        "data_source_uuid",
        "data_source_uuids",
        "kb_uuid",
        "last_job_uuid",
        "event_id",
        "cycle_id",
        "route",
    }
)

# Each pattern keeps its group 1 (a harmless prefix) and masks the rest of the match.
_SHAPES: tuple[re.Pattern[str], ...] = (
    # DigitalOcean personal, OAuth and refresh tokens.
    re.compile(r"(do[opr]_v1_)[0-9A-Za-z]+"),
    # An Authorization header in any rendering (`Authorization: Bearer x`, `'authorization':
    # 'x'`, apprise's `+Authorization=Basic%20x`): its scheme word stays, the credential goes,
    # and the text after it (the rest of a log line, a URL's next argument) is kept.
    re.compile(
        r"(?i)\b((?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?(?:[a-z][\w-]*[ \t]+)?)"
        r"[^\s'\"&,;]+"
    ),
    re.compile(r"(?i)\b(bearer\s+)[^\s'\",;]+"),
    # Credentials in the authority part of any URL.
    re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s@'\"]*:[^/?#\s@'\"]*@"),
    # A query (or matrix) parameter whose name says it is secret.
    re.compile(
        r"(?i)([?&;][\w.\-]*(?:pass|pwd|token|secret|key|auth|signature|sig|credential)[\w.\-]*=)"
        r"[^&#\s'\"]*"
    ),
    # A signed URL (a per-file report's `details_signed_url`: S3/Spaces `X-Amz-Signature`,
    # Google `X-Goog-Signature` / `Signature`, Azure `sig`): whoever holds it reads the file,
    # so its whole query goes (the credential, the expiry, the signing key's id), not only
    # the parameters whose names say so.
    re.compile(
        r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s?#'\"<>]*\?)"
        r"(?=[^\s#'\"<>]*(?:signature|credential)|(?:[^\s#'\"<>]*[&;])?sig=)"
        r"[^\s#'\"<>]+"
    ),
)
_SHAPE_MASKS = (
    r"\1" + MASK,
    r"\1" + MASK,
    r"\1" + MASK,
    r"\1" + MASK + "@",
    r"\1" + MASK,
    r"\1" + MASK,
)
# What each shape cannot match without, tested on the raw text and on the text folded the way
# `re`'s IGNORECASE folds it (lower case, and the four non-ASCII letters it equates with ASCII
# ones): a text that lacks them is not scanned. A large text (the page: a megabyte for 1,000
# knowledge bases) then costs a few `in` tests instead of five scans of every word.
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_SECRET_NAMES = ("pass", "pwd", "token", "secret", "key", "auth", "sig", "credential")
_SHAPE_NEEDS: tuple[Callable[[str, str], bool], ...] = (
    lambda raw, folded: "_v1_" in raw,
    lambda raw, folded: "authorization" in folded,
    lambda raw, folded: "bearer" in folded,
    lambda raw, folded: "://" in raw and "@" in raw,
    lambda raw, folded: "=" in raw and any(name in folded for name in _SECRET_NAMES),
    lambda raw, folded: "://" in raw and "?" in raw and ("sig" in folded or "cred" in folded),
)

T = TypeVar("T")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with every given secret and every secret-shaped substring masked."""
    pattern = _secret_pattern(secrets if isinstance(secrets, frozenset) else frozenset(secrets))
    if pattern is not None:
        text = pattern.sub(MASK, text)
    folded = _fold(text)
    for shape, mask, needs in zip(_SHAPES, _SHAPE_MASKS, _SHAPE_NEEDS, strict=True):
        if needs(text, folded):
            text = shape.sub(mask, text)
    return text


def _fold(text: str) -> str:
    """`text` folded as `re`'s IGNORECASE folds it, for the shapes' needs (`translate` is slow
    on a large text: only when one of the four letters is there)."""
    if any(letter in text for letter in "\u0130\u0131\u017f\u212a"):
        text = text.translate(_FOLD)
    return text.lower()


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


def scrub(value: T, clean: Callable[[str], str]) -> T:
    """`value` with `clean` applied to every string in it, types kept (frozen dataclasses,
    tuples, frozensets, dicts); identity fields (`IDENTITY_FIELDS`) and enums are left alone.
    Returns the very same object when nothing changed."""
    result: Any = value
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        return clean(value)  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            if field.name in IDENTITY_FIELDS:
                continue
            old = getattr(value, field.name)
            new = scrub(old, clean)
            if new is not old:
                changes[field.name] = new
        result = dataclasses.replace(value, **changes) if changes else value
    elif isinstance(value, tuple | frozenset | list):
        items = [scrub(item, clean) for item in value]
        if any(new is not old for new, old in zip(items, value, strict=True)):
            result = type(value)(items)
    elif isinstance(value, Mapping):
        pairs = {key: scrub(item, clean) for key, item in value.items()}
        if any(pairs[key] is not item for key, item in value.items()):
            result = pairs
    return result  # type: ignore[no-any-return]


def secret_forms(value: str) -> set[str]:
    """The strings to mask for one secret: itself and every encoding it may be written in.

    Encodings compose: a secret percent-encoded, quoted by `repr` or JSON (twice: JSON text
    inside JSON), then made one line (whitespace runs become a space) and escaped for a
    markdown or HTML body is covered too.
    """
    base = {value, value.strip(), quote(value, safe=""), quote(value), quote_plus(value)}
    base |= {unquote(value), unquote_plus(value)}
    for _ in range(2):
        base |= {json.dumps(f)[1:-1] for f in list(base)} | {repr(f)[1:-1] for f in list(base)}
    forms = set(base)
    for form in base:
        forms |= {escape_text(form), escape_markdown(form), escape_markdown_inline(form)}
        forms |= {html.escape(form, quote=True), html.escape(form, quote=False), escape_html(form)}
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


@lru_cache(maxsize=16)
def _secret_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    """Compile one alternation of the given secrets, longest first, or None when there are none."""
    # Longest first, so a URL is masked whole before any of its parts can match inside it.
    usable = sorted((s for s in secrets if s), key=lambda s: (-len(s), s))
    if not usable:
        return None
    return re.compile("|".join(re.escape(s) for s in usable))


class SecretRegistry:
    """A thread-safe set of secrets to mask everywhere, some of them classified lazily."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._secrets: frozenset[str] = frozenset()
        self._pending: dict[str, tuple[frozenset[str], Callable[[], Iterable[str]]]] = {}
        self._resolved: set[str] = set()
        self._watched: frozenset[str] = frozenset()  # the candidates of pending URLs
        self._public: frozenset[str] = frozenset()  # names the config declares (casefolded)
        self._reserved: Callable[[], Iterable[str]] = frozenset  # the program's own names
        self._busy = threading.local()

    def declare_public(self, names: Iterable[str]) -> None:
        """Names the configuration itself declares for people to read (an account's, a
        route's, a knowledge base's): a part of a URL guessed secret that equals one (a
        webhook path `/staging` beside the account `staging`) is not masked, or every alert
        and status line naming it would read `***`. Values registered before are kept."""
        with self._lock:
            self._public = self._public | {n.strip().casefold() for n in names if n.strip()}

    def reserve(self, names: Callable[[], Iterable[str]]) -> None:
        """The program's own names (its package's and modules', hence its loggers'), read only
        when needed: the registry's own guesses, every candidate piece of a URL masked while
        the URL is being classified or when its classifier fails, never mask them (nor a name
        declared public). What apprise classifies secret is masked whatever it equals."""
        with self._lock:
            self._reserved = names

    def register(self, value: str) -> None:
        """Add `value` in all its forms; skip values too short to mask without harm and the
        names declared public (`declare_public`)."""
        if len(value.strip()) < MIN_SECRET_LENGTH or value.strip().casefold() in self._public:
            return
        forms = secret_forms(value)
        with self._lock:
            self._secrets = self._secrets | forms

    def register_exact(self, value: str) -> None:
        """Add `value` as written, without its other forms (a whole URL: its parts, registered
        with all their forms, cover every other way of writing it)."""
        if len(value.strip()) >= MIN_SECRET_LENGTH:
            with self._lock:
                self._secrets = self._secrets | {value, value.strip()}

    def register_lazy(
        self, key: str, candidates: Iterable[str], resolve: Callable[[], Iterable[str]]
    ) -> None:
        """Add the secrets `resolve()` returns, calling it only once a text holds a candidate.

        `candidates` must contain every secret `resolve` may return (or a piece of it at least
        `_MIN_CANDIDATE` long); until then the secrets cannot be in a text. A `key` (the URL)
        registered before is not registered again.
        """
        usable = frozenset(c for c in candidates if len(c) >= _MIN_CANDIDATE)
        with self._lock:
            if key in self._pending or key in self._resolved:
                return
            self._pending[key] = (usable, resolve)
            self._watched = self._watched | usable  # compiled on first use, not per URL

    def resolve_pending(self) -> None:
        """Classify every lazily registered secret now (when apprise is loaded anyway)."""
        with self._lock:
            if not self._pending or getattr(self._busy, "active", False):
                return
            self._busy.active = True
            try:
                for key, (candidates, resolve) in self._pending.items():
                    try:
                        found = list(resolve())
                    except Exception:  # a classifier that fails: every candidate is secret
                        found = self._guessed(candidates)
                    for value in found:
                        self.register(value)
                    self._resolved.add(key)
                self._pending, self._watched = {}, frozenset()
            finally:
                self._busy.active = False

    def _guessed(self, candidates: Iterable[str]) -> list[str]:
        """The candidates a guess masks: all but the public and the program's own names."""
        spared = self._public | {name.casefold() for name in self._reserved()}
        return [c for c in candidates if c.strip().casefold() not in spared]

    def snapshot(self) -> frozenset[str]:
        """Return the secrets registered (and classified) so far."""
        return self._secrets

    def clear(self) -> None:
        """Forget every registered secret (for tests and for reloading configuration)."""
        with self._lock:
            self._secrets, self._pending, self._watched = frozenset(), {}, frozenset()
            self._resolved, self._public, self._reserved = set(), frozenset(), frozenset

    def known(self, text: str) -> frozenset[str]:
        """The secrets to mask in `text`, classifying lazily registered URLs if it may hold one."""
        watch = _secret_pattern(self._watched) if self._watched else None
        if watch is None or watch.search(text) is None:
            return self._secrets
        if getattr(self._busy, "active", False):
            # a line logged while classifying (apprise importing): mask every candidate
            pieces = self._guessed(v for c, _ in self._pending.values() for v in c)
            extra = {f for v in pieces for f in secret_forms(v)}
            return self._secrets | extra
        # other threads wait here until the classification is done
        self.resolve_pending()
        return self._secrets

    def redact(self, text: str) -> str:
        """Return `text` with the registered secrets and the secret shapes masked."""
        return redact(text, self.known(text))

    def redact_value(self, value: object) -> object:
        """`redact_value` with the registered secrets (classifying lazily ones as needed)."""
        self._classify_for(value)
        return redact_value(value, self._secrets)

    def scrub(self, value: T) -> T:
        """`scrub` with this registry's `redact`: every string of `value` redacted, types kept."""
        return scrub(value, self.redact)

    def _classify_for(self, value: object) -> None:
        if not self._watched:
            return
        if isinstance(value, str):
            self.known(value)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                self._classify_for(key)
                self._classify_for(item)
        elif isinstance(value, tuple | list | set | frozenset):
            for item in value:
                self._classify_for(item)
        elif not isinstance(value, bool | int | float | type(None)):
            self.known(str(value))


SECRETS = SecretRegistry()


def register_secret(value: str) -> None:
    """Register a secret in the process-wide registry that logging and errors redact with."""
    SECRETS.register(value)

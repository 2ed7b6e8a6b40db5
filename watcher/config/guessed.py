"""Whether a part of a URL that is secret only by guess is masked: when it could be a credential.

apprise says which parts of its URLs are private (a password, a token, an API key, whatever
its privacy mode hides): those are masked whatever they look like. Other parts are secret only
by our guess (`watcher.config.url_secrets`): a generic webhook's path segments, the values of
header, payload and request arguments whose names say nothing, of query arguments the plugin
does not know, and parts apprise ignores. Such a part is masked unless it reads as words:

- ASCII, at most `MAX_WORDS_LENGTH` characters, one to `MAX_WORDS` pieces joined by single
  `-`, `_`, `.` or spaces;
- each piece a version (`v1`, `v12`) or letters in one case (`alerts`, `API`, `Watcher`) of
  at most `MAX_WORD_LETTERS`, and, past `SHORT_WORD` letters, with a vowel (`aeiouy`) and no
  run of `CONSONANT_RUN` consonants.

So `watcher`, `hooks`, `alerts`, `notify`, `v1` and `product-docs` are no secrets, while a
digit, mixed case (`x7Qp2Lk9Zr`, base64), a long run of letters (a Slack token, 32 hex digits)
or a run no word has (`xkcdqwrtzp`) keeps a part masked. A value made of letters alone that
reads as words is weak as a credential; when in doubt, the rule masks. A webhook's whole path
is masked when one of its segments is.

The program's own names, the package's and every module's (so every logger name of ours), and
the names of the libraries' loggers our log lines carry, are never secret by guess: a webhook
path `/pgschema` must not turn the logger `watcher.edges.store.pgschema` into `***`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, unquote_plus

MAX_WORDS_LENGTH = 32
MAX_WORDS = 4
MAX_WORD_LETTERS = 14
SHORT_WORD = 4  # up to this many letters a piece needs no vowel (`xml`, `sms`, `html`)
CONSONANT_RUN = 5
_SEPARATOR = re.compile(r"[-_. ]")
_VERSION = re.compile(r"v\d{1,2}")
_ONE_CASE = re.compile(r"[a-z]+|[A-Z]+|[A-Z][a-z]+")
_VOWEL = re.compile(r"[aeiouy]")
_RUN = re.compile(rf"[^aeiouy]{{{CONSONANT_RUN}}}")

# The libraries whose loggers `watcher.service.logs` routes into our log lines.
LIBRARY_LOGGERS = (
    "apprise",
    "httpx",
    "httpcore",
    "apscheduler",
    "uvicorn",
    "asyncio",
    "py.warnings",
)


def reads_as_words(value: str) -> bool:
    """Whether `value` reads as words (see the module docstring), so cannot be a credential."""
    if not value or not value.isascii() or len(value) > MAX_WORDS_LENGTH:
        return False
    pieces = _SEPARATOR.split(value)
    return len(pieces) <= MAX_WORDS and all(_is_word(piece) for piece in pieces)


def _is_word(piece: str) -> bool:
    if _VERSION.fullmatch(piece):
        return True
    if len(piece) > MAX_WORD_LETTERS or not _ONE_CASE.fullmatch(piece):
        return False
    folded = piece.lower()
    return len(folded) <= SHORT_WORD or (
        _VOWEL.search(folded) is not None and _RUN.search(folded) is None
    )


def guessed_secret(value: str) -> bool:
    """Whether a part guessed secret (percent-decoded) is masked: it could be a credential and
    is none of the program's own names."""
    return not reads_as_words(value) and value.strip().casefold() not in program_names()


def kept_secret(written: str) -> bool:
    """Whether a part guessed secret, as written in its URL, is masked (`guessed_secret`),
    judged in each decoding of it: percent-escapes, and `+` as a plus or as a space."""
    return any(guessed_secret(form) for form in {unquote(written), unquote_plus(written)} if form)


def secret_path(segments: Iterable[str]) -> bool:
    """Whether a path (a generic webhook's, a heartbeat's), by its segments as written,
    holds one that is masked (`kept_secret`): the whole path is then secret too."""
    return any(kept_secret(s) for s in segments if s)


@lru_cache(maxsize=1)
def program_names() -> frozenset[str]:
    """The package's name and its modules', whole (`watcher.service.logs`) and in pieces, and
    the libraries' logger names, folded: every logger name of a log line is made of them."""
    package = Path(__file__).resolve().parent.parent
    names = {package.name, *LIBRARY_LOGGERS, *(p for n in LIBRARY_LOGGERS for p in n.split("."))}
    for path in package.rglob("*.py"):
        module = path.relative_to(package.parent).with_suffix("").parts
        if module[-1] == "__init__":
            module = module[:-1]
        names |= set(module) | {".".join(module[: i + 1]) for i in range(len(module))}
    return frozenset(name.casefold() for name in names)

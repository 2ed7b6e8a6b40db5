"""What the secret and hostile-text properties share: generated secrets, the URL shapes apprise
documents for them, names full of control characters, and the leak check.

A leak is three consecutive characters of a secret in an output that the same output made
with a stand-in secret does not hold (so `***`, a host name or a timestamp that happens to
share three characters with a random secret is not a leak).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import quote

from hypothesis import settings
from hypothesis import strategies as st

from watcher.config.guessed import guessed_secret
from watcher.core.redact import MIN_SECRET_LENGTH

# Few examples per property, derandomized: the suite stays fast and the same in CI. Run with
# HYPOTHESIS_PROFILE=promises-explore (as for `tests/promises`) for 500 fresh random examples,
# with `--timeout 0`: the CLI properties then take longer than the suite's two minutes.
settings.register_profile(
    "secrets-ci", max_examples=40, deadline=None, derandomize=True, database=None
)
settings.register_profile("secrets-explore", max_examples=500, deadline=None, database=None)
_EXPLORE = "explore" in os.environ.get("HYPOTHESIS_PROFILE", "")
SECRET_PROPERTY = settings.get_profile("secrets-explore" if _EXPLORE else "secrets-ci")

# Every printable character: letters, marks, digits, punctuation, symbols, spaces.
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
SECRETS = st.text(PRINTABLE, min_size=MIN_SECRET_LENGTH, max_size=24).filter(
    lambda s: len(s.strip()) >= MIN_SECRET_LENGTH
)
# Every control, bidi and format character, mixed with text.
CONTROLS = st.characters(whitelist_categories=("Cc", "Cf", "Zl", "Zp"))
HOSTILE_NAMES = st.text(st.one_of(CONTROLS, PRINTABLE), min_size=1, max_size=30)

# Where apprise's documented URL shapes carry a secret: user info, path tokens (private tokens,
# a webhook's path, a token in the host), query arguments, header (+) and payload (:)
# arguments, and what follows a `#`. `{s}` is the secret, percent-encoded.
URL_SHAPES = (
    "json://user:{s}@example.com/hook",  # password
    "ntfys://{s}@ntfy.example.com/alerts",  # user
    "mailto://alerts:{s}@smtp.example.com?to=ops@example.com",  # email password
    "json://example.com:8443/hooks/{s}",  # a generic webhook's path
    "form://example.com/api/webhook/{s}",
    "mmost://chat.example.com/{s}",  # a private path token
    "discord://1234567890/{s}",
    "slack://T1JJ3T3L2/A1BRTD4JD/{s}/#indexing",
    "tgram://123456789:{s}/-100123",  # a bot token in the host
    "ntfy://ntfy.example.com/alerts?token={s}",  # query arguments
    "json://example.com/x?apikey={s}&format=text",
    "mailto://smtp.example.com?user=bob&pass={s}&to=ops@example.com",
    "json://example.com/x?+X-Api-Key={s}",  # header arguments
    "json://example.com/x?+Authorization=Bearer%20{s}",
    "json://example.com/x?:token={s}",  # payload arguments
    "json://user:pw@example.com/hook#{s}",  # after a `#`
    "json://example.com/x?token=t0k#{s}",
)


# Where the secret sits in a part only guessed secret (a generic webhook's path): masked only
# when it could be a credential (`watcher.config.guessed`), so the properties draw only such.
GUESSED_SHAPES = frozenset(
    {"json://example.com:8443/hooks/{s}", "form://example.com/api/webhook/{s}"}
)


def fits(shape: str, secret: str) -> bool:
    """Whether `secret` (and its stand-in) is one the promise covers in `shape`."""
    return shape not in GUESSED_SHAPES or all(guessed_secret(s) for s in (secret, stand_in(secret)))


_TIMES = re.compile(r"\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:\d\d)?|\d+(?:h|m|s)(?: \d+[ms])* ago")


def without_times(text: str) -> str:
    """`text` with its timestamps and ages replaced: they differ between two runs, and their
    digits are no secret's."""
    return _TIMES.sub("<time>", text)


def url_with(shape: str, secret: str) -> str:
    return shape.format(s=quote(secret, safe=""))


def stand_in(secret: str) -> str:
    """A harmless secret of the same length, sharing no character with `secret`."""
    char = next(c for c in "QZXJKV" if c not in secret)
    return char * len(secret)


def grams(secret: str) -> set[str]:
    return {secret[i : i + 3] for i in range(len(secret) - 2)}


def leaks(secret: str, output: str, baseline: str) -> set[str]:
    """The 3-character runs of `secret` in `output` that the stand-in output lacks."""
    return {g for g in grams(secret) if g in output and g not in baseline}


def assert_no_leak(secret: str, render: Callable[[str], str]) -> str:
    """Render with the secret and with a stand-in; fail on any leaked run. Returns the output."""
    output = render(secret)
    found = leaks(secret, output, render(stand_in(secret)))
    assert not found, f"{found} of {secret!r} leaked into:\n{output}"
    return output

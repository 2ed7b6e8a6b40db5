"""A part of a URL secret only by guess is masked when it could be a credential, not when it
reads as words, and never when it is one of the program's own names."""

from __future__ import annotations

import base64
import uuid

import pytest

from watcher.config.guessed import guessed_secret, program_names, reads_as_words
from watcher.config.url_secrets import url_secrets
from watcher.config.urls import candidates


@pytest.mark.parametrize(
    "word",
    [
        "watcher",
        "alerts",
        "hooks",
        "notify",
        "v1",
        "api",
        "API",  # one case, upper
        "Watcher",  # one case, capitalised
        "xml",  # short: no vowel needed
        "product-docs",  # words joined by - _ . or a space
        "my_hook",
        "Gradient Watcher",
        "notifications",
        "apscheduler",  # most library loggers' names read as words too
        "uvicorn",
    ],
)
def test_ordinary_words_are_no_credential(word: str) -> None:
    assert reads_as_words(word)
    assert not guessed_secret(word)


@pytest.mark.parametrize(
    "credential",
    [
        "T00000000",  # Slack-style `T000/B000/XXXX` pieces: digits
        "B00000000",
        "X" * 24,  # a long run of letters
        "TIiajkdnlazkcOXrIdevi7FQ",  # a real-looking Slack token: mixed case, a digit
        "9f3c1b2a4d5e11ef8a1b0242ac120002",  # 32 hex digits
        "abcdefabcdefabcdefabcdefabcdefab",  # 32 hex letters
        str(uuid.UUID(int=0x9F3C1B2A4D5E11EF8A1B0242AC120002)),
        base64.b64encode(b"alerts-watcher").decode(),  # base64 of words: mixed case, `=`
        "YWxlcnRz",  # base64 without padding
        "x7Qp2Lk9Zr",
        "Wq7TzXk2pLm9",
        "123456",  # a Zapier account number
        "myHook",  # mixed case within a piece: in doubt
        "xkcdqwrtzp",  # a run of consonants no word has
        "zzzzzz",  # no vowel
        "one-two-three-four-five",  # more words than a name has
        "a" * 33,
        "Gradient+Watcher",  # `+` is no separator
        "hooks/alerts",  # a whole path is judged by its segments, not as one word
        "wätcher",  # not ASCII: in doubt
        "",
    ],
)
def test_what_could_be_a_credential_stays_a_guessed_secret(credential: str) -> None:
    assert not reads_as_words(credential)


def test_the_programs_own_names_are_never_a_guessed_secret_even_when_they_read_as_no_word() -> None:
    assert not reads_as_words("pgschema")  # five consonants in a row
    assert {"pgschema", "watcher.edges.store.pgschema", "watcher", "extrarun"} <= program_names()
    assert not guessed_secret("pgschema") and not guessed_secret("watcher.edges.store.pgschema")
    assert guessed_secret("qgschema")  # the same shape, no name of ours


def test_every_library_logger_the_log_chain_routes_is_a_name_no_guess_masks() -> None:
    from watcher.service.logs import _ROUTED

    assert not reads_as_words("httpcore")  # five consonants in a row
    assert {name.casefold() for name in _ROUTED} <= program_names()
    assert not guessed_secret("httpcore")


@pytest.mark.parametrize(
    ("url", "secret", "shown"),
    [
        ("json://127.0.0.1:33379/watcher", set(), "json://127.0.0.1:33379/watcher"),
        ("form://127.0.0.1:9/hooks/alerts", set(), "form://127.0.0.1:9/hooks/alerts"),
        ("xml://example.com/api/v1/notify", set(), "xml://example.com/api/v1/notify"),
        # a segment that could be a credential is masked, and the whole path with it
        (
            "json://127.0.0.1:9/hooks/Wq7TzXk2pLm9",
            {"Wq7TzXk2pLm9", "hooks/Wq7TzXk2pLm9"},
            "json://127.0.0.1:9/hooks/****",
        ),
        # what apprise marks private stays secret whatever it looks like: a Mattermost token,
        # a password
        ("mmost://127.0.0.1:9/watcher", {"watcher"}, "mmost://127.0.0.1:9/****"),
        ("json://ops:alerts@127.0.0.1:9/x", {"alerts"}, "json://****@127.0.0.1:9/x"),
        # an unknown query argument and a payload argument whose names say nothing: guessed;
        # shown masked in the URL by position, not searched for in other texts
        ("json://h.example.com/x?env=production", set(), "json://h.example.com/x?env=****"),
        ("json://h.example.com/x?:source=watcher", set(), "json://h.example.com/x?:source=****"),
        ("json://h.example.com/x?:source=Wq7TzXk2pLm9", {"Wq7TzXk2pLm9"}, None),
        # names that say secret, and an auth scheme, are secret whatever the value
        ("json://h.example.com/x?:token=alerts", {"alerts"}, None),
        ("json://h.example.com/x?+X-Custom=Bearer%20alerts", {"alerts", "Bearer alerts"}, None),
        # what follows a `#` that apprise drops is a password's tail
        ("json://h.example.com/x#alerts", {"alerts", "x#alerts"}, None),
    ],
)
def test_a_urls_guessed_parts_are_secret_only_when_they_could_be_credentials(
    url: str, secret: set[str], shown: str | None
) -> None:
    found = url_secrets(url)
    assert secret <= found.values
    assert not {"watcher", "alerts", "hooks", "production"} & (found.values - secret)
    if shown is not None:
        assert found.masked(url) == shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # nothing could be secret: no line naming the watcher loads apprise to classify it
        ("json://127.0.0.1:9/watcher", set()),
        ("json://127.0.0.1:9/hooks/alerts", set()),
        # a password that is also a path segment: apprise must be asked
        ("json://ops:watcher@127.0.0.1:9/watcher", {"watcher"}),
        # a segment that could be a credential wakes the classifier, with its path
        ("json://127.0.0.1:9/hooks/Wq7TzXk2pLm9", {"Wq7TzXk2pLm9", "hooks/Wq7TzXk2pLm9"}),
        ("mmost://127.0.0.1:9/watcher", {"watcher"}),  # a private token, whatever it reads
    ],
)
def test_only_what_could_be_secret_is_a_candidate_to_wake_the_classifier(
    url: str, expected: set[str]
) -> None:
    found = candidates(url)
    assert expected <= found
    assert len([c for c in found if len(c) >= 6]) == len([c for c in expected if len(c) >= 6])

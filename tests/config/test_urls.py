"""Apprise URLs: read the way apprise reads them, masked from what apprise says is secret, and
refused when apprise would read them otherwise than meant.

The properties run every URL shape apprise documents (`tests.leaks.URL_SHAPES`) with secrets
over all printable characters: the classification finds the secret, the lazy candidates
contain it, and no display of the URL shows three characters of it in a row.
"""

from __future__ import annotations

import warnings
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.leaks import SECRET_PROPERTY, SECRETS, URL_SHAPES, assert_no_leak, url_with
from watcher.config.url_secrets import url_secrets
from watcher.config.urls import ambiguity, candidates, mask_url, parse_url, unloadable

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from apprise.utils.parse import parse_url as apprise_parse_url


@pytest.mark.parametrize(
    "url",
    [
        "json://user:pw@example.com:8080/hooks/abc?+X-Api-Key=k&format=text",
        "mailto://alerts:s3cret@smtp.example.com/ops@example.com?from=w@example.com",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/",
        "ntfy://ntfy.sh/topic?token=tk",
        "mmost://[::1]:8065/token",
        "discord://123456/abcdef",
        "json://user:p%40ss%23word@example.com/x",
    ],
)
def test_urls_split_into_the_parts_apprise_reads(url: str) -> None:
    """User, password, host, port and path segments agree with apprise's own parser."""
    ours, theirs = parse_url(url), apprise_parse_url(url)
    assert ours is not None and theirs is not None
    # the plugins decode user and password themselves (`URLBase.parse_url`)
    assert (ours.user and unquote(ours.user)) == (theirs["user"] and unquote(theirs["user"]))
    assert (ours.password and unquote(ours.password)) == (
        theirs["password"] and unquote(theirs["password"])
    )
    assert ours.host.lower() == theirs["host"].lower()
    assert (ours.port and int(ours.port)) == theirs["port"]
    path = "/" + "/".join(ours.segments) if ours.segments else None
    assert (path and unquote(path).rstrip("/")) == (
        theirs["fullpath"] and unquote(theirs["fullpath"]).rstrip("/")
    )


@pytest.mark.parametrize(
    ("url", "misread"),
    [
        # the password Zq9@x#T/7%Lm written raw: apprise read host "x", lost the rest
        ("mailto://user:Zq9@x#T/7%Lm@example.com", "raw '#'"),
        ("json://user:p@ss@example.com/hook", "more than one '@'"),
        ("json://user:pa/ss@example.com/hook", "raw '/'"),
        ("json://user:pa?ss@example.com/hook", "raw '?'"),
        ("json://user:pa#ss@example.com/hook", "raw '#'"),
        # the same passwords percent-encoded are read as meant
        ("mailto://user:Zq9%40x%23T%2F7%25Lm@example.com", None),
        ("json://user:p%40ss@example.com/hook", None),
        # an '@' after the host is a target or a value, not a misreading
        ("mailtos://user:pass@gmail.com/to@example.com", None),
        ("mailto://smtp.example.com:587/to@example.com", None),
        ("mailto://u:p@example.com?from=a@example.com&to=b@example.com", None),
        ("slack://bot@T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#indexing", None),
    ],
)
def test_a_url_apprise_would_read_otherwise_than_meant_is_named(
    url: str, misread: str | None
) -> None:
    reason = ambiguity(url)
    if misread is None:
        assert reason is None
    else:
        assert reason is not None and misread in reason
        assert "Zq9" not in reason and "ss" not in reason.replace("ssword", "")


@SECRET_PROPERTY
@given(shape=st.sampled_from(URL_SHAPES), secret=SECRETS)
def test_every_secret_part_is_classified_and_never_shown(shape: str, secret: str) -> None:
    """Apprise's view finds the secret; no display of the URL (with apprise or without it)
    shows three characters of it in a row; the lazy candidates would wake the classifier."""
    url = url_with(shape, secret)
    found = url_secrets(url)
    assert secret in found.values or secret.strip() in found.values, (url, found.values)
    assert secret in candidates(url) or secret.strip() in candidates(url)
    assert_no_leak(secret, lambda s: url_secrets(url_with(shape, s)).masked(url_with(shape, s)))
    assert_no_leak(secret, lambda s: mask_url(url_with(shape, s)))


def test_a_shown_url_keeps_what_helps_a_reader_find_the_target() -> None:
    url = "mailto://alerts:pw@smtp.example.com:587?to=ops@example.com&from=w@example.com&x=y"
    assert url_secrets(url).masked(url) == (
        "mailto://****@smtp.example.com:587?to=ops@example.com&from=w@example.com&x=****"
    )


@pytest.mark.parametrize(
    ("url", "loads"),
    [
        ("json://127.0.0.1:8080/alerts", True),
        ("mmost://mattermost.example.com/abcdefghij", True),
        ("mailto://user:pass@example.com", True),
        ("slack://TokenA/TokenB/TokenC/#indexing", True),
        ("ntfy://ntfy.sh/indexing-alerts", True),
        ("notascheme://host", False),
        ("json://", False),
        ("https://example.com/hook", False),  # apprise has no plain https scheme
        ("", False),
        ("indexing alerts", False),
    ],
)
def test_unloadable_names_exactly_the_urls_apprise_cannot_load(url: str, loads: bool) -> None:
    """A route URL is refused exactly when apprise cannot load it as a notification target."""
    assert unloadable([url]) == ([] if loads else [0])


def test_unloadable_gives_the_position_of_each_refused_url() -> None:
    urls = ["json://127.0.0.1:8080/a", "notascheme://host", "ntfy://ntfy.sh/x", "json://"]
    assert unloadable(urls) == [1, 3]

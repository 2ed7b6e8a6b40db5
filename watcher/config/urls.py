"""Apprise URLs as configuration sees them: their parts, which apprise refuses, how to show them.

Route URLs carry credentials, so nothing here ever returns a URL unmasked. A URL is split the
way apprise reads it: `scheme://[user[:password]@]host[:port][/segment...][?key=value&...]`,
where `#` is no fragment mark (apprise keeps `#channel` as a path segment and `tt#x` as a
value) and arguments named `+name`, `:name` and `-name` are headers, payload fields and
request parameters. Which parts are secret comes from `watcher.config.url_secrets` (apprise's
own templates and privacy mode); this module needs no apprise for anything but `unloadable`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import unquote, unquote_plus

from watcher.config.guessed import secret_path
from watcher.core.inert import inert

MASK = "****"
_PLAIN = re.compile(r"[\w .*-]{1,40}")
_DOMAIN = re.compile(r"(?:[a-z0-9-]+\.)+[a-z]{2,63}\.?")
_ARG_NAME = re.compile(r"[+:\-]?[A-Za-z0-9_.\-]{1,40}")
_PIECES = re.compile(r"[/:@?&=#,;+\s]+")
# The generic webhooks: their path holds the secret of services such as Zapier, n8n or Home
# Assistant, though apprise does not say so.
WEBHOOK_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
_PORT = re.compile(r"\d{1,5}")
AUTH_SCHEME = re.compile(r"(?i)(?:bearer|basic|token|digest|apikey|key)\s+(.+)")
# Percent-encode these in a user name or password, or apprise reads the URL differently.
ENCODE_HINT = (
    "percent-encode them in user names and passwords: '@' as %40, '#' as %23, '/' as %2F, "
    "'?' as %3F, '%' as %25"
)


@dataclass(frozen=True, slots=True)
class UrlParts:
    """An apprise URL cut into its parts, each as written (still percent-encoded)."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: str | None
    segments: tuple[str, ...]  # the path between slashes, empty ones kept ("a//b/" has four)
    query: tuple[tuple[str, str], ...]  # (key, value) pairs in order

    @property
    def has_userinfo(self) -> bool:
        return self.user is not None

    @property
    def shown_host(self) -> bool:
        """Whether the host reads as a host name with an optional numeric port (not a token)."""
        return is_host_name(self.host) and (self.port is None or bool(_PORT.fullmatch(self.port)))

    def components(self) -> set[str]:
        """Every part a secret could be, percent-decoded: user, password, host (with its port
        when that is no number: tgram's `123:ABC` bot token), path segments, the whole path,
        query values (and the credential after `Bearer `), whatever follows a `#` in any of
        them."""
        found = {*self.segments, *(value for _, value in self.query)}
        found |= {p for p in (self.user, self.password) if p is not None}
        if not self.shown_host:  # a token in the host's place, perhaps with a colon in it
            found.add(self.host)
            if self.port is not None:
                found |= {self.port, f"{self.host}:{self.port}"}
        if self.segments:
            found.add("/".join(self.segments))
        # what follows a `#` stands alone too: apprise drops a path's fragment (a password
        # cut by a raw `#` ends up there) and keeps `#channel` targets whole
        found |= {part.split("#", 1)[1] for part in found if "#" in part}
        decoded = {unquote(part) for part in found if part}
        decoded |= {unquote_plus(value) for _, value in self.query if value}
        # `Authorization: Bearer <token>` as a header argument: the credential alone too
        return decoded | {m.group(1) for v in decoded if (m := AUTH_SCHEME.match(v))}


def parse_url(url: str) -> UrlParts | None:
    """The parts of an apprise URL, or None when it has no `scheme://`."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not scheme or not scheme.replace("+", "").isalnum():
        return None
    before_query, _, query = rest.partition("?")
    authority, slash, path = before_query.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    user, password = None, None
    if at:
        user, colon, pwd = userinfo.partition(":")
        password = pwd if colon else None
    if hostport.startswith("[") and "]" in hostport:  # an IPv6 address
        end = hostport.index("]") + 1
        host, tail = hostport[:end], hostport[end:]
        port = tail[1:] if tail.startswith(":") else None
    else:
        host, colon, tail = hostport.partition(":")
        port = tail if colon else None
    segments = tuple(path.split("/")) if slash else ()
    pairs = tuple(
        (key, value)
        for key, _, value in (pair.partition("=") for pair in re.split(r"[&;]", query) if pair)
    )
    return UrlParts(scheme.lower(), user, password, host, port, segments, pairs)


def candidates(url: str) -> frozenset[str]:
    """Every string that could be a secret of `url`, apprise or not: its decoded parts and
    their pieces between delimiters. A text holding none of these holds none of the URL's
    secrets, so classifying the URL (which loads apprise) can wait until one shows up.

    A generic webhook's path segment that no guess keeps secret (`watcher.config.guessed`) and
    that is no other part of the URL is left out: `/watcher` must not load apprise for every
    line naming the watcher."""
    parts = parse_url(url)
    whole = parts.components() if parts is not None else {url.strip()}
    found = set(whole)
    for part in whole:
        found |= set(_PIECES.split(part))
    if parts is not None and parts.scheme in WEBHOOK_SCHEMES:
        found -= _plain_segments(parts)
    return frozenset(p.strip() for p in found if p.strip())


def _plain_segments(parts: UrlParts) -> set[str]:
    """The webhook's path segments (and whole path) that no guess keeps secret, less any
    that is also another part of the URL (a password, a query value)."""
    if secret_path(parts.segments):
        return set()
    segments = {unquote(s) for s in parts.segments if s}
    others = replace(parts, segments=()).components()
    return (segments | {unquote("/".join(parts.segments))}) - others


def ambiguity(url: str) -> str | None:
    """Why apprise would read `url` otherwise than meant (a raw `@`, `#`, `/` or `?` in a user
    name or password), or None. Never quotes any part of the URL."""
    _, sep, rest = url.strip().partition("://")
    if not sep:
        return None
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, after = rest[:cut], rest[cut:]
    if authority.count("@") > 1:
        return (
            "has more than one '@' before its host: apprise would read the host from inside "
            "the user name or password"
        )
    stop = min((i for i in (after.find(c) for c in "=&") if i >= 0), default=len(after))
    stray_at = "@" in after[:stop]
    looks_like_login = "@" not in authority and re.search(r":\D", authority) is not None
    if stray_at and (looks_like_login or (after.startswith("#") and "@" in authority)):
        mark = after[0]
        return (
            f"has a raw {mark!r} in its user name or password: apprise would cut the URL there "
            "and read another host"
        )
    return None


def quoted(value: str) -> str:
    """`value` quoted for an error message if it is a short plain word, else a placeholder."""
    return repr(value) if _PLAIN.fullmatch(value) else "this entry"


def unloadable(urls: Sequence[str]) -> list[int]:
    """Positions of the URLs that apprise refuses (unknown scheme or missing parts)."""
    import apprise  # lazy: loading its plugins costs time, and only validation needs it

    from watcher.config.plugins import load_plugins_for

    with apprise_silenced():
        load_plugins_for(urls)  # these schemes' plugins, not all ~190 (see the module)
        return [index for index, url in enumerate(urls) if not apprise.Apprise().add(url)]


def scheme_hint(url: str) -> str:
    """Name the URL's scheme if it has a plausible one; never any other part of it."""
    scheme, sep, _ = url.partition("://")
    if sep and scheme.isascii() and scheme.isalnum() and len(scheme) <= 16:
        return f"scheme {scheme.lower()}://"
    return "no scheme://"


@contextmanager
def apprise_silenced() -> Iterator[None]:
    """Mute apprise's logger, which repeats a rejected URL (credentials and all)."""
    logger = logging.getLogger("apprise")
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was_disabled


def mask_url(
    url: str,
    secrets: frozenset[str] | None = None,
    public_args: frozenset[str] = frozenset(),
) -> str:
    """An apprise URL for display, every secret part replaced by `****`.

    `secrets` are the URL's secret values (decoded), as `url_secrets` finds them; None means
    unknown, and then every part but the scheme and a host name is masked. User info is always
    masked; a host is shown only if it is a domain name, an IP address or localhost; a query
    value only if its key is in `public_args` (arguments apprise declares not private).
    Whatever is shown is made inert; no three characters of a secret survive in a row.
    """
    parts = parse_url(url)
    if parts is None:
        return MASK
    known = secrets if secrets is not None else frozenset(parts.components())
    shown = f"{parts.scheme}://" + (f"{MASK}@" if parts.has_userinfo else "")
    if parts.shown_host and unquote(parts.host) not in known:
        shown += parts.host + (f":{parts.port}" if parts.port else "")
    else:
        shown += MASK
    if parts.segments:
        shown += "/" + "/".join(_segment(s, known, secrets is None) for s in parts.segments)
    if parts.query:
        shown += "?" + "&".join(_arg(k, v, known, public_args) for k, v in parts.query)
    for secret in sorted((s for s in known if len(s) >= 3), key=len, reverse=True):
        shown = shown.replace(secret, MASK)
    return inert(shown)


def _segment(segment: str, secrets: frozenset[str], unknown: bool) -> str:
    if not segment:
        return ""
    if (
        unknown
        or unquote(segment) in secrets
        or not _PLAIN.fullmatch(unquote(segment).lstrip("#@"))
    ):
        return MASK
    return segment


def _arg(key: str, value: str, secrets: frozenset[str], public_args: frozenset[str]) -> str:
    if not _ARG_NAME.fullmatch(key):
        return f"{MASK}={MASK}"
    public = key.lower() in public_args and not key.startswith(("+", ":", "-"))
    if public and unquote_plus(value) not in secrets and unquote(value) not in secrets:
        return f"{key}={value}"
    return f"{key}={MASK}"


def is_host_name(host: str) -> bool:
    """Whether `host` reads as a host (a domain name, an IP address, localhost), not a token."""
    name = host.lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name == "localhost" or bool(_DOMAIN.fullmatch(name))

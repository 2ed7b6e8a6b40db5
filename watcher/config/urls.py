"""Apprise URLs as configuration sees them: which ones apprise cannot load, and how to show them.

Route URLs usually carry credentials, so nothing here ever returns a URL unmasked.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import parse_qsl

MASK = "****"
_PLAIN = re.compile(r"[\w .*-]{1,40}")
_DOMAIN = re.compile(r"(?:[a-z0-9-]+\.)+[a-z]{2,63}\.?")


def quoted(value: str) -> str:
    """`value` quoted for an error message if it is a short plain word, else a placeholder."""
    return repr(value) if _PLAIN.fullmatch(value) else "this entry"


def unloadable(urls: Sequence[str]) -> list[int]:
    """Positions of the URLs that apprise refuses (unknown scheme or missing parts)."""
    import apprise  # lazy: loading its plugins costs time, and only validation needs it

    with _apprise_silenced():
        return [index for index, url in enumerate(urls) if not apprise.Apprise().add(url)]


def scheme_hint(url: str) -> str:
    """Name the URL's scheme if it has a plausible one; never any other part of it."""
    scheme, sep, _ = url.partition("://")
    if sep and scheme.isascii() and scheme.isalnum() and len(scheme) <= 16:
        return f"scheme {scheme.lower()}://"
    return "no scheme://"


@contextmanager
def _apprise_silenced() -> Iterator[None]:
    """Mute apprise's logger, which repeats a rejected URL (credentials and all)."""
    logger = logging.getLogger("apprise")
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was_disabled


def mask_url(url: str) -> str:
    """An apprise URL with everything that may be a credential replaced by `****`.

    Kept: the scheme, a host that is a domain name or an IP address (with its port), query
    keys, and the fragment (apprise puts channel names there). Masked: user info, a host that
    is really a token, the path and every query value.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.isalnum():
        return MASK
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    _, at, host = netloc.rpartition("@")
    shown = f"{scheme.lower()}://" + (f"{MASK}@" if at else "")
    if _is_host(host):
        shown += host + (f"/{MASK}" if path.strip("/") else "")
    else:
        shown += MASK + ("/" if slash else "")
    if query:
        keys = [key for key, _ in parse_qsl(query, keep_blank_values=True)]
        shown += "?" + "&".join(f"{key}={MASK}" for key in keys)
    return shown + (f"#{fragment}" if fragment else "")


def _is_host(netloc: str) -> bool:
    host = netloc.lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host == "localhost" or bool(_DOMAIN.fullmatch(host))

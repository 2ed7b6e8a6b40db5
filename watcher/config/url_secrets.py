"""Which parts of an apprise URL are secret, as apprise itself says, plus what it does not say.

Secret whatever it looks like, for a URL apprise can load:
- every token and argument the plugin's `template_tokens` / `template_args` mark `private`
  (directly, or as an alias of a private token), with the value the plugin parsed for it;
- every part apprise's own `url(privacy=True)` hides that `url(privacy=False)` shows;
- the password of the user info whatever the plugin says, and the user when it stands alone
  (`key@host`: PagerDuty's, Pushover's and ntfy's `user@` hold a key); a user beside a
  password is a login name, masked where the URL is shown but not searched for in free text;
- every query, header, payload or parameter value whose name sounds secret (token, key,
  secret, pass, auth, sig, hook, ...) or that starts with an auth scheme (`Bearer x`);
- whatever follows a `#` that apprise drops (where a password cut by a raw `#` lands).
Secret by guess, and so only when it could be a credential (`watcher.config.guessed`: not when
it reads as words like `watcher` or `alerts`, nor when it is one of the program's own names):
- for the generic webhooks (json, form, xml), every path segment: services such as Zapier,
  n8n or Home Assistant put the webhook's secret there (the whole path too, if one is kept);
- every header (`+name=`), payload (`:name=`) and request parameter (`-name=`) value, and every
  query value the plugin does not know (apprise ignores it, so showing it serves no one);
- every other part apprise ignores.
A URL apprise cannot load is secret in every part but its scheme and a host name.

Loading apprise costs about 0.2 s and 17 MB, and the plugin of the URL's scheme (only that one:
`watcher.config.plugins`) 0.1 s and a few MB more: callers on a hot path classify lazily
(`watcher.core.redact.SecretRegistry.register_lazy`) and only when a text may hold a secret.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from watcher.config.guessed import kept_secret, secret_path
from watcher.config.urls import (
    AUTH_SCHEME,
    WEBHOOK_SCHEMES,
    apprise_silenced,
    mask_url,
    parse_url,
)

# Query argument names that say their value is a credential.
SECRET_NAME = re.compile(
    r"(?i)pass|pwd|token|secret|key|auth|sig|credential|cookie|session|bearer|hook|code"
)
_PREFIXED = ("+", ":", "-")


@dataclass(frozen=True, slots=True)
class UrlSecrets:
    """The secret values of one URL (percent-decoded) and the arguments safe to show."""

    values: frozenset[str]
    public_args: frozenset[str] = frozenset()
    understood: bool = True  # False: apprise could not load the URL; everything is secret

    def masked(self, url: str) -> str:
        """`url` for display with these secrets masked (see `watcher.config.urls.mask_url`)."""
        return mask_url(url, self.values if self.understood else None, self.public_args)


def apprise_loaded() -> bool:
    """Whether apprise's plugins are already in memory, so classifying costs nothing more."""
    manager = sys.modules.get("apprise.manager_plugins")
    if manager is None:
        return False
    # a singleton; `_loaded` holds the plugin directories it has imported
    return bool(getattr(manager.NotificationManager(), "_loaded", None))


def url_secrets(url: str) -> UrlSecrets:
    """Classify `url`'s parts with apprise (loading its plugins if need be)."""
    import apprise  # lazy: 0.35 s of plugins; see the module docstring

    from watcher.config.plugins import load_plugins_for

    parts = parse_url(url)
    with apprise_silenced():
        load_plugins_for([url])
        plugin: Any = apprise.Apprise.instantiate(url) if parts is not None else None
    if plugin is None or parts is None:
        everything = parts.components() if parts is not None else {url.strip()}
        return UrlSecrets(frozenset(v for v in everything if v), understood=False)
    cls = type(plugin)
    with apprise_silenced():
        parsed = cls.parse_url(url) or {}
        shown, hidden = str(plugin.url(privacy=False)), str(plugin.url(privacy=True))
    public = _public_args(cls.template_args, cls.template_tokens)
    firm = _private_values(plugin, parsed) | {parts.password or parts.user or ""}
    guessed: set[str] = set()
    for key, value in parts.query:
        # `Authorization: Bearer <token>`: the credential after the scheme word alone too
        if scheme := AUTH_SCHEME.match(unquote(value)):
            firm |= {value, scheme.group(1)}
        elif SECRET_NAME.search(key):
            firm.add(value)
        elif key.startswith(_PREFIXED) or key.lower() not in public:
            guessed.add(value)
    if parts.scheme in WEBHOOK_SCHEMES:
        segments = {s for s in parts.segments if s}
        guessed |= segments
        if secret_path(segments):
            firm.add("/".join(parts.segments))
    shown, hidden = unquote(shown), unquote(hidden)
    components = parts.components()
    after_hash = {p.split("#", 1)[1] for p in components if "#" in p}
    for part in components:
        if part in shown and part not in hidden:  # masked by apprise
            firm.add(part)
        elif part.lower() not in shown.lower():  # ignored by apprise: a dropped fragment...
            (firm if "#" in part or part in after_hash else guessed).add(part)
    values = firm | {v for v in guessed if kept_secret(v)}
    decoded = {unquote(v) for v in values if v} | {v for v in values if v}
    return UrlSecrets(frozenset(v for v in decoded if v), frozenset(public))


def _public_args(args: Mapping[str, Any], tokens: Mapping[str, Any]) -> set[str]:
    """Argument names the plugin declares and does not mark private (nor alias to private)."""
    public = set()
    for name, spec in args.items():
        if not _is_private(spec, tokens) and not SECRET_NAME.search(name):
            public.add(name.lower())
    return public


def _is_private(spec: Mapping[str, Any], tokens: Mapping[str, Any]) -> bool:
    if spec.get("private"):
        return True
    aliases = spec.get("alias_of") or ()
    for alias in (aliases,) if isinstance(aliases, str) else aliases:
        if tokens.get(alias, {}).get("private"):
            return True
    return False


def _private_values(plugin: Any, parsed: Mapping[str, Any]) -> set[str]:
    """The values the plugin parsed for every private token or argument."""
    cls = type(plugin)
    tokens = cls.template_tokens
    found: set[str] = set()
    for name, spec in {**tokens, **cls.template_args}.items():
        if not _is_private(spec, tokens):
            continue
        names = {name, spec.get("map_to")}
        aliases = spec.get("alias_of") or ()
        names |= {aliases} if isinstance(aliases, str) else set(aliases)
        for key in filter(None, names):
            found |= _strings(parsed.get(key)) | _strings(getattr(plugin, key, None))
    return found


def _strings(value: object) -> set[str]:
    """Every string inside a parsed value (a string, a number, a list or a dict of them)."""
    if isinstance(value, str):
        return {value} if value else set()
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, int | float):
        return {str(value)}
    if isinstance(value, Mapping):
        return {s for item in value.values() for s in _strings(item)}
    if isinstance(value, Iterable):
        return {s for item in value for s in _strings(item)}
    return set()

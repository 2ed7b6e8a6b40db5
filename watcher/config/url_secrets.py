"""Which parts of an apprise URL are secret, as apprise itself says, plus what it does not say.

Secret, for a URL apprise can load:
- every token and argument the plugin's `template_tokens` / `template_args` mark `private`
  (directly, or as an alias of a private token), with the value the plugin parsed for it;
- every part apprise's own `url(privacy=True)` hides that `url(privacy=False)` shows;
- the password of the user info whatever the plugin says, and the user when it stands alone
  (`key@host`: PagerDuty's, Pushover's and ntfy's `user@` hold a key); a user beside a
  password is a login name, masked where the URL is shown but not searched for in free text;
- every header (`+name=`), payload (`:name=`) and request parameter (`-name=`) value;
- every query value whose name sounds secret (token, key, secret, pass, auth, sig, ...) or
  that the plugin does not know at all (apprise ignores it, so showing it serves no one);
- for the generic webhooks (json, form, xml), every path segment: services such as Zapier,
  n8n or Home Assistant put the webhook's secret there;
- every part apprise ignores (a path's `#fragment`, where a password cut by a raw `#` lands).
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

from watcher.config.urls import AUTH_SCHEME, apprise_silenced, mask_url, parse_url

# Query argument names that say their value is a credential.
SECRET_NAME = re.compile(
    r"(?i)pass|pwd|token|secret|key|auth|sig|credential|cookie|session|bearer|hook|code"
)
WEBHOOK_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
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
    values = _private_values(plugin, parsed) | {parts.password or parts.user or ""}
    for key, value in parts.query:
        if key.startswith(_PREFIXED) or key.lower() not in public or SECRET_NAME.search(key):
            values.add(value)
            # `Authorization: Bearer <token>`: the credential after the scheme word alone too
            if scheme := AUTH_SCHEME.match(unquote(value)):
                values.add(scheme.group(1))
    if parts.scheme in WEBHOOK_SCHEMES:
        values |= {s for s in parts.segments if s} | {"/".join(parts.segments)}
    decoded = {unquote(v) for v in values if v} | {v for v in values if v}
    shown, hidden = unquote(shown), unquote(hidden)
    for part in parts.components():
        masked_by_apprise = part in shown and part not in hidden
        ignored_by_apprise = part.lower() not in shown.lower()  # a dropped fragment
        if masked_by_apprise or ignored_by_apprise:
            decoded.add(part)
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

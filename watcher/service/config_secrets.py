"""The configuration's secrets registered with `SECRETS` before anything can print them.

Kept apart from `watcher.service.runtime` so that every command, `watcher health` (every 30 s
in containers) and `status` included, registers them without importing the HTTP client, the
metrics and the cycle. Apprise stays unloaded unless it is loaded anyway (see
`register_url_secrets`).
"""

from __future__ import annotations

import base64
from functools import partial
from urllib.parse import urlsplit

from watcher.config import Config
from watcher.config.guessed import program_names, secret_path
from watcher.config.url_secrets import apprise_loaded, url_secrets
from watcher.config.urls import candidates
from watcher.core.redact import SECRETS

__all__ = [
    "public_names",
    "register_config_secrets",
    "register_ping_urls",
    "register_url_secrets",
    "route_urls",
]


def route_urls(config: Config) -> dict[str, list[str]]:
    """Route name to its URLs, unwrapped: only the notifier may hold them."""
    return {r.name: [u.get_secret_value() for u in r.urls] for r in config.routes}


def register_config_secrets(config: Config) -> None:
    """Register the token and every route URL with `SECRETS`, and each URL's secret parts.

    A URL's parts are classified by apprise: at once when apprise is loaded anyway (`run`,
    `check-config`, `test-notify`), else only when a text to redact holds one of the URL's
    candidate pieces (`status`, `health` and `once` then stay free of apprise).
    """
    SECRETS.declare_public(public_names(config))
    SECRETS.reserve(program_names)
    if config.token is not None:
        SECRETS.register(config.token.get_secret_value())
    for _, token, _ in config.account_tokens:  # every [[accounts]] entry's
        if token is not None:
            SECRETS.register(token.get_secret_value())
    if config.state.url is not None:
        state_url = config.state.url.get_secret_value()
        SECRETS.register(state_url)
        if urlsplit(state_url).password:
            SECRETS.register(str(urlsplit(state_url).password))
    for urls in route_urls(config).values():
        for url in urls:
            register_url_secrets(url)
    register_ping_urls(config)
    for r in config.routes:
        for key in r.signing_keys:
            SECRETS.register(base64.b64encode(key).decode("ascii"))


def public_names(config: Config) -> set[str]:
    """The names the config declares for people: accounts', routes' and knowledge bases'."""
    accounts = config.account_list()
    names = {a.name for a in accounts} | {r.name for r in config.routes}
    return names | {k.name for a in accounts for k in a.knowledge_bases if k.name}


def register_ping_urls(config: Config) -> None:
    """Register the heartbeat's URLs whole and their paths (a healthchecks.io uuid, a push
    token): whoever holds one can ping the check, or keep it quiet. A path is a secret by
    guess: registered when one of its segments could be a credential, not when it reads as
    words (`watcher.config.guessed`: `/watcher` would mask the word in every line)."""
    plan = config.heartbeat.plan()
    if plan is None:
        return
    for url in (plan.url, plan.failure_url):
        if not url:
            continue
        parts = urlsplit(url)
        path = parts.path.strip("/")
        if secret_path(path.split("/")):
            SECRETS.register(path)
            SECRETS.register(url)
        elif parts.password or parts.query or parts.username:
            SECRETS.register(url)  # a key in its query or its user part: masked whole


def register_url_secrets(url: str) -> None:
    """Register one apprise URL's secret parts and, when it has any, the URL whole (classified
    now if apprise is loaded, else once a text holds one of its candidate pieces). A URL none
    of whose parts is a secret (`json://host/hooks/alerts`) is none either: shown as written."""
    SECRETS.register_lazy(url, candidates(url), partial(_secret_values, url))
    if apprise_loaded():
        SECRETS.resolve_pending()


def _secret_values(url: str) -> frozenset[str]:
    """The URL's secret parts, and the URL itself when there is one (a text holding the whole
    URL holds its parts too: the same candidates find it)."""
    values = url_secrets(url).values
    return values | {url} if values else values

"""Which CA bundle every HTTPS connection trusts: `[http] ca_bundle`, else the environment.

The API client (httpx) and apprise (requests) read different variables (`SSL_CERT_FILE`
and `REQUESTS_CA_BUNDLE`), so behind a TLS-inspecting proxy setting one of them used to fix
one side only. The watcher resolves one bundle and gives it to both: `http.ca_bundle` in the
configuration, else `SSL_CERT_FILE`, else `REQUESTS_CA_BUNDLE`, else `CURL_CA_BUNDLE`; none
means each library's default trust store. The file must hold at least one PEM certificate.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path

from watcher.config.sections import HttpConfig
from watcher.core.errors import ConfigProblem

CA_ENVS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
KEY = "http.ca_bundle"


def resolve_ca_bundle(
    http: HttpConfig | None, env: Mapping[str, str], file_source: str
) -> tuple[Path | None, str | None, list[ConfigProblem]]:
    """The bundle, where it came from (the file or the variable), and any problem with it."""
    if http is not None and http.ca_bundle is not None:
        path, source = http.ca_bundle.expanduser(), file_source
    else:
        name = next((n for n in CA_ENVS if env.get(n, "").strip()), None)
        if name is None:
            return None, None, []
        path, source = Path(env[name].strip()).expanduser(), f"environment variable {name}"
    problem = check_bundle(path)
    if problem is not None:
        return None, None, [ConfigProblem(KEY, problem, source)]
    return path, source, []


# The context `check_bundle` built, by the file's identity when it was read: handed over once,
# to the first client that trusts the same file unchanged (`verify_context`), so a process that
# checks its configuration and then polls (`watcher once`) reads the bundle once, not twice
# (each read of a system bundle is 20-25 ms of CPU). Never shared by two clients: httpcore sets
# ALPN protocols on the context it is given.
_checked: dict[tuple[str, int, int, int, int], ssl.SSLContext] = {}


def check_bundle(path: Path) -> str | None:
    """Why `path` is not a usable CA bundle, or None when it is."""
    if not path.is_file():
        return f"CA bundle {path} does not exist or is not a file"
    identity = _identity(path)
    try:
        context = ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        return f"CA bundle {path} cannot be read as PEM certificates: {reason}"
    # counted, not decoded: `get_ca_certs()` made a dict of each of a system bundle's ~140
    if not context.cert_store_stats()["x509_ca"]:
        return f"CA bundle {path} holds no CA certificate"
    _checked.clear()
    if identity is not None:
        _checked[identity] = context
    return None


def verify_context(path: Path | None) -> ssl.SSLContext | bool:
    """What the API client passes as `verify`: a context trusting `path`, or the default."""
    if path is None:
        return True
    identity = _identity(path)
    checked = _checked.pop(identity, None) if identity is not None else None
    return checked if checked is not None else ssl.create_default_context(cafile=str(path))


def _identity(path: Path) -> tuple[str, int, int, int, int] | None:
    """The file as it is now (any change of it gives another), None when it cannot be read."""
    try:
        found = path.stat()
    except OSError:
        return None
    return (str(path), found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)

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


def check_bundle(path: Path) -> str | None:
    """Why `path` is not a usable CA bundle, or None when it is."""
    if not path.is_file():
        return f"CA bundle {path} does not exist or is not a file"
    try:
        context = ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        return f"CA bundle {path} cannot be read as PEM certificates: {reason}"
    if not context.get_ca_certs():
        return f"CA bundle {path} holds no CA certificate"
    return None


def verify_context(path: Path | None) -> ssl.SSLContext | bool:
    """What the API client passes as `verify`: a context trusting `path`, or the default."""
    return ssl.create_default_context(cafile=str(path)) if path is not None else True

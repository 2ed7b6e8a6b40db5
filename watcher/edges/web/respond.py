"""Answers on their way out: JSON, HTML and text, each redacted (`SECRETS`) and never cached."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from watcher.core.redact import SECRETS


def refusal(request: Request, status: int, reason: str) -> Response:
    """An error answer in the format the request wants: JSON for the API, else plain text."""
    headers = {"cache-control": "no-store"}
    if status == 401:
        challenge = 'Bearer realm="gradient-watcher"'
        if not request.url.path.startswith("/api/"):
            challenge += ', Basic realm="gradient-watcher", charset="UTF-8"'
        headers["www-authenticate"] = challenge
    if request.url.path.startswith("/api/"):
        return json_response({"error": reason}, status, headers)
    return Response(f"{status}: {reason}\n", status, headers, "text/plain; charset=utf-8")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer, redacted on its way out, never cached.

    The text is redacted once, whole: a secret is masked in its JSON-escaped form too
    (`watcher.core.redact.secret_forms`), and walking every value of a thousand knowledge
    bases would cost seconds.
    """
    text = SECRETS.redact(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
    return Response(
        text.encode() + b"\n",
        status,
        {"cache-control": "no-store", **(headers or {})},
        "application/json",
    )


def html_response(page: str, status: int = 200) -> Response:
    """An HTML page, redacted on its way out, never cached."""
    return Response(
        SECRETS.redact(page), status, {"cache-control": "no-store"}, "text/html; charset=utf-8"
    )


def text_response(words: str, status: int) -> Response:
    """A plain-text answer, redacted, never cached."""
    return Response(
        SECRETS.redact(words) + "\n",
        status,
        {"cache-control": "no-store"},
        "text/plain; charset=utf-8",
    )

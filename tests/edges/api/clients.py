"""Building `ApiSettings` for tests from flat overrides (`max_attempts=3, per_page=2`)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from watcher.edges.api.settings import ApiSettings, RequestRetry

_RETRY = {f.name for f in fields(RequestRetry)}
COLLABORATORS = ("transport", "sleep", "monotonic", "wall_clock", "rng", "on_response")


def settings(base_url: str, **overrides: Any) -> ApiSettings:
    """Settings for `base_url`; retry fields (`max_attempts`...) go into `retry`."""
    retry = {k: overrides.pop(k) for k in list(overrides) if k in _RETRY}
    return ApiSettings(base_url, retry=RequestRetry(**retry), **overrides)


def split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(setting overrides, collaborators) from one dict of keyword arguments."""
    collaborators = {k: options.pop(k) for k in list(options) if k in COLLABORATORS}
    return options, collaborators

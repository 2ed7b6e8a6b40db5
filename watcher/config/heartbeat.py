"""`[heartbeat]`: the dead man's switch, pinged after each cycle (off unless `url` is set).

A ping URL is a secret (whoever has it can ping, or silence, the check): both URLs are
`SecretStr`, registered with the redaction registry at load, and shown masked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BeforeValidator, SecretStr, field_validator, model_validator

from watcher.config.sections import Duration, Section, is_loopback_host
from watcher.core.pings import HeartbeatPlan, PingMethod


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def check_ping_url(text: str) -> str:
    """An http(s) URL with a host; http only for loopback hosts (the URL is a secret)."""
    text = text.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an https:// URL with a host, e.g. https://hc-ping.com/<uuid>")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(
            "http:// is only allowed for loopback hosts: the ping URL is a secret, use https://"
        )
    return text


class HeartbeatConfig(Section):
    """`[heartbeat]`: ping `url` after each successful cycle and the failure URL after a
    failed one (`fail_url`; by default `url` + `/fail`; "" for none), with `method`
    (GET, or POST with a one-line summary), each ping within `timeout`."""

    url: SecretStr | None = None
    fail_url: SecretStr | None = None
    method: Annotated[PingMethod, BeforeValidator(_upper)] = PingMethod.GET
    timeout: Duration = timedelta(seconds=10)

    @field_validator("url", mode="before")
    @classmethod
    def _blank_url_is_off(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(check_ping_url(value.get_secret_value()))

    @field_validator("fail_url")
    @classmethod
    def _check_fail_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return value if value is None else SecretStr("")
        return SecretStr(check_ping_url(value.get_secret_value()))

    @model_validator(mode="after")
    def _fail_url_needs_url(self) -> HeartbeatConfig:
        if self.url is None and self.fail_url is not None:
            raise ValueError("fail_url is set but url is not: set url to turn the heartbeat on")
        return self

    def plan(self) -> HeartbeatPlan | None:
        """The core's plan, or None when the heartbeat is off."""
        if self.url is None:
            return None
        fail = self.fail_url.get_secret_value() if self.fail_url is not None else None
        return HeartbeatPlan(self.url.get_secret_value(), fail, self.method, self.timeout)

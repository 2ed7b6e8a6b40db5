"""The configuration sections: one frozen, strict pydantic model per TOML table.

Field rules live here; rules that span fields or sections live in `watcher.config.checks`.
Validation messages never repeat the input, so a secret typed in the wrong place stays hidden.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from watcher.config.preflight import Preflight, check_listen, state_path_problem
from watcher.core.durations import parse_duration
from watcher.core.model import WatchedKb
from watcher.core.tolerance import ItemTolerance, parse_tolerance

DEFAULT_BASE_URL = "https://api.digitalocean.com"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63})*\.?"
)


def _positive(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    if value == timedelta(0):
        raise ValueError("must be longer than zero")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


def _share(value: object) -> object:
    """`"10%"` as 0.1; a number is taken as a fraction."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError('must be a percentage like "10%" or a fraction like 0.1') from None
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
DurationOrZero = Annotated[
    timedelta, BeforeValidator(parse_duration), AfterValidator(_not_negative)
]
# `tolerate_failed_items`: 10 (failed items) or "1%" (of the job's items).
Tolerance = Annotated[ItemTolerance, PlainValidator(parse_tolerance)]


def is_uuid(text: str) -> bool:
    """Whether `text` is a uuid in its canonical 36-character form (any case)."""
    return bool(_UUID.fullmatch(text.strip().lower()))


def is_loopback_host(host: str) -> bool:
    """Whether `host` is localhost, 127.0.0.0/8 or ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Section(BaseModel):
    """Base of every section: frozen, unknown keys refused, inputs kept out of error texts."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ApiConfig(Section):
    """`[api]`: where the API is, how long to wait, how politely to use the rate limit, and
    how much of an answer to take.

    `timeout` bounds one request whole (connect, headers and every byte of the body);
    `max_response_size` the bytes of one answer (as `16MiB`, `500kB` or bytes); and
    `max_list_items` the items one read of a list may hold. Past either cap the read fails.
    """

    base_url: str = DEFAULT_BASE_URL
    timeout: Duration = timedelta(seconds=30)
    token_file: Path | None = None
    max_requests_per_minute: int = Field(default=60, ge=1, le=250)
    reserve: int = Field(default=500, ge=0, le=4500)
    per_page: int = Field(default=200, ge=1, le=200)
    max_response_size: Annotated[ByteSize, Field(ge=64 * 1024, le=1024**3)] = ByteSize(
        16 * 1024 * 1024
    )
    max_list_items: int = Field(default=20_000, ge=200, le=1_000_000)
    # The share of the watcher's own hourly ceiling (max_requests_per_minute × 60) the extra
    # reads may spend (data sources, database health, agents): "10%" or 0.1; 0 turns them off.
    extra_reads_share: Annotated[float, BeforeValidator(_share), Field(ge=0.0, le=0.5)] = 0.1

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an https:// URL with a host, e.g. " + DEFAULT_BASE_URL)
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not contain credentials; the token goes elsewhere")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        try:
            parts.port  # noqa: B018 - evaluated to validate the port
        except ValueError:
            raise ValueError("has an invalid port") from None
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(
                "http:// is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost); "
                "use https://"
            )
        return value.strip().rstrip("/")

    @field_validator("token_file", mode="before")
    @classmethod
    def _blank_token_file_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class PollConfig(Section):
    """`[poll]`: how often to read the API, faster while a job is pending or running, and how
    long one cycle may read the API before it ends as a failed read (`cycle_deadline`)."""

    interval: Duration = timedelta(seconds=60)
    active_interval: Duration = timedelta(seconds=15)
    jitter: DurationOrZero = timedelta(seconds=2)
    cycle_deadline: Duration = timedelta(seconds=60)

    @model_validator(mode="before")
    @classmethod
    def _scale_defaults(cls, data: Any) -> Any:
        """Default active_interval to at most interval, and jitter to at most half of it."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        try:
            interval = parse_duration(data.get("interval", "60s"))
            if "active_interval" not in data and interval > timedelta(0):
                data["active_interval"] = min(interval, timedelta(seconds=15))
            active = parse_duration(data.get("active_interval", "15s"))
            if "jitter" not in data and active > timedelta(0):
                data["jitter"] = min(active / 2, timedelta(seconds=2))
        except ValueError:
            pass  # the field validators report the bad value with its key
        return data


class KnowledgeBaseConfig(Section):
    """`[[knowledge_bases]]`: one knowledge base to watch, by uuid, with an optional name, and
    optionally its own error budget (`tolerate_failed_items`, over `alerts.`'s)."""

    uuid: str
    name: str | None = None
    tolerate_failed_items: Tolerance | None = None
    fresh_within: Duration | None = None  # over `[freshness] fresh_within`

    @field_validator("uuid")
    @classmethod
    def _check_uuid(cls, value: str) -> str:
        value = value.strip().lower()
        if not is_uuid(value):
            raise ValueError("must be a knowledge base uuid like 9f3c1b2a-…-…-…-… (36 characters)")
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty (leave it out to use the API's name)")
        return value.strip() if value is not None else None

    def as_watched(self) -> WatchedKb:
        """This entry as the domain's WatchedKb."""
        return WatchedKb(uuid=self.uuid, name=self.name)


class StallConfig(Section):
    """`[stall]`: when a pending or running job counts as stalled."""

    no_progress_after: Duration = timedelta(minutes=30)
    pending_after: Duration = timedelta(minutes=20)
    max_runtime: Duration = timedelta(hours=6)


class StateConfig(Section):
    """`[state]`: the store (the SQLite file `path`, or the PostgreSQL database `url` shared by
    several replicas), how long finished history is kept, and the leases on a shared store:
    `lease` is how long a replica polls a token unrenewed (failover time after a kill),
    `claim_lease` how long an outbox claim lasts before another replica may send it (longer
    than a whole send: `delivery.timeout`)."""

    url: SecretStr | None = None  # before `path`: the path is not checked when a URL is set
    path: Path = Path("watcher.db")
    retention: Duration = timedelta(days=90)
    lease: Duration = timedelta(seconds=30)
    claim_lease: Duration = timedelta(minutes=5)

    @field_validator("url")
    @classmethod
    def _postgres(cls, value: SecretStr | None) -> SecretStr | None:
        """A libpq URL (`postgresql://user:password@host:port/dbname?sslmode=require`)."""
        if value is None:
            return None
        parts = urlsplit(value.get_secret_value().strip())
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(
                "must be a PostgreSQL URL, postgresql://USER@HOST:PORT/DATABASE with the "
                "password after the user (leave it out to keep the SQLite file state.path)"
            )
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("must name a host and a database: postgresql://USER@HOST/DATABASE")
        _check_libpq(value.get_secret_value().strip())
        return SecretStr(value.get_secret_value().strip())

    def where(self) -> str:
        """The store for people: the file, or `user@host:port/dbname (PostgreSQL)`; never a
        password."""
        if self.url is None:
            return str(self.path)
        parts = urlsplit(self.url.get_secret_value())
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return f"{user}{parts.hostname}{port}{parts.path} (PostgreSQL)"

    @property
    def shared(self) -> bool:
        """Whether the store is a database several replicas share (`url` set)."""
        return self.url is not None

    @field_validator("path", mode="before")
    @classmethod
    def _not_blank(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("path")
    @classmethod
    def _usable(cls, value: Path, info: ValidationInfo) -> Path:
        """When asked (`Preflight.STATE_PATH`): the store can be created or opened there."""
        if Preflight.STATE_PATH in Preflight.of(info.context) and not info.data.get("url"):
            problem = state_path_problem(value)
            if problem is not None:
                raise ValueError(problem)
        return value


class DeliveryConfig(Section):
    """`[delivery]`: retry backoff, dead-lettering, grouping, the per-send deadline and pace.

    `timeout` bounds a whole send to one URL (connect, request, the complete answer);
    `send_interval` is the least time between two messages to one URL ("0s": no pacing).
    """

    retry_base: Duration = timedelta(seconds=30)
    retry_max: Duration = timedelta(minutes=30)
    dead_after: Duration = timedelta(hours=24)
    storm_threshold: int = Field(default=5, ge=1)
    timeout: Duration = timedelta(seconds=30)
    send_interval: DurationOrZero = timedelta(seconds=1)


class AlertsConfig(Section):
    """`[alerts]`: thresholds for the watcher's own alerts, and the error budget of every
    knowledge base without its own (`tolerate_failed_items`: a partial job within it is
    reported as completed, with a note)."""

    api_unreachable_after: DurationOrZero = timedelta(minutes=10)
    delivery_failing_after: DurationOrZero = timedelta(minutes=10)
    tolerate_failed_items: Tolerance | None = None


class SchedulesConfig(Section):
    """`[schedules]`: how long after a KB's scheduled run (`next_run_at`, DigitalOcean's clock)
    a new job may take before `schedule_missed`, and how often each schedule is read."""

    grace: Duration = timedelta(minutes=30)
    read_every: Duration = timedelta(hours=1)

    @field_validator("read_every")
    @classmethod
    def _not_too_often(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=5):
            raise ValueError("must be at least 5m (each read is a request to the API)")
        return value


class FreshnessConfig(Section):
    """`[freshness]`: `fresh_within` for every knowledge base without its own; unset, each KB
    with an active schedule gets its longest gap between runs plus 2h, and others none."""

    fresh_within: Duration | None = None


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class LogConfig(Section):
    """`[log]`: level and format (auto = JSON when stderr, where logs go, is not a terminal)."""

    level: Annotated[LogLevel, BeforeValidator(_lower)] = LogLevel.INFO
    format: Annotated[LogFormat, BeforeValidator(_lower)] = LogFormat.AUTO


def split_host_port(listen: str) -> tuple[str, int]:
    """Split `host:port` (`[::1]:9187` for IPv6); raise ValueError when it is not that."""
    host, sep, port_text = listen.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError("must be host:port, e.g. 127.0.0.1:9187 or [::1]:9187")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host.lower()):
            raise ValueError("has a host that is neither an IP address nor a hostname") from None
    return host, int(port_text)


class HttpConfig(Section):
    """`[http]`: the optional page, JSON API, health and metrics endpoint (off unless `listen`
    is set), its access token and connection limit, and the CA bundle trusted by every HTTPS
    connection (API and alerts)."""

    listen: str | None = None
    ca_bundle: Path | None = None
    auth_token_file: Path | None = None
    max_connections: int = Field(default=64, ge=4, le=4096)

    @field_validator("ca_bundle", "auth_token_file", mode="before")
    @classmethod
    def _blank_ca_bundle_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str | None, info: ValidationInfo) -> str | None:
        """host:port; when asked (`Preflight.LISTEN`), one this user can bind right now."""
        if value is None or not value.strip():
            return None
        host, port = split_host_port(value)
        if Preflight.LISTEN in Preflight.of(info.context):
            problem = check_listen(host, port).problem
            if problem is not None:
                raise ValueError(problem)
        return value.strip()

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to listen on, or None when the endpoint is off."""
        return split_host_port(self.listen) if self.listen else None


def _check_libpq(url: str) -> None:
    """Refuse what libpq cannot read (a port out of range, an unknown query parameter) here,
    by key, instead of as a crash at the first connection; the message never holds the
    password (libpq's names the parameter alone)."""
    try:
        port = urlsplit(url).port
    except ValueError:
        raise ValueError("must have a port from 1 to 65535") from None
    if port == 0:
        raise ValueError("must have a port from 1 to 65535")
    import psycopg  # lazy: 130 modules, for a `state.url` only (`health` probes every 30 s)
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"is not a URL libpq reads: {exc}") from None

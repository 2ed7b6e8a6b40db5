"""The watcher's configuration: a strict TOML file, `WATCHER_` overrides and the API token.

    load_config(path, env) -> Config      read + override + validate; raises ConfigError
    resolve_config_path(cli_value, env)   --config, else $WATCHER_CONFIG, else ./watcher.toml
    describe(config) -> str               what was loaded, secrets masked
    Config.from_mapping(data, token=...)  the same validation for a config built in code

Modules: `sections` (one model per table), `routes` ([[routes]]), `tree` (Config),
`checks` (cross-section rules), `build` (validation into problems), `env` (overrides),
`load` (file and token), `urls` (apprise URL checks and masking), `preflight` (the state path
and listen address on this machine), `describe`.
"""

from watcher.config.describe import describe, mask_token
from watcher.config.env import RESERVED_ENV
from watcher.config.load import TOKEN_ENVS, load_config, resolve_config_path
from watcher.config.preflight import Preflight
from watcher.config.routes import ALL_KBS, DEFAULT_EVENTS, RouteConfig
from watcher.config.sections import (
    DEFAULT_BASE_URL,
    AlertsConfig,
    ApiConfig,
    DeliveryConfig,
    HttpConfig,
    KnowledgeBaseConfig,
    LogConfig,
    LogFormat,
    LogLevel,
    PollConfig,
    StallConfig,
    StateConfig,
    is_loopback_host,
)
from watcher.config.tree import Config
from watcher.config.urls import mask_url

__all__ = [
    "ALL_KBS",
    "DEFAULT_BASE_URL",
    "DEFAULT_EVENTS",
    "RESERVED_ENV",
    "TOKEN_ENVS",
    "AlertsConfig",
    "ApiConfig",
    "Config",
    "DeliveryConfig",
    "HttpConfig",
    "KnowledgeBaseConfig",
    "LogConfig",
    "LogFormat",
    "LogLevel",
    "PollConfig",
    "Preflight",
    "RouteConfig",
    "StallConfig",
    "StateConfig",
    "describe",
    "is_loopback_host",
    "load_config",
    "mask_token",
    "mask_url",
    "resolve_config_path",
]

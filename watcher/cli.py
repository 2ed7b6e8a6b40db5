"""The `watcher` command line: each command parses its options and delegates to the package.

Commands that need the configuration take `@config_option` and call `load_or_exit`, which
prints every configuration problem to stderr and exits with `EXIT_CONFIG` (2).
"""

from __future__ import annotations

import os
import sys

import click

from watcher.config import Config, describe, load_config, resolve_config_path
from watcher.errors import ConfigError

EXIT_CONFIG = 2

config_option = click.option(
    "--config",
    "config_path",
    metavar="PATH",
    default=None,
    help="Configuration file [default: $WATCHER_CONFIG, else ./watcher.toml].",
)


def load_or_exit(config_path: str | None, *, require_token: bool = True) -> Config:
    """Load the configuration, or print each problem (`file: key: why`) to stderr and exit 2."""
    path = resolve_config_path(config_path, os.environ)
    try:
        return load_config(path, os.environ, require_token=require_token)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_CONFIG)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gradient-watcher", prog_name="watcher")
def main() -> None:
    """Watch DigitalOcean knowledge-base indexing jobs and alert through apprise."""


@main.command("check-config")
@config_option
def check_config(config_path: str | None) -> None:
    """Validate the configuration without running: exit 0 if valid, 2 listing every problem."""
    click.echo(describe(load_or_exit(config_path)))

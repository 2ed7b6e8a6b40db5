"""The `watcher` command line: each command parses its options and delegates to the package.

Commands that need the configuration take `@config_option` and call `load_or_exit`, which
prints every configuration problem to stderr and exits with `EXIT_CONFIG` (2).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import click

from watcher.config import Config, describe, load_config, resolve_config_path
from watcher.errors import ConfigError, WatcherError
from watcher.logs import configure_logging

EXIT_CONFIG = 2
EX_CONFIG = 78  # sysexits: what systemd users expect from a daemon with a bad configuration
EX_SOFTWARE = 1

config_option = click.option(
    "--config",
    "config_path",
    metavar="PATH",
    default=None,
    help="Configuration file [default: $WATCHER_CONFIG, else ./watcher.toml].",
)


log_level_option = click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default=None,
    help="Override log.level from the configuration.",
)


def load_or_exit(
    config_path: str | None,
    *,
    require_token: bool = True,
    exit_code: int = EXIT_CONFIG,
    check_urls: bool = True,
) -> Config:
    """Load the configuration, or print each problem (`file: key: why`) to stderr and exit."""
    path = resolve_config_path(config_path, os.environ)
    try:
        config = load_config(path, os.environ, require_token=require_token, check_urls=check_urls)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(exit_code)
    _register_secrets(config)
    return config


def _register_secrets(config: Config) -> None:
    from watcher.runtime import register_config_secrets

    register_config_secrets(config)


def start_logging(config: Config, log_level: str | None) -> None:
    """Configure logs once, from the config unless --log-level overrides it."""
    configure_logging(log_level or config.log.level.value, config.log.format.value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gradient-watcher", prog_name="watcher")
def main() -> None:
    """Watch DigitalOcean knowledge-base indexing jobs and alert through apprise."""


@main.command("check-config")
@config_option
def check_config(config_path: str | None) -> None:
    """Validate the configuration without running: exit 0 if valid, 2 listing every problem."""
    click.echo(describe(load_or_exit(config_path)))


@main.command()
@config_option
@log_level_option
def run(config_path: str | None, log_level: str | None) -> None:
    """Run the daemon: poll on a schedule until SIGTERM/SIGINT (exit 78 on a bad config)."""
    from watcher.daemon import run_daemon

    config = load_or_exit(config_path, exit_code=EX_CONFIG)
    start_logging(config, log_level)
    path = resolve_config_path(config_path, os.environ)
    sys.exit(_guarded(lambda: run_daemon(config, path, dict(os.environ))))


@main.command()
@config_option
@log_level_option
def once(config_path: str | None, log_level: str | None) -> None:
    """One poll cycle plus delivery of what is due, then exit (0 when the cycle ran)."""
    from watcher.commands import run_once

    # Route URLs are checked by `check-config` and `run`; a one-shot skips loading apprise's
    # plugins unless it has something to send (a bad URL then fails its delivery, visibly).
    config = load_or_exit(config_path, exit_code=EX_CONFIG, check_urls=False)
    start_logging(config, log_level)

    async def cycle() -> int:
        report = await run_once(config)
        if not report.ok:
            click.echo(f"cycle failed: {report.error}", err=True)
        return 0 if report.ok else EX_SOFTWARE

    sys.exit(_guarded(cycle))


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(config_path: str | None, as_json: bool) -> None:
    """What the store knows: each KB, its latest job, state, progress, age, undelivered alerts."""
    from watcher.commands import read_status

    config = load_or_exit(config_path, require_token=False, exit_code=EX_CONFIG, check_urls=False)
    configure_logging("warning", "auto")
    sys.exit(_guarded(lambda: read_status(config, as_json=as_json, echo=click.echo)))


@main.command("test-notify")
@config_option
@click.option("--route", default=None, metavar="NAME", help="Only this route.")
def test_notify(config_path: str | None, route: str | None) -> None:
    """Send a test alert through the real delivery path to every route (or one)."""
    from watcher.commands import send_test

    config = load_or_exit(config_path, require_token=False)
    configure_logging("warning", "auto")
    if route is not None and config.route(route) is None:
        known = ", ".join(r.name for r in config.routes)
        click.echo(f"{config.source}: routes: no route named {route!r} (known: {known})", err=True)
        sys.exit(EXIT_CONFIG)

    async def send() -> int:
        results = await send_test(config, route)
        for name, result in results.items():
            click.echo(f"route {name}: {'delivered' if result.ok else 'FAILED'}")
            for target in result.targets:
                state = "ok" if target.ok else f"failed: {target.detail}"
                click.echo(f"  {target.name} {target.url}: {state}")
            if not result.ok and result.error:
                click.echo(f"  error: {result.error}")
        return 0 if all(r.ok for r in results.values()) else EX_SOFTWARE

    sys.exit(_guarded(send))


@main.command()
@config_option
def health(config_path: str | None) -> None:
    """Exit 0 when the daemon is healthy (recent successful cycle, store writable), else 1."""
    from watcher.commands import check_health
    from watcher.runtime import utcnow

    config = load_or_exit(config_path, require_token=False, exit_code=1, check_urls=False)
    configure_logging("error", "auto")
    healthy, reason = asyncio.run(check_health(config, utcnow()))
    click.echo(reason, err=not healthy)
    sys.exit(0 if healthy else 1)


@main.command()
@click.option(
    "--duration", type=float, default=None, help="Stop after this many seconds (default: Ctrl-C)."
)
@click.option(
    "--speed", type=float, default=1.0, show_default=True, help="Run the scenario faster."
)
@log_level_option
def demo(duration: float | None, speed: float, log_level: str | None) -> None:
    """A self-contained demonstration: simulated API, the real daemon, alerts in the terminal."""
    from watcher.demo import run_demo

    configure_logging(log_level or "warning", "console")
    sys.exit(_guarded(lambda: run_demo(duration=duration, speed=speed, echo=click.echo)))


@main.command()
@click.option("--port", type=int, default=8080, show_default=True, help="Loopback port.")
@click.option("--scenario", default="demo", show_default=True, help="Bundled scenario name.")
@click.option("--token", default="sim-token", show_default=True, help="Bearer token to accept.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Clock speed factor.")
def simulate(port: int, scenario: str, token: str, speed: float) -> None:
    """Serve the simulated DigitalOcean API alone, on 127.0.0.1 (for trying configurations)."""
    from watcher.simulator import ScenarioError, run_standalone

    configure_logging("info", "auto")
    try:
        run_standalone(port=port, scenario=scenario, token=token, speed=speed)
    except ScenarioError as exc:
        click.echo(f"scenario: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EX_SOFTWARE)


def _guarded(work: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a command's coroutine; a config or watcher error is one clear line, not a trace."""
    try:
        return asyncio.run(work())
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        return EX_CONFIG
    except WatcherError as exc:
        click.echo(f"error: {exc}", err=True)
        return EX_SOFTWARE
    except KeyboardInterrupt:
        return 130

"""The `watcher` command line: each command parses its options and delegates to the package.

Exit codes: 0 done; 2 for a wrong command line (one line on stderr) and for an invalid
configuration in `check-config`; 78 (`EX_CONFIG`, sysexits) when a command that runs the
watcher cannot because of its configuration (a bad key, no token, a state path or port that
cannot be used); 1 for faults. Commands that need the configuration take `@config_option`
and call `load_or_exit`, which prints every problem (`source: key: why`) to stderr.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from watcher.core.errors import ConfigError, StoreHeld, WatcherError
from watcher.core.inert import inert
from watcher.core.redact import SECRETS

# Each command imports what it uses when it runs: `--help`, `--version`, `simulate` and `demo`
# load no configuration model, and `health` (a probe every 30 s) loads only its store's
# connection and the health rule (no event loop, no logs), and the configuration, the logs and
# the whole store only when no watcher validated it as it is now (`watcher.service.quickhealth`,
# `tests/perf/test_cold_imports.py`).
if TYPE_CHECKING:
    from watcher.config import Config, Preflight

_T = TypeVar("_T")

EXIT_USAGE = 2  # a wrong command line (click's code), and an invalid file in check-config
EXIT_FAULT = 1  # the README's code for a fault: the API, the store, a delivery (not sysexits')
EX_CONFIG = 78  # sysexits: what systemd users expect from a daemon with a bad configuration
EX_TEMPFAIL = 75  # sysexits: another process holds the store now; try again later

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


def say(text: str, *, err: bool = False, one_line: bool = False) -> None:
    """The terminal boundary: print `text` with every known secret masked and no control or
    bidi character (line breaks kept unless `one_line`). Everything the commands print goes
    through here."""
    click.echo(inert(SECRETS.redact(text), newlines=not one_line), err=err)


def load_or_exit(
    config_path: str | None,
    *,
    require_token: bool = True,
    exit_code: int = EXIT_USAGE,
    check_urls: bool = True,
    preflight: Preflight | None = None,
) -> Config:
    """Load the configuration, or print each problem (`file: key: why`) to stderr and exit
    (`preflight`: what to check on this machine, `Preflight.NONE` when left out)."""
    from watcher.config import Preflight, load_config, resolve_config_path

    path = resolve_config_path(config_path, os.environ)
    try:
        config = load_config(
            path,
            os.environ,
            require_token=require_token,
            check_urls=check_urls,
            preflight=Preflight.NONE if preflight is None else preflight,
        )
    except ConfigError as exc:
        for problem in exc.problems:
            say(str(problem), err=True, one_line=True)
        sys.exit(exit_code)
    _register_secrets(config)
    return config


def _register_secrets(config: Config) -> None:
    from watcher.service.config_secrets import register_config_secrets

    register_config_secrets(config)


def structlog_without_rich() -> None:
    """Import structlog as if rich were not installed (before anything else imports it).

    structlog's `__init__` imports its `dev` and `tracebacks` modules, and they import rich
    when it is installed (it comes with import-linter in a development venv, and with many
    other tools): about 50 ms of CPU for every command that logs. The watcher renders nothing
    with rich: console lines take `structlog.dev.plain_traceback`, JSON lines
    `ExceptionDictTransformer(show_locals=False)` (rich would only format frame locals), so
    the lines are the same with it or without. rich itself stays importable afterwards.
    """
    _import_as_if_absent("structlog", absent="rich")


def httpx_without_its_cli() -> None:
    """Import httpx without `httpx._main`, the `httpx` command-line tool, which its `__init__`
    imports when click, pygments and rich are installed (about 40 ms of CPU); without it,
    `httpx.main` is httpx's own stub, and the watcher never calls it."""
    _import_as_if_absent("httpx", absent="httpx._main")


def _import_as_if_absent(name: str, *, absent: str) -> None:
    """Import `name` while `import <absent>` raises ImportError (the optional import that
    `name` guards with `try`/`except ImportError`); no-op when either is already loaded."""
    if name in sys.modules or absent in sys.modules:
        return
    sys.modules[absent] = None  # type: ignore[assignment]  # what makes `import` fail
    try:
        importlib.import_module(name)
    finally:
        del sys.modules[absent]


@contextmanager
def frozen_start() -> Iterator[None]:
    """Load a command's modules and configuration with the cyclic garbage collector paused,
    then freeze what they built (`gc.freeze`) before the command runs.

    The modules, classes and models made at start (about 80,000 tracked objects for `once`)
    live as long as the process, yet the collector traced them again in each of its ~140
    passes of a `watcher once`: about 35 ms of its CPU. Frozen, they are never traced; the
    few hundred objects a start leaves in garbage cycles stay until the process ends.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """`watcher.service.logs.configure_logging`, imported when a command starts its logs."""
    structlog_without_rich()
    from watcher.service.logs import configure_logging as configure

    configure(level, fmt)


def start_logging(config: Config, log_level: str | None) -> None:
    """Configure logs once, from the config unless --log-level overrides it."""
    configure_logging(log_level or config.log.level.value, config.log.format.value)


class OneLineErrors(click.Group):
    """A group whose command-line errors are one line on stderr and exit 2, never a usage
    block or a traceback: `watcher demo: Invalid value for '--speed': 0.0 is not in the
    range x>0. (see 'watcher demo --help')`."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.ClickException as exc:
            say(_one_line(exc), err=True, one_line=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            say("aborted", err=True, one_line=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


def _one_line(exc: click.ClickException) -> str:
    message = " ".join(exc.format_message().split())
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    if ctx is None:
        return f"watcher: {message}"
    return f"{ctx.command_path}: {message} (see '{ctx.command_path} --help')"


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gradient-watcher", prog_name="watcher")
def main() -> None:
    """Watch DigitalOcean knowledge-base indexing jobs and alert through apprise."""


@main.command("check-config")
@config_option
@click.option(
    "--no-token",
    is_flag=True,
    help="Check the file without an API token (before it is installed): its absence is "
    "reported, not an error.",
)
@click.option(
    "--online",
    is_flag=True,
    help="Also read the account with the token: every route entry must match a knowledge "
    "base, every [[knowledge_bases]] uuid must exist.",
)
def check_config(config_path: str | None, no_token: bool, online: bool) -> None:
    """Validate without running: exit 0 if valid, 2 listing every problem.

    Checks the file and the WATCHER_ variables, the token, that the state path can be
    used and the listen address bound by this user, and with --online the account.
    """
    from watcher.config import Preflight, describe
    from watcher.config.preflight import listen_note

    if no_token and online:
        raise click.UsageError("--online reads the account with the token: drop --no-token")
    config = load_or_exit(config_path, require_token=not no_token, preflight=Preflight.ALL)
    if online:
        from watcher.service.commands import check_online

        configure_logging("error", "auto")  # the problems are the output, not request logs
        sys.exit(_guarded(lambda: check_online(config, echo=say), config_exit=EXIT_USAGE))
    say(describe(config, listen_note=listen_note(config.http.listen)))


@main.command()
@config_option
@log_level_option
def run(config_path: str | None, log_level: str | None) -> None:
    """Run the daemon: poll on a schedule until SIGTERM/SIGINT (exit 78 on a bad config)."""
    structlog_without_rich()
    httpx_without_its_cli()
    from watcher.config import Preflight, resolve_config_path
    from watcher.service.daemon import run_daemon

    config = load_or_exit(config_path, exit_code=EX_CONFIG, preflight=Preflight.ALL)
    start_logging(config, log_level)
    path = resolve_config_path(config_path, os.environ)
    sys.exit(_guarded(lambda: run_daemon(config, path, dict(os.environ))))


@main.command()
@config_option
@log_level_option
def once(config_path: str | None, log_level: str | None) -> None:
    """One poll cycle plus delivery of what is due, then exit (0 when the cycle ran; 75 when
    another watcher holds the store)."""
    with frozen_start():
        structlog_without_rich()
        httpx_without_its_cli()
        from watcher.config import Preflight
        from watcher.service.once import run_once

        # Route URLs are checked by `check-config` and `run`; a one-shot skips loading
        # apprise's plugins unless it has something to send (a bad URL then fails its
        # delivery, visibly).
        config = load_or_exit(
            config_path, exit_code=EX_CONFIG, check_urls=False, preflight=Preflight.STATE_PATH
        )
        start_logging(config, log_level)

    async def cycle() -> int:
        try:
            report = await run_once(config)
        except StoreHeld as exc:  # a daemon polls this store: a second poller is refused
            say(f"error: {exc}", err=True, one_line=True)
            return EX_TEMPFAIL
        if not report.ok:
            say(f"cycle failed: {report.error}", err=True, one_line=True)
        return 0 if report.ok else EXIT_FAULT

    sys.exit(_guarded(cycle))


def _state_words(states: tuple[str, ...]) -> tuple[str, ...]:
    """`--state` values checked against the table's words (imported only for `status`)."""
    from watcher.core.status_view import STATE_WORDS

    wrong = [state for state in states if state not in STATE_WORDS]
    if wrong:
        raise click.BadParameter(f"{wrong[0]!r} is not one of {', '.join(STATE_WORDS)}")
    return states


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--kb",
    "kbs",
    multiple=True,
    metavar="NAME|UUID",
    help="Only this knowledge base (its name or uuid); repeatable.",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    metavar="STATE",
    callback=lambda _ctx, _param, value: _state_words(value),
    help="Only KBs whose latest job is in this state, STATE's first word: pending, running, "
    "stalled, completed, no_changes, partial, failed, cancelled, done, unknown, or none (no "
    "job yet); repeatable.",
)
def status(
    config_path: str | None, as_json: bool, kbs: tuple[str, ...], states: tuple[str, ...]
) -> None:
    """What the store knows: each KB, its latest job, state, progress, age, undelivered alerts."""
    from watcher.core.status_view import UnknownKbError
    from watcher.service.commands import read_status

    config = load_or_exit(config_path, require_token=False, exit_code=EX_CONFIG, check_urls=False)
    configure_logging("warning", "auto")
    show = partial(read_status, config, as_json=as_json, echo=say, kbs=kbs, states=states)
    sys.exit(_guarded(_usage(show, UnknownKbError, "watcher status: --kb")))


@main.command("test-notify")
@config_option
@click.option("--route", default=None, metavar="NAME", help="Only this route.")
def test_notify(config_path: str | None, route: str | None) -> None:
    """Send a test alert through the real delivery path to every route (or one)."""
    from watcher.service.commands import send_test

    config = load_or_exit(config_path, require_token=False)
    configure_logging("warning", "auto")
    if route is not None and config.route(route) is None:
        known = ", ".join(r.name for r in config.routes)
        say(f"{config.source}: routes: no route named {route!r} (known: {known})", err=True)
        sys.exit(EXIT_USAGE)

    async def send() -> int:
        results = await send_test(config, route)
        for name, result in results.items():
            say(f"route {name}: {'delivered' if result.ok else 'FAILED'}", one_line=True)
            for target in result.targets:
                state = "ok" if target.ok else f"failed: {target.detail}"
                say(f"  {target.name} {target.url}: {state}", one_line=True)
            if not result.ok and result.error:
                say(f"  error: {result.error}", one_line=True)
        return 0 if all(r.ok for r in results.values()) else EXIT_FAULT

    sys.exit(_guarded(send))


@main.command()
@config_option
@click.argument("job")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the report to FILE instead of stdout (an existing FILE only with --force).",
)
@click.option("--force", is_flag=True, help="Overwrite FILE when it exists.")
def report(config_path: str | None, job: str, output: Path | None, force: bool) -> None:
    """A finished job's per-file report (CSV), as the watcher kept it."""
    from watcher.service.report_command import write_report

    config = load_or_exit(config_path, require_token=False, exit_code=EX_CONFIG, check_urls=False)
    configure_logging("warning", "auto")
    sys.exit(_guarded(lambda: write_report(config, job.strip(), output, force=force)))


@main.command()
@config_option
@click.argument("ids", nargs=-1, type=click.IntRange(min=1), metavar="[ID]...")
@click.option("--all", "retry_all", is_flag=True, help="Every dead letter.")
def retry(config_path: str | None, ids: tuple[int, ...], retry_all: bool) -> None:
    """Send dead letters again: the ids `watcher status` shows (dead #ID), or --all."""
    from watcher.service.commands import retry_dead

    if bool(ids) == retry_all:
        click.echo(
            "watcher retry: give the dead-letter ids `watcher status` shows, or --all",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    config = load_or_exit(config_path, require_token=False, exit_code=EX_CONFIG, check_urls=False)
    configure_logging("warning", "auto")
    chosen = None if retry_all else ids
    sys.exit(_guarded(lambda: retry_dead(config, chosen, echo=click.echo)))


@main.command()
@config_option
@click.argument("target", metavar="KB|JOB")
@click.option("--comment", default=None, metavar="TEXT", help="Why, for the others.")
@click.option("--by", default=None, metavar="NAME", help="Who acknowledges (default: login user).")
def ack(config_path: str | None, target: str, comment: str | None, by: str | None) -> None:
    """Acknowledge the open incident of a KB (name or uuid) or of a job's KB (job uuid):
    its reminders and escalation stop; `status` shows who and when."""
    from watcher.edges.host import login_name
    from watcher.service.commands import acknowledge_incident

    who = (by if by is not None else login_name()).strip()
    if not who or not target.strip():
        click.echo("watcher ack: give a KB or job, and a non-empty --by NAME", err=True)
        sys.exit(EXIT_USAGE)
    config = load_or_exit(config_path, require_token=False, exit_code=EX_CONFIG, check_urls=False)
    configure_logging("warning", "auto")
    why = comment.strip() if comment else None
    sys.exit(_guarded(lambda: acknowledge_incident(config, target.strip(), who, why, echo=say)))


@main.command()
@config_option
@click.option(
    "--live",
    is_flag=True,
    help="Liveness only: a cycle finished recently, whatever its outcome (restart probes).",
)
def health(config_path: str | None, live: bool) -> None:
    """Exit 0 when the daemon is healthy (recent successful cycle, store writable), else 1."""
    from watcher.core.health import Probe
    from watcher.service.quickhealth import quick_health

    probe = Probe.LIVE if live else Probe.READY
    # A configuration a watcher validated (its mark is in the store) is not built again:
    # anything unusual loads it whole, with today's messages (`watcher.service.quickhealth`).
    # The fast path never waits and logs nothing: no event loop, no logs set up for it.
    verdict = _finished(quick_health(config_path, os.environ, probe))
    if verdict is None:
        import asyncio

        from watcher.service.healthcheck import check_health

        configure_logging("error", "auto")
        config = load_or_exit(config_path, require_token=False, exit_code=1, check_urls=False)
        verdict = asyncio.run(check_health(config, probe))
    say(verdict.reason, err=not verdict.ok, one_line=True)
    sys.exit(0 if verdict.ok else 1)


@main.group(cls=click.Group)
def silence() -> None:
    """Silence alerts for a while: add, list, expire (kept in the store, shared by every
    process using it; a running daemon honours a new silence at its next delivery)."""


def _duration(_: click.Context, __: click.Parameter, value: str) -> object:
    from watcher.core.durations import parse_duration

    try:
        duration = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if duration.total_seconds() <= 0:
        raise click.BadParameter("must be longer than 0s (e.g. 30m, 2h, 1d)")
    return duration


@silence.command("add")
@config_option
@click.option("--kb", required=True, metavar="NAME|UUID|*", help="The knowledge base, or *.")
@click.option("--event", required=True, metavar="KIND|*", help="An event word, or *.")
@click.option(
    "--for",
    "duration",
    required=True,
    metavar="DURATION",
    callback=_duration,
    help="How long from now (e.g. 30m, 2h, 1d).",
)
@click.option("--comment", required=True, metavar="TEXT", help="Why (shown with the silence).")
@click.option("--by", default=None, metavar="NAME", help="Who [default: the login name].")
def silence_add(
    config_path: str | None, kb: str, event: str, duration: Any, comment: str, by: str | None
) -> None:
    """Hold the matching alerts (recorded as silenced, not sent) until the silence ends;
    print its id. What it held and is still open is announced once when it ends."""
    from watcher.service.silence_commands import add_silence

    if not comment.strip():
        raise click.BadParameter("must say why", param_hint="--comment")
    config = load_or_exit(config_path, require_token=False, exit_code=EX_CONFIG, check_urls=False)
    configure_logging("warning", "auto")
    work = partial(
        add_silence,
        config,
        kb=kb,
        event=event,
        duration=duration,
        comment=comment,
        by=by,
        echo=partial(say, one_line=True),
        note=partial(say, err=True, one_line=True),
    )
    sys.exit(_guarded(work))


@silence.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "every", is_flag=True, help="Ended and expired silences too.")
def silence_list(config_path: str | None, as_json: bool, every: bool) -> None:
    """The active silences (or --all): id, matchers, who, comment, start, end, alerts held."""
    from watcher.service.silence_commands import list_silences

    config = load_or_exit(config_path, require_token=False, exit_code=EX_CONFIG, check_urls=False)
    configure_logging("warning", "auto")
    sys.exit(_guarded(lambda: list_silences(config, every=every, as_json=as_json, echo=say)))


@silence.command("expire")
@config_option
@click.argument("silence_id", metavar="ID")
def silence_expire(config_path: str | None, silence_id: str) -> None:
    """End a silence now; what it held and is still open is announced at the next cycle."""
    from watcher.service.silence_commands import expire_silence

    config = load_or_exit(config_path, require_token=False, exit_code=EX_CONFIG, check_urls=False)
    configure_logging("warning", "auto")
    echo = partial(say, one_line=True)
    sys.exit(_guarded(lambda: expire_silence(config, silence_id, echo=echo)))


POSITIVE = click.FloatRange(min=0, min_open=True)


@main.command()
@click.option(
    "--duration",
    type=POSITIVE,
    default=None,
    help="Stop after this many seconds (default: Ctrl-C).",
)
@click.option(
    "--speed", type=POSITIVE, default=1.0, show_default=True, help="Run the scenario faster."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="The page's loopback port (default 9187, or any free one when it is taken; 0: any).",
)
@log_level_option
def demo(duration: float | None, speed: float, port: int | None, log_level: str | None) -> None:
    """A self-contained demonstration: simulated API, the real daemon, alerts in the terminal,
    and the page in your browser."""
    from watcher.demo.run import PortInUse, run_demo

    configure_logging(log_level or "warning", "console")
    show = partial(run_demo, duration=duration, speed=speed, echo=say, port=port)
    sys.exit(_guarded(_usage(show, PortInUse, f"watcher demo: --port {port}")))


@main.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Loopback port (0: any free one).",
)
@click.option(
    "--scenario",
    default="demo",
    show_default=True,
    help="Bundled scenario name, or a path to a scenario JSON file.",
)
@click.option("--token", default="sim-token", show_default=True, help="Bearer token to accept.")
@click.option("--speed", type=POSITIVE, default=1.0, show_default=True, help="Clock speed factor.")
@click.option(
    "--clock-offset",
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="The API's clock ahead of this machine's (e.g. 90s, -10m: behind).",
)
@click.option(
    "--scoped-token",
    "scoped",
    multiple=True,
    metavar="TOKEN=SCOPE[,SCOPE]",
    help="Also accept TOKEN with only these scopes (e.g. ro=genai:read: a 403 on cancel and "
    "reindex); repeatable.",
)
@click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="TOKEN=SCENARIO",
    help="Also serve another account: TOKEN sees a world of its own made from SCENARIO "
    "(for [[accounts]]); repeatable.",
)
def simulate(
    port: int,
    scenario: str,
    token: str,
    speed: float,
    clock_offset: str,
    scoped: tuple[str, ...],
    accounts: tuple[str, ...],
) -> None:
    """Serve the simulated DigitalOcean API alone, on 127.0.0.1 (for trying configurations)."""
    from watcher.core.durations import parse_duration
    from watcher.simulator import ScenarioError, run_standalone

    try:
        offset = parse_duration(clock_offset).total_seconds()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--clock-offset") from None
    scoped_tokens = {}
    for entry in scoped:
        name, _, scopes = entry.partition("=")
        if not name or not scopes:
            raise click.BadParameter(
                f"{entry!r} is not TOKEN=SCOPE[,SCOPE]", param_hint="--scoped-token"
            )
        scoped_tokens[name] = frozenset(s.strip() for s in scopes.split(",") if s.strip())
    others = {}
    for entry in accounts:
        other, _, world = entry.partition("=")
        if not other or not world or other == token or other in others:
            raise click.BadParameter(
                f"{entry!r} is not TOKEN=SCENARIO with a token of its own", param_hint="--account"
            )
        others[other] = world
    configure_logging("info", "auto")
    try:
        run_standalone(
            port=port,
            scenario=scenario,
            token=token,
            speed=speed,
            clock_offset=offset,
            scoped_tokens=scoped_tokens,
            accounts=others,
        )
    except ScenarioError as exc:
        say(f"watcher simulate: --scenario: {exc}", err=True, one_line=True)
        sys.exit(EXIT_USAGE)
    except OSError as exc:  # the only one: the port cannot be listened on
        say(f"watcher simulate: --port {port}: {exc.strerror or exc}", err=True, one_line=True)
        sys.exit(EXIT_USAGE)


def _confirmed(question: str, yes: bool) -> None:
    """Go on with a write when `--yes` was given or a person on a terminal says yes; without
    either (a script, a pipe) refuse: nothing is written to DigitalOcean unasked."""
    if yes:
        return
    if not sys.stdin.isatty():
        say(
            "refusing to write to DigitalOcean without confirmation: stdin is not a terminal; "
            "pass --yes to confirm from a script",
            err=True,
            one_line=True,
        )
        sys.exit(EXIT_USAGE)
    if not click.confirm(question, default=False):
        say("nothing done", err=True)
        sys.exit(EXIT_FAULT)


yes_option = click.option("--yes", is_flag=True, help="Do it without asking (for scripts).")


@main.command()
@config_option
@click.argument("job", metavar="JOB")
@yes_option
def cancel(config_path: str | None, job: str, yes: bool) -> None:
    """Cancel an indexing job (needs a token with the genai:update scope)."""
    from watcher.service.writes import cancel_command

    config = load_or_exit(config_path, exit_code=EX_CONFIG, check_urls=False)
    configure_logging("warning", "auto")
    _confirmed(f"Cancel indexing job {job}?", yes)
    sys.exit(_guarded(lambda: cancel_command(config, job.strip(), echo=say)))


@main.command()
@config_option
@click.argument("kb", metavar="KB")
@click.option(
    "--data-source",
    "sources",
    multiple=True,
    metavar="UUID",
    help="Index only this data source (repeat for more) [default: all of them].",
)
@yes_option
def reindex(config_path: str | None, kb: str, sources: tuple[str, ...], yes: bool) -> None:
    """Start an indexing job on a knowledge base, by uuid or configured name (needs a token
    with the genai:create scope)."""
    from watcher.service.writes import find_kb, reindex_command

    config = load_or_exit(config_path, exit_code=EX_CONFIG, check_urls=False)
    configure_logging("warning", "auto")
    found: list[str] = []

    async def resolve() -> int:
        kb_uuid, why = await find_kb(config, kb)
        if kb_uuid is None:
            say(f"watcher reindex: {why}; nothing done", err=True, one_line=True)
            return EXIT_USAGE
        found.append(kb_uuid)
        return 0

    if (code := _guarded(resolve)) != 0:
        sys.exit(code)
    kb_uuid = found[0]
    which = f"{len(sources)} data source(s)" if sources else "all data sources"
    _confirmed(f"Start an indexing job of {which} on knowledge base {kb_uuid}?", yes)
    sys.exit(_guarded(lambda: reindex_command(config, kb_uuid, sources, echo=say)))


def _finished(work: Coroutine[Any, Any, _T]) -> _T:
    """The result of a coroutine that never waits (it reads on the calling thread), run
    without an event loop: asyncio is a fifth of the probe's start."""
    try:
        work.send(None)
    except StopIteration as done:
        return cast("_T", done.value)
    work.close()
    raise RuntimeError(f"{work!r} waited: it needs an event loop")


def _usage(
    work: Callable[[], Coroutine[Any, Any, int]], wrong: type[Exception], said: str
) -> Callable[[], Coroutine[Any, Any, int]]:
    """`work`, with `wrong` (a command-line value the command found wrong once it ran: a KB
    the store does not know, a port in use) told as `said: why` on one line, exit 2."""

    async def guarded() -> int:
        try:
            return await work()
        except wrong as exc:
            say(f"{said}: {exc}", err=True, one_line=True)
            return EXIT_USAGE

    return guarded


def _guarded(work: Callable[[], Coroutine[Any, Any, int]], *, config_exit: int = EX_CONFIG) -> int:
    """Run a command's coroutine; a config or watcher error is one clear line, not a trace."""
    import asyncio

    try:
        return asyncio.run(work())
    except ConfigError as exc:
        for problem in exc.problems:
            say(str(problem), err=True, one_line=True)
        return config_exit
    except WatcherError as exc:
        say(f"error: {exc}", err=True, one_line=True)
        return EXIT_FAULT
    except KeyboardInterrupt:
        return 130

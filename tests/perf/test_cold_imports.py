"""What a command's process imports: the container probe (`watcher health`, every 30 s) and the
CLI's own start load no delivery, HTTP or PostgreSQL library and no configuration they do not
use. Observed in real `watcher` processes through `sys.modules` at exit: behaviours, not
timings (the timings are `bench/cold_start_ab.py`'s)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.stores import open_held
from watcher.service.quickhealth import MARK_KEY, file_mark
from watcher.simulator import ManualClock, Simulator, generated_scenario, serve_in_thread

TOKEN = "dop_v1_" + "be" * 32

# Runs the real entry point and writes the names of every module the process held at exit.
LAUNCH = (
    "import atexit, os, sys\n"
    "def _dump():\n"
    "    with open(os.environ['MODULES_OUT'], 'w') as out:\n"
    "        out.write('\\n'.join(sorted(sys.modules)))\n"
    "atexit.register(_dump)\n"
    "sys.argv[0] = 'watcher'\n"
    "from watcher.cli import main\n"
    "main()\n"
)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN"))}


def modules_of(
    tmp_path: Path, *args: str, env_extra: dict[str, str] | None = None
) -> tuple[int, set[str]]:
    """Run `watcher ARGS` in a fresh process; its exit code and the modules it imported."""
    out = tmp_path / "modules.txt"
    env = clean_env() | (env_extra or {})
    env["MODULES_OUT"] = str(out)
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, *args], env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, set(out.read_text().split())


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def probe_config(tmp_path: Path, *, validated: bool = False) -> Path:
    """A store that exists (so `health` opens it and judges it) and an alert route;
    `validated`: the store holds the mark `run` and `once` leave of the file they loaded."""
    db = tmp_path / "w.db"
    config = tmp_path / "w.toml"
    config.write_text(
        f'[state]\npath = "{db}"\n\n[[routes]]\nname = "ops"\n'
        'urls = ["json://127.0.0.1:9/hook", "mailto://127.0.0.1:9?from=a@b.c&to=d@e.f"]\n'
        'events = ["failed"]\n'
    )

    async def create() -> None:
        store = await open_held(db, datetime.now(UTC))
        if validated:
            await store.set_meta(MARK_KEY, file_mark(str(config), clean_env()))
        await store.close()

    asyncio.run(create())
    return config


def test_health_opens_the_store_without_apprise_httpx_psycopg_or_jinja2(tmp_path: Path) -> None:
    """`watcher health` reads the store and judges it, with none of the libraries of delivery,
    polling, PostgreSQL or alert templates in the process."""
    code, modules = modules_of(tmp_path, "health", "--config", str(probe_config(tmp_path)))
    assert code == 1  # no cycle recorded yet: unhealthy, after reading the store
    assert "watcher.edges.store.sqlite" in modules
    assert "watcher.core.health" in modules
    assert (
        packages(modules) & {"apprise", "httpx", "psycopg", "jinja2", "prometheus_client"} == set()
    )


def test_health_live_probe_imports_no_delivery_library_either(tmp_path: Path) -> None:
    """`watcher health --live` (the restart probe) loads no more than the readiness probe."""
    code, modules = modules_of(
        tmp_path, "health", "--live", "--config", str(probe_config(tmp_path))
    )
    assert code == 1
    assert packages(modules) & {"apprise", "httpx", "psycopg", "jinja2"} == set()


def test_version_and_help_load_no_configuration_model(tmp_path: Path) -> None:
    """`watcher --version` and `--help` answer from the command line alone: no pydantic, no
    structlog, no configuration modules."""
    for args in (("--version",), ("--help",), ("health", "--help")):
        code, modules = modules_of(tmp_path, *args)
        assert code == 0, args
        assert packages(modules) & {"pydantic", "structlog", "apprise", "httpx"} == set(), args
        assert {m for m in modules if m.startswith("watcher.config")} == set(), args


def test_the_daemon_loads_the_page_stack_only_when_it_serves_the_page() -> None:
    """Importing the daemon (all `watcher run` needs without `http.listen`) loads neither
    starlette, uvicorn, jinja2 nor psycopg: the page is built only for a listen address, the
    PostgreSQL store only for `state.url`."""
    code = (
        "import sys, watcher.service.daemon\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'starlette', 'uvicorn', 'jinja2', 'psycopg', 'apprise'})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_health_of_a_validated_configuration_builds_no_configuration_model(
    tmp_path: Path,
) -> None:
    """When the store holds the mark of the file as a watcher validated it, `health` judges
    the store's connection with no pydantic and no `watcher.config` in the process; without
    the mark it loads the configuration whole (and pydantic with it), as before."""
    code, modules = modules_of(
        tmp_path, "health", "--config", str(probe_config(tmp_path, validated=True))
    )
    assert code == 1  # no cycle recorded yet: unhealthy, after reading the store
    assert "watcher.edges.store.conn" in modules
    assert "pydantic" not in packages(modules)
    assert not {m for m in modules if m.startswith("watcher.config")}

    unmarked = tmp_path / "unmarked"
    unmarked.mkdir()
    code, modules = modules_of(unmarked, "health", "--config", str(probe_config(unmarked)))
    assert code == 1 and "pydantic" in packages(modules)


def test_health_of_a_validated_configuration_needs_no_logs_event_loop_or_whole_store(
    tmp_path: Path,
) -> None:
    """The probe's fast path reads the store's connection on its own thread and prints its
    verdict: no structlog (its logs are set up only for the full path), no asyncio, and not
    the whole store's module (outbox, state loading, browsing)."""
    code, modules = modules_of(
        tmp_path, "health", "--config", str(probe_config(tmp_path, validated=True))
    )
    assert code == 1
    assert "watcher.edges.store.conn" in modules
    assert packages(modules) & {"structlog", "asyncio", "pydantic", "rich"} == set()
    assert {"watcher.edges.store.sqlite", "watcher.core.outbox"} & modules == set()


def once_config(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    """A `watcher once` of one account with one alert route and JSON logs, and `extra`."""
    config = tmp_path / "w.toml"
    config.write_text(
        f'[api]\nbase_url = "{base_url}"\n\n[state]\npath = "{tmp_path / "w.db"}"\n\n'
        '[log]\nformat = "json"\n\n[[routes]]\nname = "ops"\n'
        'urls = ["json://127.0.0.1:9/hook"]\nevents = ["failed"]\n' + extra
    )
    return config


def idle_once_modules(tmp_path: Path) -> set[str]:
    """The modules a `watcher once` of an idle 3-KB account (nothing to send) loaded."""
    sim = Simulator(generated_scenario(3, False, 7), token=TOKEN, clock=ManualClock())
    with serve_in_thread(sim) as base_url:
        config = once_config(tmp_path, base_url)
        code, modules = modules_of(
            tmp_path, "once", "--config", str(config), env_extra={"DIGITALOCEAN_TOKEN": TOKEN}
        )
    assert code == 0
    return modules


def test_a_one_shot_run_builds_no_prometheus_metrics(tmp_path: Path) -> None:
    """`watcher once` serves no `/metrics`: its cycle counts its API requests into nothing,
    and prometheus_client is never loaded (the daemon's runtime keeps the real metrics)."""
    modules = idle_once_modules(tmp_path)
    assert "watcher.service.cycle" in modules
    assert "prometheus_client" not in packages(modules)
    assert "watcher.edges.metrics" not in modules


def test_remediation_and_digests_are_loaded_only_when_configured(tmp_path: Path) -> None:
    """Without `[remediation] on_stalled` nor a route's `digest`, `watcher once` loads neither
    the remediation nor the digests of the cycle; with them, both are loaded and run."""
    sim = Simulator(generated_scenario(3, False, 7), token=TOKEN, clock=ManualClock())
    token = {"DIGITALOCEAN_TOKEN": TOKEN}
    configured = tmp_path / "configured"
    configured.mkdir()
    with serve_in_thread(sim) as base_url:
        plain = once_config(tmp_path, base_url)
        code, modules = modules_of(tmp_path, "once", "--config", str(plain), env_extra=token)
        assert code == 0
        assert {"watcher.service.remedies", "watcher.service.digests"} & modules == set()

        extra = 'digest = "daily 09:00 UTC"\n\n[remediation]\non_stalled = "cancel_and_reindex"\n'
        both = once_config(configured, base_url, extra)
        code, modules = modules_of(configured, "once", "--config", str(both), env_extra=token)
        assert code == 0
        assert {"watcher.service.remedies", "watcher.service.digests"} <= modules


def test_a_one_shot_run_loads_neither_rich_nor_the_httpx_command_line(tmp_path: Path) -> None:
    """structlog imports rich and httpx its command-line tool (click, pygments, rich) when
    they are installed, as they are here; the watcher uses neither, and `once` loads neither.
    Its JSON log lines are those of any run."""
    modules = idle_once_modules(tmp_path)
    assert {"structlog", "httpx"} <= packages(modules)
    assert packages(modules) & {"rich", "pygments"} == set()
    assert "httpx._main" not in modules


def test_rich_and_httpx_command_line_stay_importable_after_the_light_imports() -> None:
    """The CLI hides rich and `httpx._main` only while structlog and httpx are imported: a
    later `import rich` (a plugin, a debugger) finds the installed package."""
    code = (
        "import sys\n"
        "from watcher.cli import httpx_without_its_cli, structlog_without_rich\n"
        "structlog_without_rich(); httpx_without_its_cli()\n"
        "assert 'rich' not in sys.modules and 'httpx._main' not in sys.modules\n"
        "import rich, httpx._main, structlog.dev\n"
        "print(rich.__name__, structlog.dev.rich is None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["rich", "True"]


# What a `watcher once` with nothing to send never needs: the other commands, the daemon and
# its page, the health probe's judge, the PostgreSQL store, the metrics, delivery's and the
# page's libraries. A new top-level import that brings one of them back fails here.
ONCE_NEVER_IMPORTS = {
    "watcher.service.daemon",
    "watcher.service.commands",
    "watcher.service.page",
    "watcher.service.vitals",
    "watcher.service.upkeep",
    "watcher.service.healthcheck",
    "watcher.service.remedies",
    "watcher.service.digests",
    "watcher.core.replicas",
    "watcher.core.status_view",
    "watcher.core.costview",
    "watcher.core.snapshot",
    "watcher.edges.metrics",
    "watcher.edges.notify.webhook",
    "watcher.edges.store.postgres",
    "watcher.edges.store.snapshot",
    "watcher.edges.web",
    "watcher.demo",
    "watcher.simulator",
}
ONCE_NEVER_PACKAGES = {
    "apprise",
    "prometheus_client",
    "psycopg",
    "jinja2",
    "starlette",
    "uvicorn",
    "rich",
    "pygments",
}


def test_a_one_shot_run_with_nothing_to_send_imports_only_what_its_cycle_uses(
    tmp_path: Path,
) -> None:
    """An idle `watcher once` loads the cycle, its store and its API client, and none of the
    modules of the other commands, the daemon, the health probe's judge or delivery."""
    modules = idle_once_modules(tmp_path)
    assert {
        "watcher.service.cycle",
        "watcher.edges.store.sqlite",
        "watcher.edges.api.client",
    } <= modules
    assert {"watcher.service.quickhealth"} <= modules  # for the config mark alone
    unneeded = {
        m for m in modules if any(m == n or m.startswith(n + ".") for n in ONCE_NEVER_IMPORTS)
    }
    assert unneeded == set()
    assert packages(modules) & ONCE_NEVER_PACKAGES == set()


def test_a_one_shot_run_freezes_the_objects_its_start_built(tmp_path: Path) -> None:
    """`watcher once` loads its modules and configuration with the garbage collector paused
    and then freezes them: the collector's passes during the cycle no longer trace them."""
    out = tmp_path / "frozen.txt"
    launch = LAUNCH.replace(
        "'\\n'.join(sorted(sys.modules))", "str(__import__('gc').get_freeze_count())"
    )
    sim = Simulator(generated_scenario(3, False, 7), token=TOKEN, clock=ManualClock())
    with serve_in_thread(sim) as base_url:
        config = once_config(tmp_path, base_url)
        env = clean_env() | {"DIGITALOCEAN_TOKEN": TOKEN, "MODULES_OUT": str(out)}
        done = subprocess.run(
            [sys.executable, "-c", launch, "once", "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert int(out.read_text()) > 10_000  # the modules' and models' objects, not a handful

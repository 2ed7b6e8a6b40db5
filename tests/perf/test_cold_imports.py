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


def modules_of(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    """Run `watcher ARGS` in a fresh process; its exit code and the modules it imported."""
    out = tmp_path / "modules.txt"
    env = clean_env()
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

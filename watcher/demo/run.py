"""`watcher demo`: the simulated API on loopback, the real daemon watching it, alerts printed.

Nothing here is a shortcut: the daemon, the store (a temporary SQLite file), the outbox and
apprise are the real ones; only the API is the simulator, and the alerts go to the
`console://` apprise scheme so they appear in the terminal.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from watcher.config import Config
from watcher.core.model import EventKind
from watcher.demo.console import register_console_scheme
from watcher.service.daemon import Daemon
from watcher.service.runtime import open_runtime
from watcher.simulator import RealClock, Simulator, load_scenario, serve_in_thread

DEMO_TOKEN = "demo-token-not-a-secret"
PAGE_PORT = 9187
_JOB_EVENTS = [k for k in EventKind if k.is_about_a_job]


def demo_config(base_url: str, state_path: Path, speed: float, listen: str | None = None) -> Config:
    """Short intervals and stall thresholds so every event shows within about a minute; the
    page on `listen` (loopback)."""

    def seconds(value: float) -> str:
        return f"{max(value / speed, 0.2):.3f}s"

    return Config.for_demo(
        base_url,
        state_path,
        DEMO_TOKEN,
        {"terminal": ["console://"]},
        overrides={
            "api": {"max_requests_per_minute": 240, "reserve": 0},
            "poll": {"interval": seconds(2), "active_interval": seconds(1), "jitter": "0s"},
            "stall": {
                "no_progress_after": seconds(8),
                "pending_after": seconds(15),
                "max_runtime": seconds(600),
            },
            # The terminal takes every alert at once: no pacing.
            "delivery": {"retry_base": seconds(2), "storm_threshold": 20, "send_interval": "0s"},
            "http": {"listen": listen},
        },
    )


async def run_demo(
    *,
    duration: float | None,
    speed: float,
    echo: Callable[[str], None],
    port: int | None = None,
) -> int:
    """Run the demo until Ctrl-C or `duration` seconds; print which events were alerted.

    The page is served on 127.0.0.1:`port` (by default `PAGE_PORT`, or a free port when that
    one is taken); the banner gives its address.
    """
    register_console_scheme()
    sim = Simulator(load_scenario("demo"), token=DEMO_TOKEN, clock=RealClock(speed))
    listen = f"127.0.0.1:{_page_port(PAGE_PORT if port is None else port, port is None)}"
    with tempfile.TemporaryDirectory(prefix="watcher-demo-") as tmp, serve_in_thread(sim) as url:
        config = demo_config(url, Path(tmp) / "watcher.db", speed, listen)
        echo(_banner(url, config, duration))
        runtime = await open_runtime(config, command="watcher demo")
        daemon = Daemon(runtime, config_path=None, env={})
        if duration is not None:
            asyncio.get_running_loop().call_later(duration, daemon.stopping.set)
        code = await daemon.serve()
        seen = await _events_seen(Path(tmp) / "watcher.db")
    echo(_summary(seen))
    return code


class PortInUse(OSError):
    """The port asked for with `--port` is taken: said before the banner promises a page."""


def _page_port(wanted: int, fall_back: bool) -> int:
    """`wanted` when it is free, else a port free right now (`fall_back`) or `PortInUse`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", wanted))
        except OSError as exc:
            if not fall_back:
                raise PortInUse(
                    f"127.0.0.1:{wanted} is in use ({exc.strerror}); leave --port out, or give"
                    " 0, to take a free port"
                ) from None
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _events_seen(path: Path) -> Counter[str]:
    from watcher.edges.store.sqlite import SqliteStore
    from watcher.service.runtime import utcnow

    store = await SqliteStore.open(path, now=utcnow())
    try:
        snapshot = await store.snapshot(utcnow())
    finally:
        await store.close()
    return Counter(snapshot.events_by_kind)


def _banner(url: str, config: Config, duration: float | None) -> str:
    until = f"for {duration:g} s" if duration is not None else "until you press Ctrl-C"
    stall = config.stall
    return (
        "gradient-watcher demo\n"
        f"  simulated DigitalOcean API: {url} (scenario 'demo')\n"
        f"  polling every {_s(config.poll.interval)} (every {_s(config.poll.active_interval)} "
        f"while a job runs); stall after {_s(stall.no_progress_after)} without progress or "
        f"{_s(stall.pending_after)} pending\n"
        f"  the page: http://{config.http.listen}/ (knowledge bases, jobs, charts, deliveries)\n"
        f"  alerts print below through apprise's console:// scheme; running {until}\n"
    )


def _s(delta: timedelta) -> str:
    return f"{delta.total_seconds():g}s"


def _summary(seen: Counter[str]) -> str:
    lines = ["", "Events alerted in this demo:"]
    for kind in _JOB_EVENTS:
        mark = "✔" if seen.get(kind.value) else "·"
        lines.append(f"  {mark} {kind.value}: {seen.get(kind.value, 0)}")
    return "\n".join(lines)

"""Memory and time of one `watcher once` against hostile API answers (issue 11).

    python bench/api_answers.py [--modes huge many_items ...] [--no-raised]

Serves the simulator (two knowledge bases with history, nothing running) behind the mutating
proxy of the fault harness (`tests/promises/proxy.py`) on 127.0.0.1, and for each proxy mode
runs `watcher once` as a subprocess on a fresh store, twice: with the default caps
(`api.max_response_size` 16 MiB, `api.max_list_items` 20,000) and with both raised to their
maxima (1 GiB, 1,000,000: about what the watcher did before the caps existed). Prints, per
run, the exit code, the wall time, the peak resident memory of the process (`ru_maxrss` from
`wait4`) and what the store kept (knowledge bases recorded).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.promises.harness import TOKEN, job_scenario

from tests.promises.proxy import MutatingProxy, ProxyMode, serve_proxy
from watcher.simulator import RealClock, Simulator, serve
from watcher.simulator.loading import parse_scenario

WATCHER = Path(sys.executable).parent / "watcher"
DEFAULT_MODES = ("none", "huge", "many_items", "deep_json", "self_next", "endless_pages")
RAISED = {"max_response_size": '"1GiB"', "max_list_items": "1000000"}


@dataclass(frozen=True)
class Run:
    mode: str
    caps: str
    exit_code: int
    wall_s: float
    peak_mb: float
    kbs_kept: int | None


def config(path: Path, base_url: str, state: Path, raised: bool) -> Path:
    caps = "".join(f"{key} = {value}\n" for key, value in RAISED.items()) if raised else ""
    path.write_text(
        f"""
[api]
base_url = "{base_url}"
timeout = "5s"
max_requests_per_minute = 250
{caps}
[poll]
cycle_deadline = "30s"

[state]
path = "{state}"

[log]
level = "warning"
format = "json"

[[routes]]
name = "nowhere"
urls = ["json://127.0.0.1:9/none"]
"""
    )
    return path


# Peak memory is read by a small launcher, not by this process: on Linux a child's
# `ru_maxrss` starts from the high-water mark of the process it was forked from, and this one
# holds the proxy's large answers. The launcher (a bare interpreter, ~10 MB) forks and execs
# the watcher, and reports the watcher's `ru_maxrss` (KiB) from `wait4`.
LAUNCH = """
import os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_once(config_path: Path) -> tuple[int, float, float]:
    """Exit code, wall seconds and peak RSS (MB) of one `watcher once` (blocking)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN_"))}
    env["DIGITALOCEAN_ACCESS_TOKEN"] = TOKEN
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, str(WATCHER), "once", "--config", str(config_path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, time.monotonic() - began, int(done.stdout.strip()) / 1024


def kbs_kept(state: Path) -> int | None:
    """Knowledge bases in the store (read after the process ended: nothing else has it open)."""
    if not state.exists():
        return None
    with sqlite3.connect(state) as conn:
        count: int = conn.execute("SELECT count(*) FROM knowledge_bases").fetchone()[0]
    return count


async def measure(modes: list[str], raised_too: bool) -> list[Run]:
    scenario = job_scenario(["docs", "wiki"], [])
    sim = Simulator(parse_scenario(scenario, "bench"), token=TOKEN, clock=RealClock(1.0))
    runs: list[Run] = []
    async with serve(sim) as upstream:
        proxy = MutatingProxy(upstream)
        async with serve_proxy(proxy) as base_url:
            with tempfile.TemporaryDirectory(prefix="api-answers-") as tmp:
                for n, mode in enumerate(modes):
                    for raised in (False, True) if raised_too else (False,):
                        proxy.mode = None if mode == "none" else ProxyMode(mode)
                        state = Path(tmp) / f"{n}-{raised}.db"
                        path = config(Path(tmp) / "watcher.toml", base_url, state, raised)
                        code, wall, peak = await asyncio.to_thread(run_once, path)
                        caps = "raised" if raised else "default"
                        runs.append(Run(mode, caps, code, wall, peak, kbs_kept(state)))
                        print(f"  {mode:<14} {caps:<8} exit {code}  {wall:5.1f} s  {peak:6.0f} MB")
    return runs


def table(runs: list[Run]) -> list[str]:
    lines = [
        "| proxy mode | caps | exit | wall s | peak RSS MB | KBs kept |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        kept = "-" if r.kbs_kept is None else f"{r.kbs_kept:,}"
        lines.append(
            f"| {r.mode} | {r.caps} | {r.exit_code} | {r.wall_s:.1f} | {r.peak_mb:.0f} | {kept} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=list(DEFAULT_MODES))
    parser.add_argument("--no-raised", action="store_true", help="only the default caps")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    runs = asyncio.run(measure(args.modes, not args.no_raised))
    print()
    print("\n".join(table(runs)))


if __name__ == "__main__":
    main()

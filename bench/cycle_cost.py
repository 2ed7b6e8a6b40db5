"""CPU per idle cycle, peak memory and cold starts, next to a bare standard-library poller.

    /work/venv/bin/python bench/cycle_cost.py [--kbs 120 1000] [--seconds 14] [--starts 5]

Figures that do not depend much on the load of a shared machine: CPU seconds (user + system,
from /proc) rather than wall time, and peak resident memory (`VmHWM`).

- For each account size, an idle generated account is served on 127.0.0.1 (simulated clock at
  30x). `watcher run` (interval 2 s wall, no jitter) and a bare poller (urllib + json, the same
  `GET /v2/gen-ai/knowledge_bases` pages every interval, nothing else) run one after the other
  against it for `--seconds` each; CPU ms per cycle counts from the end of the first cycle.
- Cold starts: CPU seconds (user + system of the child, from `wait4`) and wall seconds of
  `watcher health` and `watcher once` (120 KBs), the median of `--starts` processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from workload import (  # noqa: E402
    TOKEN,
    WATCHER,
    LogTail,
    ProcessProbe,
    Receiver,
    clean_env,
    stop,
    watcher_config,
)

from watcher.simulator import RealClock, Simulator, generated_scenario, serve_in_thread  # noqa: E402

SPEED = 30.0
INTERVAL = 60 / SPEED

# The floor: fetch and parse every page of the knowledge-base list, print one JSON line a cycle.
BARE = """
import json, sys, time, urllib.request
base, token, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
headers = {"Authorization": "Bearer " + token}
while True:
    started = time.monotonic()
    url, kbs = base + "/v2/gen-ai/knowledge_bases?page=1&per_page=200", 0
    while url:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
            page = json.loads(answer.read())
        kbs += len(page.get("knowledge_bases") or ())
        url = ((page.get("links") or {}).get("pages") or {}).get("next")
    print(json.dumps({"event": "cycle_finished", "kbs": kbs}), file=sys.stderr, flush=True)
    time.sleep(max(0.0, interval - (time.monotonic() - started)))
"""


@dataclass(frozen=True)
class Idle:
    poller: str
    kbs: int
    cycles: int
    cpu_ms: float
    hwm_mb: float


@dataclass(frozen=True)
class Start:
    command: str
    cpu_s: float
    wall_s: float


def _idle(poller: str, argv: list[str], kbs: int, seconds: float) -> Idle:
    process = subprocess.Popen(
        argv, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    tail, probe = LogTail(process.stderr), ProcessProbe(process.pid)
    try:
        if tail.wait_for_cycles(1, timeout=120) is None:
            raise RuntimeError(f"{poller} finished no cycle: {tail.errors[:3]}")
        cpu0, cycles0 = probe.cpu_seconds(), len(tail.snapshot())
        time.sleep(seconds)
        cpu1, cycles1, mem = probe.cpu_seconds(), len(tail.snapshot()), probe.memory_kb()
    finally:
        stop(process)
        tail.join()
    cycles = max(cycles1 - cycles0, 1)
    cpu_ms = 1000 * (cpu1 - cpu0) / cycles
    return Idle(poller, kbs, cycles, cpu_ms, mem.get("VmHWM", 0) / 1024)


def idle_cycles(kbs: int, seconds: float) -> list[Idle]:
    """The watcher and the bare poller, one after the other, against one idle account."""
    sim = Simulator(generated_scenario(kbs, False, 7), token=TOKEN, clock=RealClock(SPEED))
    with (
        tempfile.TemporaryDirectory(prefix="bench-cycle-") as tmp,
        serve_in_thread(sim) as base_url,
        Receiver() as rx,
    ):
        config = watcher_config(
            Path(tmp) / "w.toml",
            base_url,
            rx.url("/watcher"),
            Path(tmp) / "w.db",
            interval=INTERVAL,
            active_interval=15 / SPEED,
            max_rpm=250,
        )
        run = [str(WATCHER), "run", "--config", str(config)]
        bare = [sys.executable, "-c", BARE, base_url, TOKEN, f"{INTERVAL:g}"]
        return [_idle("watcher", run, kbs, seconds), _idle("bare", bare, kbs, seconds)]


def _start(argv: list[str]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, _, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = 0  # reaped by wait4
    return usage.ru_utime + usage.ru_stime, wall


def cold_starts(runs: int) -> list[Start]:
    """`watcher health` (after a `once` wrote the state) and `watcher once`, 120 idle KBs."""
    sim = Simulator(generated_scenario(120, False, 7), token=TOKEN, clock=RealClock(SPEED))
    with (
        tempfile.TemporaryDirectory(prefix="bench-start-") as tmp,
        serve_in_thread(sim) as base_url,
        Receiver() as rx,
    ):
        config = watcher_config(
            Path(tmp) / "w.toml",
            base_url,
            rx.url("/watcher"),
            Path(tmp) / "w.db",
            interval=INTERVAL,
            active_interval=15 / SPEED,
            max_rpm=250,
        )
        starts = []
        for command in ("once", "health", "version"):
            argv = [str(WATCHER), command, "--config", str(config)]
            if command == "version":
                argv = [str(WATCHER), "--version"]
            _start(argv)  # warm the file cache
            figures = [_start(argv) for _ in range(runs)]
            starts.append(
                Start(
                    command,
                    statistics.median(f[0] for f in figures),
                    statistics.median(f[1] for f in figures),
                )
            )
        return starts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="idle cycle CPU and cold starts")
    parser.add_argument("--kbs", type=int, nargs="*", default=[120, 1000])
    parser.add_argument("--seconds", type=float, default=14.0)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| KBs | poller | cycles | CPU ms/cycle | peak RSS MB |")
    print("|---:|---|---:|---:|---:|")
    for kbs in args.kbs:
        for m in idle_cycles(kbs, args.seconds):
            print(f"| {m.kbs:,} | {m.poller} | {m.cycles} | {m.cpu_ms:.1f} | {m.hwm_mb:.1f} |")
    if args.starts:
        print("\n| command (120 KBs) | CPU s (median) | wall s (median) |")
        print("|---|---:|---:|")
        for s in cold_starts(args.starts):
            print(f"| `watcher {s.command}` | {s.cpu_s:.3f} | {s.wall_s:.3f} |")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

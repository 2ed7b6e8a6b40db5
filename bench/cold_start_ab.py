"""CPU seconds of `watcher once` and `watcher health` cold starts, source trees interleaved.

    git archive main watcher | tar -x -C /tmp/a && git archive HEAD watcher | tar -x -C /tmp/b
    /work/venv/bin/python bench/cold_start_ab.py /tmp/a /tmp/b [--rounds 9] [--commands ...]

On a shared machine the absolute CPU time of a process moves with the load; running the
trees' commands in alternation, round after round, against one idle 120-KB simulated account,
lets their medians be compared. CPU = user + system of the child (`wait4`); wall from the
parent. One tree alone gives that tree's figures.

Each tree is byte-compiled first (`compileall`), as `pip install` does: with
`PYTHONDONTWRITEBYTECODE=1` (set on these machines) a source tree is otherwise compiled again
by every process, which more than doubled the figures of a checkout. For each tree and command
one more process runs with `-X importtime` and reports how many modules it imported and which
of the heavy libraries (apprise and its plugins, httpx, psycopg, jinja2, prometheus_client).
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
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from workload import TOKEN, Receiver, byte_compile, clean_env, watcher_config  # noqa: E402

from watcher.simulator import RealClock, Simulator, generated_scenario, serve_in_thread  # noqa: E402

COMMANDS = ("once", "health")
HEAVY = ("apprise", "apprise.plugins", "httpx", "psycopg", "jinja2", "prometheus_client")


def cpu_seconds(argv: list[str]) -> tuple[float, float]:
    """User + system CPU seconds and wall seconds of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0  # reaped by wait4
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - started


def imported(argv: list[str]) -> tuple[int, list[str]]:
    """How many modules one run of `argv` imports, and which of `HEAVY` (by prefix)."""
    run = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], env=clean_env(), capture_output=True, text=True
    )
    names = [
        line.rsplit("|", 1)[1].strip()
        for line in run.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ][1:]  # the header line names no module
    heavy = [
        h
        for h in HEAVY
        if any(n == h or n.startswith(h + ".") for n in names)
        and not (h == "apprise" and any(n.startswith("apprise.plugins.") for n in names))
    ]
    plugins = sum(1 for n in names if n.startswith("apprise.plugins."))
    heavy = [f"{h} ({plugins})" if h == "apprise.plugins" else h for h in heavy]
    return len(names), heavy


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cold starts of two source trees")
    parser.add_argument("trees", type=Path, nargs="+", help="directories holding `watcher/`")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--commands", nargs="+", default=list(COMMANDS), help="e.g. status")
    args = parser.parse_args(argv)
    for tree in args.trees:
        byte_compile(tree)
    sim = Simulator(generated_scenario(120, False, 7), token=TOKEN, clock=RealClock(30.0))
    figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
    modules: dict[tuple[str, str], tuple[int, list[str]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp,
        serve_in_thread(sim) as base_url,
        Receiver() as rx,
    ):
        config = watcher_config(
            Path(tmp) / "w.toml",
            base_url,
            rx.url("/w"),
            Path(tmp) / "w.db",
            interval=2.0,
            active_interval=0.5,
            max_rpm=250,
        )
        for _ in range(args.rounds):
            for tree in args.trees:
                code = (
                    f"import sys; sys.path.insert(0, {str(tree.resolve())!r}); "
                    "sys.argv[0] = 'watcher'; from watcher.cli import main; main()"
                )
                for command in args.commands:
                    argv = [sys.executable, "-c", code, command, "--config", str(config)]
                    key = (str(tree), command)
                    figures.setdefault(key, []).append(cpu_seconds(argv))
                    if key not in modules:
                        modules[key] = imported(argv)
    print("| tree | command | median CPU s | min CPU s | median wall s | modules | heavy imports |")
    print("|---|---|---:|---:|---:|---:|---|")
    for (tree, command), values in figures.items():
        cpu, wall = [v[0] for v in values], [v[1] for v in values]
        count, heavy = modules[(tree, command)]
        print(
            f"| {tree} | `{command}` | {statistics.median(cpu):.3f} | {min(cpu):.3f} "
            f"| {statistics.median(wall):.3f} | {count} | {', '.join(heavy) or 'none'} |"
        )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

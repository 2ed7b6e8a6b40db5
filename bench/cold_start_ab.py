"""CPU seconds of `watcher once` and `watcher health` cold starts, two source trees interleaved.

    git archive main watcher | tar -x -C /tmp/a && git archive HEAD watcher | tar -x -C /tmp/b
    /work/venv/bin/python bench/cold_start_ab.py /tmp/a /tmp/b [--rounds 9]

On a shared machine the absolute CPU time of a process moves with the load; running the two
trees' commands in alternation, round after round, against one idle 120-KB simulated account,
lets their medians be compared. CPU = user + system of the child (`wait4`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from workload import TOKEN, Receiver, clean_env, watcher_config  # noqa: E402

from watcher.simulator import RealClock, Simulator, generated_scenario, serve_in_thread  # noqa: E402

COMMANDS = ("once", "health")


def cpu_seconds(argv: list[str]) -> float:
    """User + system CPU seconds of one child process."""
    process = subprocess.Popen(
        argv, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0  # reaped by wait4
    return usage.ru_utime + usage.ru_stime


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cold starts of two source trees")
    parser.add_argument("trees", type=Path, nargs=2, help="directories holding `watcher/`")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    sim = Simulator(generated_scenario(120, False, 7), token=TOKEN, clock=RealClock(30.0))
    figures: dict[tuple[str, str], list[float]] = {}
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
                for command in COMMANDS:
                    argv = [sys.executable, "-c", code, command, "--config", str(config)]
                    figures.setdefault((str(tree), command), []).append(cpu_seconds(argv))
    print("| tree | command | median CPU s | min CPU s |")
    print("|---|---|---:|---:|")
    for (tree, command), values in figures.items():
        print(f"| {tree} | `{command}` | {statistics.median(values):.3f} | {min(values):.3f} |")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

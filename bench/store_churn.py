"""The minute-long store churn: a reloaded daemon, and status/health/once beside it every second.

Runs `tests/promises/churnrig.py` for `--seconds` (default 60): the real daemon (`watcher run`)
watches a real-time simulated account with jobs starting and ending, is reloaded with SIGHUP,
and then `watcher status --json`, `watcher health` and `watcher once` open and close the store
beside it, a round starting every `--every` seconds. Prints the figures: rounds and commands
run, command failures, how fresh `status` stayed, deleted store files the daemon holds
(`/proc/PID/fd`), `PRAGMA integrity_check` after a clean stop, and alerts expected /
delivered / duplicated / lost. Exit 1 if anything is off. The short version (5 s) runs in the
default tests: `tests/promises/test_store_sharing.py`.

    python bench/store_churn.py [--seconds 60] [--every 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.promises.churnrig import ChurnPlan, figures_text, run_churn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the churn runs")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between rounds")
    args = parser.parse_args()
    plan = ChurnPlan(seconds=args.seconds, every=args.every, horizon=args.seconds + 3.0)
    print(f"churn: {plan.seconds:g}s of status/health/once beside a reloaded daemon", flush=True)
    with tempfile.TemporaryDirectory(prefix="watcher-churn-") as folder:
        figures = run_churn(plan, Path(folder), lambda line: print(line, flush=True))
    print()
    print(figures_text(figures))
    for problem in figures.failures + figures.deleted_side_files:
        print(f"  problem: {problem}")
    for name, keys in (("lost", figures.alerts.lost), ("unexpected", figures.alerts.unexpected)):
        if keys:
            print(f"  {name}: {', '.join(keys)}")
    ok = figures.ok and len(figures.cycles_seen) > 1
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

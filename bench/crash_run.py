"""The long randomized crash run: `watcher run` SIGKILLed dozens of times under API faults.

For each seed, a real-time simulated account with jobs on several knowledge bases and API
faults on its timeline is served on loopback; the real daemon watches it with two webhook
routes (one for every event, one for failures) and is killed with SIGKILL at random moments
and restarted, again and again; then it drains and stops with SIGTERM. Clock faults too: the
API's clock is skewed (seeded, up to ten minutes either way), and with libfaketime installed
the daemons' wall clock is stepped at seeded moments (-60 s, -30 s, +1 h, +2 h, back to true).
The receivers' logs are compared with what the jobs owe. Prints one line per seed and the
totals: kills, API skew, clock steps, jobs, jobs that came and went unseen (no clean answer
showed them live outside a kill: their `started` is not owed), faults applied, malformed
answers, alerts expected / delivered / duplicated / lost, and the faults by kind. Exit 1 if
any alert was lost, unexpected, duplicated outside a kill's send-to-acknowledgement window,
or a secret leaked.

    python bench/crash_run.py [--seeds 1 2 3] [--kills 20] [--horizon 50]

Between kills the daemon is also reloaded (SIGHUP) and `watcher status` and `watcher once`
open and close the store beside it, at seeded random moments (reloads and "beside" columns);
every process runs under the store guard (`tests/storeguard.py`).

The short seeded version runs in the default tests: `tests/promises/test_crash.py`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.promises.crashrig import (
    CrashFigures,
    CrashPlan,
    faults_table,
    figures_table,
    run_crash,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--kills", type=int, default=20, help="kills per seed")
    parser.add_argument("--horizon", type=float, default=50.0, help="seconds of new jobs")
    args = parser.parse_args()
    runs: list[CrashFigures] = []
    for seed in args.seeds:
        plan = CrashPlan(seed=seed, kills=args.kills, horizon=args.horizon)
        print(f"seed {seed}: {plan.kills} kills over ~{plan.horizon:g}s of jobs", flush=True)
        with tempfile.TemporaryDirectory(prefix="watcher-crash-") as folder:
            figures = run_crash(plan, Path(folder), lambda line: print(line, flush=True))
        runs.append(figures)
        for name, problems in (
            ("lost", figures.lost),
            ("unexpected", figures.unexpected),
            ("duplicates outside a kill window", figures.unexplained),
            ("secret leaked in", figures.leaked),
            ("commands beside the daemon failed", figures.bystander_failures),
        ):
            if problems:
                print(f"  {name}: {', '.join(problems)}", flush=True)
    print()
    print(figures_table(runs))
    print()
    print("faults applied by kind (requests answered with each):")
    print(faults_table(runs))
    print()
    explained = sum(f.duplicated - len(f.unexplained) for f in runs)
    print(
        f"duplicates: {sum(f.duplicated for f in runs)}, of which {explained} arrived within "
        f"a kill's send-to-acknowledgement window; daemon exit codes after SIGTERM: "
        f"{sorted({f.exit_code for f in runs}, key=str)}"
    )
    return 0 if all(f.ok for f in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

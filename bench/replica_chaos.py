"""The long replica chaos run: three `watcher run` on one PostgreSQL, killed and paused.

For each seed, a real-time simulated account with jobs on several knowledge bases is served on
loopback; `--replicas` real daemons share a fresh PostgreSQL schema (127.0.0.1:5432, database
`test`, or `$WATCHER_TEST_PG`) with two webhook routes, and a seeded hand SIGKILLs one (the
poller more often than not) and restarts it, or pauses one with SIGSTOP and wakes it with
SIGCONT, every few seconds for `--horizon` seconds. Then every alert drains and the replicas
stop with SIGTERM. Two runs without chaos, with one replica and with `--replicas`, give the
API requests per hour of one poller and of several replicas on the same scenario.

Prints one line per run: kills, pauses, lease epochs, poller writes under a stale epoch (an
audit trigger in the schema counts them), alerts expected / delivered / duplicated / lost,
API requests per hour, KB-list rounds against what one poller may make; then the failover
times (median / worst) after a kill and after a pause of the poller. Exit 1 if any alert was
lost or unexpected, a duplicate fell outside a kill's send-to-acknowledgement window, or a
stale write landed.

    python bench/replica_chaos.py [--seeds 1 2 3] [--horizon 90] [--replicas 3] [--lease 3]

The short seeded version runs in the default tests: `tests/promises/test_replica_chaos.py`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.promises.replicarig import ChaosFigures, ChaosPlan, chaos_table, run_chaos


def _run(plan: ChaosPlan) -> ChaosFigures:
    what = "chaos" if plan.chaos else "no chaos (baseline)"
    print(f"seed {plan.seed}: {plan.replicas} replica(s), {what}, ~{plan.horizon:g}s", flush=True)
    with tempfile.TemporaryDirectory(prefix="watcher-replicas-") as folder:
        figures = run_chaos(plan, Path(folder), lambda line: print(line, flush=True))
    alerts = figures.alerts
    for name, problems in (
        ("lost", alerts.lost),
        ("unexpected", alerts.unexpected),
        ("duplicates outside a kill window", alerts.unexplained),
    ):
        if problems:
            print(f"  {name}: {', '.join(problems)}", flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--horizon", type=float, default=90.0, help="seconds of chaos and jobs")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--lease", type=float, default=3.0, help="state.lease, seconds")
    args = parser.parse_args()
    quiet = [
        _run(ChaosPlan(seed=args.seeds[0], replicas=n, horizon=args.horizon, chaos=False))
        for n in (1, args.replicas)
    ]
    runs = list(quiet)
    for seed in args.seeds:
        runs.append(
            _run(
                ChaosPlan(seed=seed, replicas=args.replicas, horizon=args.horizon, lease=args.lease)
            )
        )
    print()
    print(chaos_table(runs))
    chaos = runs[2:]
    rate = sum(f.requests for f in chaos) / sum(f.seconds for f in chaos) * 3600
    print(
        f"API requests per hour: {quiet[0].requests_per_hour:.0f} with one replica, "
        f"{quiet[1].requests_per_hour:.0f} with {args.replicas} (no chaos), {rate:.0f} with "
        f"{args.replicas} under chaos"
    )
    bad = [f for f in runs if f.alerts.lost or f.alerts.unexpected or f.alerts.unexplained]
    return 1 if bad or any(f.stale_writes for f in runs) else 0


if __name__ == "__main__":
    sys.exit(main())

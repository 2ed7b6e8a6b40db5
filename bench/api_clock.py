"""How well the watcher knows DigitalOcean's clock after a few answers.

Each answer's `Date` header is whole seconds; `watcher.edges.api.clock.ApiClock` intersects the
bounds that every answer puts on the offset. This prints, for a random true offset (up to ten
minutes either way), random round trips (10 to 300 ms, the server stamping anywhere inside)
and answers spaced like a watcher's requests (0.1 to 60 s apart), the error of the estimate
after 1, 2, 3, 5, 10 and 30 answers: median, 95th percentile and worst, over many trials.

    python bench/api_clock.py [--trials 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from email.utils import formatdate
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watcher.edges.api.clock import ApiClock

EPOCH = 1_800_000_000.0
CHECKPOINTS = (1, 2, 3, 5, 10, 30)


def trial(rng: random.Random) -> dict[int, float]:
    """One watcher's life: the estimate's error (seconds) after each checkpoint's answers."""
    skew = rng.uniform(-600, 600)
    mono = rng.uniform(0, 1e5)
    clock = ApiClock(monotonic=lambda: mono, wall_clock=lambda: EPOCH + mono)
    errors = {}
    for n in range(1, max(CHECKPOINTS) + 1):
        rtt = rng.uniform(0.01, 0.3)
        sent = mono
        stamped = EPOCH + sent + rtt * rng.random() + skew
        clock.observe(formatdate(stamped, usegmt=True), sent=sent, received=sent + rtt)
        mono = sent + rtt
        if n in CHECKPOINTS:
            errors[n] = abs(clock.timestamp() - (EPOCH + mono + skew))
        mono += rng.uniform(0.1, 60)
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    runs = [trial(rng) for _ in range(args.trials)]
    print(f"error of the API clock estimate, seconds ({args.trials} trials)")
    print(f"{'answers':>8} {'median':>8} {'p95':>8} {'worst':>8}")
    for n in CHECKPOINTS:
        values = sorted(run[n] for run in runs)
        p95 = values[int(0.95 * (len(values) - 1))]
        print(f"{n:>8} {statistics.median(values):>8.3f} {p95:>8.3f} {values[-1]:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

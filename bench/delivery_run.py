"""Every alert gets through: receivers that behave like the services, outages of several lengths.

For each receiver behaviour and outage length, twelve jobs finish over eight polls while the
receiver misbehaves; the real runtime (real SQLite, real apprise plugins, loopback receivers)
polls on the simulator's clock until every row is settled, sending dead letters again with
`watcher retry --all` once the receiver is back. Prints one line per case, then the table the
README shows: alerts expected, delivered, duplicated, lost, the messages the receiver took
(grouping), the dead letters retried, and the case's real seconds.

    python bench/delivery_run.py [--only refused trickle ...]

Behaviours: refused (connection refused), http 500, slow 6 s (200 after 6 s), trickle
(headers then a byte every 2 s), discord 2,000 (the real Discord plugin against a receiver
refusing content over 2,000 characters, with 6,600-character partial alerts), smtp 535 (the
mail server refuses the login). `delivery.timeout` is 10 s, `send_interval` 1 s. The short
version runs in the tests: `tests/promises/test_receiver_behaviours.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.promises.receiverrig import BEHAVIOURS, Case, Figures, run_case, table

MINUTE, HOUR = 60.0, 3600.0
CASES = [
    Case("refused", 0.0),
    Case("refused", MINUTE),
    Case("refused", 10 * MINUTE),
    Case("refused", 2 * HOUR),
    Case("refused", 25 * HOUR),  # beyond dead_after (24 h): dead letters, then retried
    Case("http 500", MINUTE),
    Case("http 500", 10 * MINUTE),
    Case("http 500", 2 * HOUR),
    Case("slow 6 s", 5 * MINUTE),
    Case("trickle", 30.0),
    Case("trickle", 5 * MINUTE),
    Case("discord 2,000", 0.0),
    Case("smtp 535", 2 * MINUTE),
    Case("smtp 535", 25 * HOUR),
]


async def main(only: list[str]) -> int:
    rows: list[Figures] = []
    for case in CASES:
        if only and case.behaviour not in only:
            continue
        with tempfile.TemporaryDirectory(prefix="watcher-delivery-") as folder:
            figures = await run_case(case, Path(folder))
        rows.append(figures)
        print(
            f"{case.label:<26} expected {figures.expected:>3}  delivered {figures.delivered:>3}"
            f"  duplicated {figures.duplicated:>3}  lost {figures.lost:>3}"
            f"  messages {figures.messages:>3}  retried {figures.dead_retried:>3}"
            f"  {figures.seconds:6.1f} s",
            flush=True,
        )
    print()
    print(table(rows))
    return 1 if any(r.lost for r in rows) else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], choices=BEHAVIOURS)
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.only)))

"""CPU time of `watcher.core.plan.plan` for a storm split in parts (a size limit never hides an
alert).

    python bench/plan_storm.py [--events 2000] [--runs 5]

A storm of `--events` completed jobs (every seventh failed) goes to one route, planned for:
Discord as apprise describes it (2,000 characters with the title, markdown), the same budget
with its format not known (every format fitted and counted, as tests write it), and Discord
beside a 300-line plain-text service and e-mail (32,768, HTML). Each case runs `--runs` times,
each in a fresh process (no warm caches); prints the best CPU time and the number of parts.
`plan` runs on the event loop at every delivery round, so this is time no poll gets.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "discord (markdown)": "(DISCORD,)",
    "discord, format not known": "(replace(DISCORD, format=None),)",
    "discord + 300-line text + e-mail": "(DISCORD, LINES, EMAIL)",
}
ONE_RUN = """
import sys, time
from dataclasses import replace
from datetime import UTC, datetime
sys.path.insert(0, {root!r})
from watcher.core.markup import BodyFormat
from watcher.core.model import EventKind, Job
from watcher.core.outbox import Budget, OutboxItem
from watcher.core.plan import plan
from watcher.core.state import Transition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DISCORD = Budget(body=2000, title=250, title_in_body=True, format=BodyFormat.MARKDOWN)
LINES = Budget(title=None, lines=300, format=BodyFormat.TEXT)
EMAIL = Budget(body=32768, title=250, format=BodyFormat.HTML)
rows = []
for k in range({events}):
    kind = EventKind.FAILED if k % 7 == 0 else EventKind.COMPLETED
    t = Transition(
        event_id=f"job-{{k}}/{{kind.value}}", kind=kind, at=NOW, kb_uuid=f"kb-{{k}}",
        kb_name=f"knowledge base number {{k}} of the docs team", job=Job(uuid=f"job-{{k:04d}}"),
    )
    rows.append(OutboxItem(id=k + 1, route="ops", transition=t, cycle_id="c", created_at=NOW))
started = time.process_time()
sends = plan(rows, 5, "https://x", {{"ops": {budgets}}})
print(time.process_time() - started, len(sends))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for label, budgets in CASES.items():
        code = ONE_RUN.format(root=str(ROOT), events=args.events, budgets=budgets)
        runs = []
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            out.check_returncode()
            seconds, parts = out.stdout.split()
            runs.append((float(seconds), int(parts)))
        best, parts = min(runs)
        said = f"{best:.3f} s CPU (best of {args.runs}), {parts} parts"
        print(f"{args.events:,} events, {label}: {said}")


if __name__ == "__main__":
    main()

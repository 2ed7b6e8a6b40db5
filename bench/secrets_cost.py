"""What keeping secrets costs: the one-shot commands, a log line, and a cycle's write to the store.

1. Each command a user or a probe runs (`status`, `status --json`, `health`, `once`,
   `check-config`) as a real process against the simulated API, with a configuration of
   `--urls` route URLs that carry secrets: best wall time of `--runs` runs and peak RSS. Give
   `--baseline DIR` (a checkout of another version's `watcher/` package, e.g. from
   `git archive main | tar -x -C DIR`) to run the same commands with that version's code too.
2. In process: redacting a typical log line, cold (the URLs not yet classified: apprise is
   imported and loaded) and warm, and `GuardedStore`'s scrub of a first cycle's change
   (`--kbs` knowledge bases, one job each).

    python bench/secrets_cost.py [--urls 4] [--runs 7] [--kbs 1000] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from watcher.simulator import RealClock, Simulator, load_scenario, serve_in_thread

TOKEN = "dop_v1_" + "be" * 32
LAUNCH = "import sys; from watcher.cli import main; sys.argv[0] = 'watcher'; main()"
COMMANDS = (("status",), ("status", "--json"), ("health",), ("once",), ("check-config",))


def config_text(base_url: str, state: Path, urls: int) -> str:
    shapes = [
        "json://user:Pw{n}Zq9x@127.0.0.1:9/hooks/Wq7TzXk2pLm{n}?+X-Api-Key=Hk4vNq8R{n}",
        "mailto://alerts:Zq9%40x%23T{n}@smtp.example.com?to=ops@example.com",
        "ntfy://ntfy.example.com/alerts{n}?token=tk_{n}Vb7Yq2",
        "discord://12345678{n}/Ab9Cd8Ef7Gh{n}",
    ]
    listed = ", ".join(f'"{shapes[n % len(shapes)].format(n=n)}"' for n in range(urls))
    return (
        f'[api]\nbase_url = "{base_url}"\n[state]\npath = "{state}"\n'
        f'[[routes]]\nname = "ops"\nurls = [{listed}]\nevents = ["failed"]\n'
    )


def run_command(args: tuple[str, ...], config: Path, pythonpath: str | None) -> tuple[float, int]:
    """One run: wall seconds and the child's peak RSS in KB."""
    env = {**os.environ, "DIGITALOCEAN_ACCESS_TOKEN": TOKEN}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", LAUNCH, *args, "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss


def commands_table(config: Path, runs: int, baseline: str | None) -> list[str]:
    lines = ["| command | this version: best | peak RSS | baseline: best | peak RSS |"]
    lines.append("|---|---:|---:|---:|---:|")
    for args in COMMANDS:
        ours, theirs = [], []
        for _ in range(runs):  # interleaved, so that load from elsewhere hits both alike
            ours.append(run_command(args, config, None))
            if baseline is not None:
                theirs.append(run_command(args, config, baseline))
        cells = _cells(ours) + (_cells(theirs) if theirs else ["-", "-"])
        lines.append(f"| `watcher {' '.join(args)}` | " + " | ".join(cells) + " |")
    return lines


def _cells(results: list[tuple[float, int]]) -> list[str]:
    best = min(seconds for seconds, _ in results)
    peak = max(rss for _, rss in results) / 1024
    return [f"{best:.3f} s", f"{peak:.1f} MB"]


def in_process(urls: list[str], kbs: int) -> list[str]:
    """Redaction of one log line, cold and warm, and the store guard on a big first cycle."""
    from watcher.core.model import Job
    from watcher.core.redact import SECRETS
    from watcher.core.state import Change, JobState, KbState
    from watcher.service.config_secrets import register_url_secrets

    line = "alert_failed route=ops target=json://127.0.0.1:9/**** detail=retryable: HTTP 500"
    secret_line = line + " while posting hooks/Wq7TzXk2pLm0"
    SECRETS.clear()
    for url in urls:
        register_url_secrets(url)
    started = time.perf_counter()
    SECRETS.redact(line)
    plain = time.perf_counter() - started
    started = time.perf_counter()
    SECRETS.redact(secret_line)  # a candidate piece: the URLs are classified now
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(1000):
        SECRETS.redact(secret_line)
    warm = (time.perf_counter() - started) / 1000
    now = datetime.now(UTC)
    change = Change(
        cycle_id="c",
        at=now,
        kbs=tuple(KbState(f"kb-{n}", f"docs-{n}", now, f"job-{n}") for n in range(kbs)),
        jobs=tuple(JobState(Job(uuid=f"job-{n}"), f"kb-{n}", now, now) for n in range(kbs)),
    )
    started = time.perf_counter()
    SECRETS.scrub(change)  # what `GuardedStore.record` does before writing
    scrub = time.perf_counter() - started
    return [
        f"- a log line holding no URL piece, first of the process: {plain * 1e3:.2f} ms",
        f"- the first line holding a URL piece (classifies {len(urls)} URLs, loads apprise): "
        f"{cold * 1e3:.0f} ms",
        f"- each further line: {warm * 1e6:.0f} µs",
        f"- the store guard on a first cycle of {kbs} KBs ({kbs} jobs): {scrub * 1e3:.0f} ms",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=4)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--kbs", type=int, default=1000)
    parser.add_argument("--baseline", default=None, help="a directory holding another watcher/")
    options = parser.parse_args()
    # an idle account: every run does the same work, nothing to send
    sim = Simulator(load_scenario("quiet"), token=TOKEN, clock=RealClock(speed=1))
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(sim) as base_url:
        config = Path(tmp) / "watcher.toml"
        config.write_text(config_text(base_url, Path(tmp) / "watcher.db", options.urls))
        run_command(("once",), config, None)  # a store to read
        print(f"{options.urls} route URLs with secrets, {options.runs} runs each")
        print("\n".join(commands_table(config, options.runs, options.baseline)))
        text = config.read_text()
        urls = [u.strip().strip('"') for u in text.split("urls = [")[1].split("]")[0].split(",")]
    print()
    print("\n".join(in_process(urls, options.kbs)))


if __name__ == "__main__":
    main()

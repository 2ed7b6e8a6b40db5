"""CPU per idle cycle, peak memory and cold starts, next to a bare standard-library poller.

    /work/venv/bin/python bench/cycle_cost.py [--kbs 10 120 1000 10000] [--seconds 14]
        [--poll-cycles 6] [--settle 240] [--detect-kbs 10000] [--starts 5]

Figures that do not depend much on the load of a shared machine: CPU seconds rather than wall
time (a cycle's from its threads' nanosecond counts, /proc/<pid>/task/*/schedstat, since the
10 ms clock ticks of /proc/<pid>/stat are more than a small account's whole idle cycle; a cold
start's from `wait4`), and peak resident memory (`VmHWM`).

- For each account size, an idle generated account is served on 127.0.0.1 (simulated clock at
  30x; `run_bench.idle_account`). `watcher run` (interval 2 s wall, no jitter) and a bare
  poller (urllib + json, the same `GET /v2/gen-ai/knowledge_bases` pages every interval,
  nothing else) run one after the other against it. CPU is read at the end of every cycle
  (its `cycle_finished` line), from the end of the first one on, and each cycle is told by
  the requests the simulator served in it: a *poll-only* cycle sent the KB list's pages and
  nothing else; the others also made the watcher's hourly reads (each KB's schedule, 20 a
  cycle at most, and the extra reads' share). The watcher runs `--seconds`, and on until it
  has made `--poll-cycles` poll-only cycles or `--settle` seconds passed; the bare poller
  runs `--seconds`. Watcher / floor compares poll-only cycles with the floor's.
- Detection at the rate budget (`--detect-kbs`): the same account at 4x with the watcher's
  own ceiling of 60 requests per nominal minute (240 per wall minute); a job is started
  on a KB every 6 wall seconds through the API; each alert's delay (`started` and the
  outcome) from the moment the job's state was visible, in nominal seconds (an outcome never
  alerted counts as missed; a start seen only with its outcome is not judged), next to the
  bound the budget sets: an idle interval (60 s) plus one sweep of ceil(KBs/200) requests at
  60 a minute.
- Cold starts: CPU seconds (user + system of the child, from `wait4`) and wall seconds of
  `watcher health` and `watcher once` (120 KBs), the median of `--starts` processes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run_bench import IdleAccount, idle_account  # noqa: E402
from workload import (  # noqa: E402
    TOKEN,
    WATCHER,
    LogTail,
    ProcessProbe,
    byte_compile,
    clean_env,
    match_latencies,
    stop,
)

SPEED = 30.0
INTERVAL = 60 / SPEED
KB_LIST = "/v2/gen-ai/knowledge_bases"
DETECT_SPEED = 4.0
NOMINAL_RPM = 60  # the watcher's default ceiling, per nominal minute
PER_PAGE = 200

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
class Cycle:
    """One cycle seen from outside: its CPU, and the requests served since the one before."""

    cpu_s: float
    poll_requests: int
    other_requests: int

    @property
    def poll_only(self) -> bool:
        """It read the KB list (a cycle that sent nothing is not one: a skipped read)."""
        return self.poll_requests > 0 and self.other_requests == 0


@dataclass(frozen=True)
class Idle:
    poller: str
    kbs: int
    cycles: tuple[Cycle, ...]
    hwm_mb: float

    @property
    def cpu_ms(self) -> float:
        """Mean CPU ms over every cycle measured."""
        return _mean_ms(self.cycles)

    @property
    def poll_only(self) -> tuple[Cycle, ...]:
        return tuple(c for c in self.cycles if c.poll_only)

    @property
    def poll_cpu_ms(self) -> float:
        """Mean CPU ms of the cycles that read the KB list and nothing else."""
        return _mean_ms(self.poll_only)

    def requests(self, cycles: Sequence[Cycle]) -> str:
        if not cycles:
            return "-"
        poll = statistics.mean(c.poll_requests for c in cycles)
        other = statistics.mean(c.other_requests for c in cycles)
        return f"{poll:.1f}" + (f" + {other:.1f}" if other else "")


def _mean_ms(cycles: Sequence[Cycle]) -> float:
    return 1000 * statistics.mean(c.cpu_s for c in cycles) if cycles else math.nan


@dataclass(frozen=True)
class Detection:
    kbs: int
    seconds: tuple[float, ...]  # nominal seconds from a job's visibility to its alert
    missed: int
    bound_s: float  # an idle interval plus one sweep at the budget, nominal seconds
    sweep_requests: float  # requests per cycle in the run

    def p(self, q: float) -> float:
        if self.missed or not self.seconds:
            return math.inf
        ranked = sorted(self.seconds)
        return ranked[min(len(ranked) - 1, math.ceil(q / 100 * len(ranked)) - 1)]


@dataclass(frozen=True)
class Start:
    command: str
    cpu_s: float
    wall_s: float
    requests: float = 0.0  # API requests per process, on average


def _cycles(
    tail: LogTail, probe: ProcessProbe, idle: IdleAccount, until: float, enough: int | None
) -> list[Cycle]:
    """Each cycle from now to `until` (and, with `enough`, on to `enough` poll-only cycles
    or `until` + the settle time: the caller's `until` is then a pair)."""
    seen, cpu, wall = len(tail.snapshot()), probe.thread_cpu_seconds(), time.time()
    found: list[Cycle] = []
    while time.time() < until:
        cycles = tail.snapshot()
        if len(cycles) > seen:
            now_cpu, end = probe.thread_cpu_seconds(), cycles[-1][0]
            served = [r for r in idle.sim.requests if wall < r.wall <= end and r.status != 429]
            poll = sum(1 for r in served if r.path == KB_LIST)
            found.append(Cycle(now_cpu - cpu, poll, len(served) - poll))
            seen, cpu, wall = len(cycles), now_cpu, end
            if enough is not None and sum(c.poll_only for c in found) >= enough:
                break
        time.sleep(0.01)
    return found


def _idle(
    poller: str, argv: list[str], idle: IdleAccount, kbs: int, seconds: float, settle: float,
    enough: int | None,
) -> Idle:  # fmt: skip
    process = subprocess.Popen(
        argv, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    tail, probe = LogTail(process.stderr), ProcessProbe(process.pid)
    try:
        if tail.wait_for_cycles(1, timeout=300) is None:
            raise RuntimeError(f"{poller} finished no cycle: {tail.errors[:3]}")
        started = time.time()
        cycles = _cycles(tail, probe, idle, started + seconds, None)
        if enough is not None and sum(c.poll_only for c in cycles) < enough:
            more = enough - sum(c.poll_only for c in cycles)
            cycles += _cycles(tail, probe, idle, started + seconds + settle, more)
        mem = probe.memory_kb()
    finally:
        stop(process)
        tail.join()
    return Idle(poller, kbs, tuple(cycles), mem.get("VmHWM", 0) / 1024)


def idle_cycles(kbs: int, seconds: float, settle: float, enough: int) -> list[Idle]:
    """The watcher and the bare poller, one after the other, against one idle account."""
    account = idle_account(kbs, SPEED, interval=INTERVAL, active_interval=15 / SPEED, max_rpm=250)
    with account as idle:
        run = [str(WATCHER), "run", "--config", str(idle.config)]
        bare = [sys.executable, "-c", BARE, idle.base_url, TOKEN, f"{INTERVAL:g}"]
        return [
            _idle("watcher", run, idle, kbs, seconds, settle, enough),
            _idle("bare", bare, idle, kbs, seconds, 0.0, None),
        ]


def _start_job(base_url: str, kb_uuid: str) -> None:
    body = json.dumps({"knowledge_base_uuid": kb_uuid, "data_source_uuids": []}).encode()
    request = urllib.request.Request(
        base_url + "/v2/gen-ai/indexing_jobs",
        data=body,
        method="POST",
        headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        answer.read()


def detection(kbs: int, seconds: float, every: float = 6.0) -> Detection:
    """Jobs started one by one on an idle account; how long until the watcher alerts them,
    with its ceiling at the default 60 requests per nominal minute."""
    speed = DETECT_SPEED
    sweep_s = math.ceil(kbs / PER_PAGE) * 60 / NOMINAL_RPM  # nominal seconds
    bound = 60 + sweep_s
    account = idle_account(
        kbs,
        speed,
        interval=60 / speed,
        active_interval=15 / speed,
        max_rpm=int(NOMINAL_RPM * speed),
    )
    with account as idle:
        argv = [str(WATCHER), "run", "--config", str(idle.config)]
        process = subprocess.Popen(
            argv, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert process.stderr is not None
        tail = LogTail(process.stderr)
        try:
            if tail.wait_for_cycles(1, timeout=300) is None:
                raise RuntimeError(f"watcher finished no cycle: {tail.errors[:3]}")
            began, first = time.time(), len(idle.sim.requests)
            n = 0
            while time.time() < began + seconds:
                _start_job(idle.base_url, idle.sim.kb_uuid(f"kb-{(n * 7919) % kbs:05d}"))
                n += 1
                time.sleep(every)
            time.sleep(2 * bound / speed + 10)  # the last ones' time to be seen and end
            cycles = max(len(tail.snapshot()) - 1, 1)
            served = len(idle.sim.requests) - first
        finally:
            stop(process)
            tail.join()
        latency = match_latencies(
            idle.sim.transitions(),
            idle.receiver.arrivals("/watcher"),
            since=began,
            until=began + seconds,
        )
    nominal = tuple(s * speed for s in latency.seconds)
    return Detection(kbs, nominal, latency.missed, bound, served / cycles)


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
    """`watcher health` (after a `once` wrote the state) and `watcher once`, 120 idle KBs;
    with how many API requests each process made (the network part of `once`)."""
    account = idle_account(120, SPEED, interval=INTERVAL, active_interval=15 / SPEED, max_rpm=250)
    with account as idle:
        starts = []
        for command in ("once", "health", "version"):
            argv = [str(WATCHER), command, "--config", str(idle.config)]
            if command == "version":
                argv = [str(WATCHER), "--version"]
            _start(argv)  # warm the file cache
            served = len(idle.sim.requests)
            figures = [_start(argv) for _ in range(runs)]
            starts.append(
                Start(
                    command,
                    statistics.median(f[0] for f in figures),
                    statistics.median(f[1] for f in figures),
                    (len(idle.sim.requests) - served) / runs,
                )
            )
        return starts


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _idle_rows(measured: Sequence[Idle]) -> list[str]:
    lines = [
        "| KBs | poller | cycles | requests/cycle | CPU ms/cycle | poll-only cycles "
        "| CPU ms/poll-only cycle | peak RSS MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measured:
        poll = m.poll_only
        lines.append(
            f"| {m.kbs:,} | {m.poller} | {len(m.cycles)} | {m.requests(m.cycles)} "
            f"| {m.cpu_ms:.1f} | {len(poll)} ({m.requests(poll)} requests) "
            f"| {m.poll_cpu_ms:.1f} | {m.hwm_mb:.1f} |"
        )
    return lines


def _ratios(measured: Sequence[Idle]) -> list[str]:
    lines = []
    for kbs in sorted({m.kbs for m in measured}):
        own = next((m for m in measured if m.kbs == kbs and m.poller == "watcher"), None)
        bare = next((m for m in measured if m.kbs == kbs and m.poller == "bare"), None)
        if own is None or bare is None:
            continue
        poll = own.poll_cpu_ms / bare.cpu_ms
        every = own.cpu_ms / bare.cpu_ms
        lines.append(
            f"- {kbs:,} KBs: watcher / floor {poll:.2f}x on poll-only cycles "
            f"({'met' if poll <= 1.5 else 'NOT met'}: target 1.5x), {every:.2f}x over every cycle"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="idle cycle CPU and cold starts")
    parser.add_argument("--kbs", type=int, nargs="*", default=[10, 120, 1000, 10000])
    parser.add_argument("--seconds", type=float, default=14.0)
    parser.add_argument("--poll-cycles", type=int, default=6)
    parser.add_argument("--settle", type=float, default=240.0)
    parser.add_argument("--detect-kbs", type=int, nargs="*", default=[10000])
    parser.add_argument("--detect-seconds", type=float, default=60.0)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args(argv)
    byte_compile()
    print(f"load average at start: {_load()}")
    measured: list[Idle] = []
    for kbs in args.kbs:
        measured += idle_cycles(kbs, args.seconds, args.settle, args.poll_cycles)
    print("\n".join(_idle_rows(measured)))
    print()
    print("\n".join(_ratios(measured)))
    if args.detect_kbs:
        print("\n| KBs | requests/cycle | moments judged | p50 s | p99 s | missed | bound s |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for kbs in args.detect_kbs:
            d = detection(kbs, args.detect_seconds)
            print(
                f"| {kbs:,} | {d.sweep_requests:.1f} | {len(d.seconds) + d.missed} "
                f"| {d.p(50):.0f} | {d.p(99):.0f} | {d.missed} | {d.bound_s:.0f} |"
            )
    if args.starts:
        print("\n| command (120 KBs) | CPU s (median) | wall s (median) | API requests |")
        print("|---|---:|---:|---:|")
        for s in cold_starts(args.starts):
            print(f"| `watcher {s.command}` | {s.cpu_s:.3f} | {s.wall_s:.3f} | {s.requests:.0f} |")
    print(f"load average at end: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Memory and cycle cost of the watcher with 100,000 historical jobs in its store.

    /work/venv/bin/python bench/memory.py [--kbs 120 1000] [--history 100000]

For each account size: serve an idle generated account on 127.0.0.1 (simulated clock at 30x,
poll interval 2 s), let `watcher once` record it, then fill the store quickly with `--history`
finished jobs spread over the last 60 days (inside the default 90-day retention, so the daemon's
hourly prune keeps them), each with its `completed` event and a sent outbox row, written through
`SqliteStore.record` in batches. Then measure, against that store: `watcher once` (median wall
of 3 processes) and `watcher run` for ~14 s (peak and current resident memory from /proc, CPU
per cycle after the first). The same is measured with an empty history for comparison. Finally
`SqliteStore.prune` is timed on the filled store for a 30-day cutoff.

Where the peak comes from (for the largest size, with the history): a child process takes the
daemon's start step by step (`watcher.cli`, then `watcher.service.daemon` imported, then the
configuration loaded as `run` loads it, route URLs checked) and prints its RSS after each;
`watcher run`'s own RSS is read after its first cycle and at the end, with its resident
memory split into anonymous (heap, Python objects) and file-backed pages (shared libraries
and the like, which count in RSS too).
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import gc
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from workload import (  # noqa: E402
    TOKEN,
    WATCHER,
    LogTail,
    ProcessProbe,
    Receiver,
    byte_compile,
    clean_env,
    stop,
    watcher_config,
)

from watcher.core.model import DataSourceJob, DataSourceStatus, EventKind, Job, Phase, Status  # noqa: E402
from watcher.core.state import (  # noqa: E402
    Change,
    Delivery,
    JobState,
    Transition,
)
from watcher.edges import host  # noqa: E402
from watcher.edges.api import wire  # noqa: E402
from watcher.edges.store.rows import JobCache, job_row  # noqa: E402
from watcher.edges.store.sqlite import SqliteStore  # noqa: E402
from watcher.simulator import RealClock, Simulator, generated_scenario, serve_in_thread  # noqa: E402

SPEED = 30.0
BATCH = 5000


@dataclass(frozen=True)
class Measure:
    kbs: int
    history: int
    db_mb: float
    once_s: float
    hwm_mb: float
    rss_mb: float
    cpu_ms: float
    cycles: int
    first_mb: float  # RSS after the first cycle
    anon_mb: float  # anonymous resident memory at the end (heap, Python objects)
    file_mb: float  # file-backed resident memory at the end (shared libraries and the like)


# The daemon's start, step by step, in a child: its RSS after each (MiB), as JSON lines. A
# library's step is what it adds given those before it (what it shares with them is theirs).
_STEPS = """
import json, os, sys
from pathlib import Path

def step(name):
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            print(json.dumps([name, int(line.split()[1]) / 1024]), flush=True)

step("interpreter")
# the daemon's libraries first, each with what it imports, then the watcher's own modules
for names in (
    "ssl",
    "asyncio",
    "click",
    "pydantic",
    # structlog and httpx (its command line) import them when installed (a test dependency)
    "rich.console rich.traceback rich.pretty rich.progress rich.syntax pygments",
    "httpx httpcore anyio._backends._asyncio",
    "prometheus_client",
    "apscheduler.schedulers.asyncio",
    "sqlite3",
    "structlog",
):
    try:
        for name in names.split():
            __import__(name)
    except ImportError:
        continue
    step("+ " + names.split()[0].split(".")[0])
import watcher.cli
step("+ watcher.cli")
import watcher.service.daemon
from watcher.config import Preflight, load_config
step("+ watcher.service.daemon (the watcher's modules, config models)")
load_config(Path(sys.argv[1]), os.environ, preflight=Preflight.ALL)
step("configuration loaded (route URLs checked: apprise, its plugins, requests)")
print(json.dumps(["rich", "rich" in sys.modules]))
"""


def startup_steps(
    config: Path, *, block_rich: bool = False
) -> tuple[list[tuple[str, float]], bool]:
    """The RSS after each step of the daemon's start (see `_STEPS`), and whether `rich` was
    imported (structlog imports it when it is installed: here a test dependency's). With
    `block_rich`, as if it were not installed (as in the container)."""
    script = ("import sys; sys.modules['rich'] = None\n" if block_rich else "") + _STEPS
    out = subprocess.run(
        [sys.executable, "-c", script, str(config)],
        env=clean_env(),
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    steps, rich = [], False
    for line in out.splitlines():
        name, value = json.loads(line)
        if name == "rich":
            rich = bool(value)
        else:
            steps.append((str(name), float(value)))
    return steps, rich


def _job(kb: str, finished: datetime, rng: random.Random) -> Job:
    started = finished - timedelta(seconds=rng.uniform(30, 900))
    items = rng.randint(5, 400)
    source = DataSourceJob(
        data_source_uuid=str(uuid.UUID(int=rng.getrandbits(128))),
        status=DataSourceStatus.UPDATED,
        indexed_item_count=items,
        failed_item_count=0,
        skipped_item_count=0,
        total_file_count=items,
        started_at=started,
        completed_at=finished,
    )
    return Job(
        uuid=str(uuid.UUID(int=rng.getrandbits(128))),
        knowledge_base_uuid=kb,
        phase=Phase.SUCCEEDED,
        status=Status.COMPLETED,
        created_at=started - timedelta(seconds=5),
        started_at=started,
        finished_at=finished,
        updated_at=finished,
        completed_datasources=1,
        total_datasources=1,
        total_tokens=items * 40,
        data_source_jobs=(source,),
    )


async def fill(path: Path, kbs: Sequence[str], history: int, now: datetime) -> None:
    """Add `history` finished jobs (with events and sent outbox rows) to the store at `path`."""
    rng = random.Random(11)
    store = await SqliteStore.open(path, now=now)
    await store.lease_step(host.this_process("bench", now), 30.0)
    try:
        for start in range(0, history, BATCH):
            states, transitions = [], []
            for i in range(start, min(history, start + BATCH)):
                kb = kbs[i % len(kbs)]
                finished = now - timedelta(days=rng.uniform(1, 60))
                job = _job(kb, finished, rng)
                states.append(JobState(job, kb, finished, finished, done=True))
                transitions.append(
                    Transition(
                        f"{job.uuid}/completed", EventKind.COMPLETED, finished, kb, None, job
                    )
                )
            change = Change(
                cycle_id=f"fill{start}",
                at=now - timedelta(days=61),
                jobs=tuple(states),
                transitions=tuple(transitions),
                deliveries=tuple(Delivery(t.event_id, "bench") for t in transitions),
            )
            await store.record(change)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:  # the history was delivered long ago
        conn.execute(
            "UPDATE outbox SET state = 'sent', attempts = 1, sent_at = created_at,"
            " settled_at = created_at WHERE state = 'pending'"
        )


def measure(
    n_kbs: int, history: int, run_s: float, steps: list[tuple[str, float]] | None = None
) -> tuple[Measure, bool]:
    """One size: the figures, and (into `steps`, when given) the start's steps; whether the
    start imported `rich`."""
    sim = Simulator(generated_scenario(n_kbs, False, 7), token=TOKEN, clock=RealClock(SPEED))
    with (
        tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp,
        serve_in_thread(sim) as base_url,
        Receiver() as rx,
    ):
        db = Path(tmp) / "w.db"
        config = watcher_config(
            Path(tmp) / "w.toml",
            base_url,
            rx.url("/watcher"),
            db,
            interval=60 / SPEED,
            active_interval=15 / SPEED,
            max_rpm=250,
        )
        once = [str(WATCHER), "once", "--config", str(config)]
        subprocess.run(once, env=clean_env(), capture_output=True, check=True)
        if history:
            kbs = [sim.kb_uuid(f"kb-{i:05d}") for i in range(n_kbs)]
            asyncio.run(fill(db, kbs, history, datetime.now(UTC)))
        walls = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(once, env=clean_env(), capture_output=True, check=True)
            walls.append(time.perf_counter() - started)
        size = sum(p.stat().st_size for p in Path(tmp).glob("w.db*")) / 1e6
        process = subprocess.Popen(
            [str(WATCHER), "run", "--config", str(config)],
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert process.stderr is not None
        tail, probe = LogTail(process.stderr), ProcessProbe(process.pid)
        tail.wait_for_cycles(1, timeout=60)
        first = probe.memory_kb()
        cpu0, cycles0 = probe.cpu_seconds(), len(tail.snapshot())
        time.sleep(run_s)
        cpu1, cycles1, mem = probe.cpu_seconds(), len(tail.snapshot()), probe.memory_kb()
        rollup = probe.rollup_kb()
        stop(process)
        tail.join()
        rich = False
        if steps is not None:
            found, rich = startup_steps(config)
            steps.extend(found)
            if rich:  # the start again without it: what the container's daemon weighs
                steps.append(
                    (
                        "without rich: " + found[-1][0],
                        startup_steps(config, block_rich=True)[0][-1][1],
                    )
                )
    cycles = max(cycles1 - cycles0, 1)
    anon = rollup.get("Anonymous", 0) / 1024
    return Measure(
        kbs=n_kbs,
        history=history,
        db_mb=size,
        once_s=statistics.median(walls),
        hwm_mb=mem.get("VmHWM", 0) / 1024,
        rss_mb=mem.get("VmRSS", 0) / 1024,
        cpu_ms=1000 * (cpu1 - cpu0) / cycles,
        cycles=cycles,
        first_mb=first.get("VmRSS", 0) / 1024,
        anon_mb=anon,
        file_mb=rollup.get("Rss", 0) / 1024 - anon,
    ), rich


async def time_prune(kbs: int, history: int) -> tuple[int, float]:
    """Rows deleted and seconds taken by one prune (30-day cutoff) of a filled store."""
    with tempfile.TemporaryDirectory(prefix="bench-prune-") as tmp:
        path = Path(tmp) / "p.db"
        now = datetime.now(UTC)
        kb_uuids = [str(uuid.UUID(int=i + 1)) for i in range(kbs)]
        await fill(path, kb_uuids, history, now)
        store = await SqliteStore.open(path, now=now)
        await store.lease_step(host.this_process("bench", now), 30.0)
        try:
            started = time.perf_counter()
            deleted = await store.prune(now - timedelta(days=30))
            return deleted, time.perf_counter() - started
        finally:
            await store.close()


def report(
    sizes: Sequence[int] = (120, 1000), history: int = 100_000, run_s: float = 14.0
) -> tuple[list[str], list[Measure]]:
    """Measure every size with an empty and a filled history; the markdown section and data."""
    measures: list[Measure] = []
    lines = [
        f"## Memory and cycle cost with {history:,} historical jobs (`bench/memory.py`)",
        "",
        "| KBs | historical jobs | store MB | `once` median s | `run` peak RSS MB "
        "| `run` RSS MB | RSS after 1st cycle MB | anon / file-backed MB "
        "| `run` CPU ms/cycle | cycles |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    steps: list[tuple[str, float]] = []
    rich = False
    for n in sizes:
        for h in (0, history):
            print(f"  {n:>5} KBs, {h:,} historical jobs", file=sys.stderr, flush=True)
            last = n == max(sizes) and h == history
            m, rich = measure(n, h, run_s, steps if last else None)
            measures.append(m)
            lines.append(
                f"| {m.kbs:,} | {m.history:,} | {m.db_mb:.1f} | {m.once_s:.3f} | {m.hwm_mb:.1f} "
                f"| {m.rss_mb:.1f} | {m.first_mb:.1f} | {m.anon_mb:.1f} / {m.file_mb:.1f} "
                f"| {m.cpu_ms:.1f} | {m.cycles} |"
            )
    lines += breakdown(measures[-1], steps, rich)
    deleted, seconds = asyncio.run(time_prune(sizes[0], history))
    lines += [
        "",
        f"Pruning that store ({sizes[0]} KBs, {history:,} jobs over 60 days) at a 30-day cutoff "
        f"deleted {deleted:,} rows (jobs, events, outbox) in {seconds:.2f} s.",
    ]
    return lines, measures


def breakdown(m: Measure, steps: list[tuple[str, float]], rich: bool) -> list[str]:
    """Where `watcher run`'s peak comes from: each start step's RSS and what it added, then
    the store's opening with the first cycle, then the cycles after it."""
    if not steps:
        return []
    lines = [
        "",
        f"Where the peak comes from ({m.kbs:,} KBs, {m.history:,} historical jobs): "
        "RSS after each step of the start (a child process), then `watcher run`'s own.",
        "",
        "| step | RSS MB | added MB |",
        "|---|---:|---:|",
    ]
    without = [rss for name, rss in steps if name.startswith("without rich: ")]
    steps = [(name, rss) for name, rss in steps if not name.startswith("without rich: ")]
    before = 0.0
    for name, rss in [
        *steps,
        ("store opened, lease taken, first cycle (`watcher run`)", m.first_mb),
        ("the cycles after it: peak (`watcher run`)", m.hwm_mb),
    ]:
        lines.append(f"| {name} | {rss:.1f} | {rss - before:+.1f} |")
        before = rss
    if rich:
        lines += [
            "",
            "`rich` (and pygments) were imported: structlog and httpx import them when "
            "installed, here as a test dependency (import-linter's); the container installs "
            "no `rich`.",
        ]
        if without:
            lines[-1] += (
                f" The same start with `rich` blocked: {without[0]:.1f} MB once the "
                f"configuration is loaded, {steps[-1][1] - without[0]:.1f} MB less."
            )
    return lines


def deep_size(objects: Sequence[object]) -> int:
    """Bytes of `objects` and all they reach, each object counted once (a value shared
    between them counts once); types, enum members and functions are shared by every value
    and not counted."""
    seen: set[int] = set()
    total, stack = 0, list(objects)
    shared = (type, enum.Enum, type(deep_size), type(None), bool)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, shared):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def object_costs(n_kbs: int = 200) -> list[str]:
    """What each knowledge base and job costs the daemon's memory, in bytes: a KB parsed from
    the list (with its latest job, as the client's memo keeps it), a job state decoded from
    its store row (as the store's job cache keeps it, with its key)."""
    sim = Simulator(generated_scenario(n_kbs, False, 7), token=TOKEN, clock=RealClock(SPEED))
    with serve_in_thread(sim) as base_url:
        request = urllib.request.Request(
            f"{base_url}/v2/gen-ai/knowledge_bases?per_page={n_kbs}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(request) as answer:
            body = answer.read()
    items = json.loads(body)["knowledge_bases"]
    kbs = [wire.parse_knowledge_base(item) for item in items]
    now = datetime.now(UTC)
    jobs = [kb.last_indexing_job for kb in kbs if kb.last_indexing_job is not None]
    rows = [
        job_row(JobState(job, job.knowledge_base_uuid or "", now, now, done=True), "x")
        for job in jobs
    ]
    cache = JobCache()
    # the columns the store reads back (`_JOB_COLUMNS`): the row less phase, status, created_at, at
    read = [(*row[:3], *row[6:13], *row[14:]) for row in rows]
    states = [cache.decode(tuple(row), Path("w.db")) for row in read]
    keys = [entry for entry in cache._rows.values()]
    per_kb = deep_size(kbs) / len(kbs)
    per_state = deep_size(states) / max(len(states), 1)
    per_key = (deep_size(keys) - deep_size(states)) / max(len(keys), 1)
    per_raw = len(body) / len(items)
    return [
        "",
        f"What each object costs ({n_kbs} KBs of the generated account, bytes, shared values "
        "counted once):",
        "",
        "| object | bytes each |",
        "|---|---:|",
        f"| a KB's item in the list answer (JSON text) | {per_raw:,.0f} |",
        f"| a KB parsed, with its latest job (`KnowledgeBase`, as the client's memo keeps it) "
        f"| {per_kb:,.0f} |",
        f"| a job state decoded from its store row (`JobState`, as the job cache keeps it) "
        f"| {per_state:,.0f} |",
        f"| the job cache's key of that row, with its entry | {per_key:,.0f} |",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="watcher memory with a large history")
    parser.add_argument("--kbs", type=int, nargs="+", default=[120, 1000])
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--run-seconds", type=float, default=14.0)
    args = parser.parse_args(argv)
    byte_compile()
    print("\n".join(report(args.kbs, args.history, args.run_seconds)[0]))
    print("\n".join(object_costs()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

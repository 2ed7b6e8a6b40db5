"""Killing `watcher run` with SIGKILL at random moments and checking that no alert is lost.

`run_crash(plan, workdir)` serves a seeded scenario (jobs on several knowledge bases, API
faults on the timeline) from this process with a real-time simulator, runs the real daemon
(`watcher run`, the venv's console script) against it with two real webhook routes, kills it
with SIGKILL at seeded random moments and restarts it, then lets the last incarnation drain
and stops it with SIGTERM. Every knowledge base is watched by uuid, and one of them (the
"ghost") only comes into being halfway through: it owes one `knowledge_base_missing` and one
`knowledge_base_found`, whatever the kills. It compares what the receivers got with what the
scenario owes and returns the figures: expected, delivered, duplicated (each duplicate
checked to fall in a kill's send-to-acknowledgement window), lost, faults applied by kind,
malformed answers.

Clock faults too: the simulated API's clock is off the watcher's by a seeded skew (seconds
to ten minutes, ahead or behind), and, where libfaketime is installed, the daemon's wall
clock is stepped at seeded moments (back a minute, ahead one or two hours, back to true)
through a timestamp file every incarnation reads; its monotonic clock stays true. A
`dribble` fault (headers, then a byte a second) is on the menu: only the cycle deadline
ends such a read.

Used by `tests/promises/test_crash.py` (short, seeded) and `bench/crash_run.py` (long).
"""

from __future__ import annotations

import glob
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.harness import TOKEN, Key, lifecycle_alerts
from tests.receivers import ReceivedRequest, WebhookReceiver, wait_until
from tests.storeguard import guard_env
from watcher.core.model import EventKind
from watcher.simulator import RealClock, Simulator, serve_in_thread
from watcher.simulator.loading import parse_scenario

WATCHER = Path(sys.executable).parent / "watcher"
BAD_EVENTS = (EventKind.FAILED, EventKind.PARTIAL, EventKind.CANCELLED)
# A kill explains a duplicate when it falls this close to the first copy's arrival: the send
# was on the wire (or just answered) and its acknowledgement not yet committed.
ACK_WINDOW = (-1.0, 1.5)
GHOST = "ghost"
MALFORMED = {"truncated_json", "html_error", "unknown_enum", "missing_fields"}
MALFORMED |= {"counters_backwards"}
_FAULT_MENU: list[dict[str, Any]] = [
    {"kind": "server_error", "status": 503, "count": 2},
    {"kind": "server_error", "status": 500, "count": 1},
    {"kind": "rate_limited", "retry_after": 1, "count": 1},
    {"kind": "rate_limited", "retry_after": None, "count": 1},
    {"kind": "html_error", "status": 502, "count": 1},
    {"kind": "truncated_json", "count": 2},
    {"kind": "connection_reset", "count": 1},
    {"kind": "slow", "delay": 2.5, "count": 1},
    {"kind": "unknown_enum", "count": None, "for": 2},
    {"kind": "missing_fields", "count": None, "for": 2},
    {"kind": "missing_fields", "drop": ["created_at", "updated_at"], "count": None, "for": 2},
    {"kind": "counters_backwards", "count": None, "for": 2},
    {"kind": "dribble", "count": 1, "path": "/v2/gen-ai/knowledge_bases"},
    # an optional read that never ends (the account's job list, a job, a job's details): it is
    # cut at its share of the cycle's deadline, and the cycle goes on (issue 9)
    {"kind": "dribble", "count": 1, "path": "/v2/gen-ai/indexing_jobs"},
    {"kind": "echo_headers", "status": 502, "count": 2},  # quotes the token: must not leak
]
MALFORMED |= {"dribble"}
KB_LIST = "/v2/gen-ai/knowledge_bases"
_TERMINAL = ("completed", "no_changes", "partial", "failed", "cancelled")
# the API's clock against the watcher's, by seed % 7 (seeds 1, 2, 3: -90 s, +10 min, -10 min)
SKEWS = (0.0, -90.0, 600.0, -600.0, 90.0, 1.0, -1.0)
STEPS = (-60, 3600, 7200, -30, 0)  # wall-clock offsets (s) an NTP step or a VM restore leaves


class StampedReceiver(WebhookReceiver):
    """The webhook receiver, noting when each request arrived and answering `delay` s later.

    The delay widens the window between a send and its acknowledgement in the store, so that
    kills land in it often enough to show that duplicates come from there and only there.
    """

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.stamps: list[float] = []
        self.delay = delay

    def start(self) -> StampedReceiver:
        super().start()
        assert self._server is not None
        # a killed sender leaves before the answer: a broken pipe is expected, not news
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        return self

    def record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self.stamps.append(time.time())
        time.sleep(self.delay)


@dataclass(frozen=True, slots=True)
class CrashPlan:
    """One seeded crash run: how many kills, on how many KBs, for how long."""

    seed: int
    kills: int
    kbs: int = 4
    first_job: float = 8.0
    horizon: float = 40.0
    fault_every: float = 3.0
    kill_after: tuple[float, float] = (0.1, 2.5)
    answer_delay: float = 0.3
    drain_timeout: float = 60.0
    step_chance: float = 0.35  # before each kill, the chance that the clock is stepped
    reload_chance: float = 0.3  # after a restart: SIGHUP (the reload keeps the open store)
    bystander_chance: float = 0.3  # after a restart: `status` and `once` beside the daemon

    @property
    def api_skew(self) -> float:
        """The seeded offset of the simulated API's clock from the watcher's, seconds."""
        return SKEWS[self.seed % len(SKEWS)]


@dataclass
class CrashFigures:
    """What one crash run did and found."""

    seed: int
    kills: int = 0
    jobs: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    requests: int = 0
    expected: int = 0
    delivered: int = 0
    duplicated: int = 0
    unexplained: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    exit_code: int | None = None
    leaked: list[str] = field(default_factory=list)
    stuck_claims: int = 0
    reloads: int = 0
    bystanders: int = 0
    bystander_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    api_skew: float = 0.0
    clock_steps: list[int] = field(default_factory=list)
    unseen_live: int = 0  # jobs that came and went while the watcher could not look

    @property
    def ok(self) -> bool:
        return not (self.lost or self.unexpected or self.unexplained or self.leaked) and (
            self.exit_code == 0 and not self.bystander_failures
        )


def crash_scenario(plan: CrashPlan) -> dict[str, Any]:
    """Back-to-back jobs on every KB from `first_job` to `horizon`, faults every few seconds."""
    rng = random.Random(plan.seed)
    outcomes = ["completed", "completed", "partial", "failed", "no_changes", "error"]
    kbs, timeline = [], []
    for index in range(plan.kbs):
        key = f"kb{index}"
        kbs.append(
            {
                "key": key,
                "name": f"crash-{key}",
                "data_sources": [{"key": "a", "items": 50}, {"key": "b", "items": 20}],
                "history": [{"ago": 86400, "run": 200, "outcome": "completed"}],
            }
        )
        at, n = plan.first_job + rng.uniform(0, 3), 0
        while at < plan.horizon:
            pending, run = rng.uniform(1.0, 2.0), rng.uniform(9.0, 14.0)
            job_id = f"{key}-{n}"
            job = {"kb": key, "id": job_id, "pending": pending, "run": run}
            job["outcome"] = rng.choice(outcomes)
            timeline.append({"at": round(at, 3), "start_job": job})
            if rng.random() < 0.15:
                timeline.append({"at": round(at + pending + run / 2, 3), "cancel_job": job_id})
            at += pending + run + rng.uniform(1.0, 3.0)
            n += 1
    at = plan.first_job
    while at < plan.horizon:
        timeline.append({"at": round(at, 3), "fault": dict(rng.choice(_FAULT_MENU))})
        at += rng.uniform(0.5, 2.0) * plan.fault_every
    # Watched from the start, listed by the account only from halfway through.
    ghost = {"key": GHOST, "name": "crash-ghost", "created": round(plan.horizon / 2, 3)}
    kbs.append({**ghost, "data_sources": [{"key": "a", "items": 10}]})
    return {"name": f"crash-{plan.seed}", "knowledge_bases": kbs, "timeline": timeline}


def write_config(
    workdir: Path, base_url: str, receiver: WebhookReceiver, watched: Sequence[str] = ()
) -> Path:
    """The daemon's TOML: fast polling, the `watched` KB uuids (none: the whole account), two
    routes, no stalls."""
    bad = ", ".join(f'"{k.value}"' for k in BAD_EVENTS)
    kbs = "".join(f'[[knowledge_bases]]\nuuid = "{uuid}"\n' for uuid in watched)
    text = f"""
[api]
base_url = "{base_url}"
timeout = "2s"
max_requests_per_minute = 250
reserve = 0

[poll]
interval = "1s"
active_interval = "0.5s"
jitter = "0s"
cycle_deadline = "3s"

[stall]
no_progress_after = "10m"
pending_after = "10m"

[state]
path = "{workdir / "watcher.db"}"

[delivery]
retry_base = "1s"
retry_max = "2s"
storm_threshold = 1000
timeout = "5s"
# No pacing between messages to one URL: at 1 s a message, the drain after twenty kills
# outlasts its timeout on a loaded machine (a late alert is not a lost one, but reads as one).
send_interval = "0s"

[log]
level = "info"
format = "json"

[[routes]]
name = "all"
urls = ["{receiver.url_json("/all")}"]
events = ["*"]

[[routes]]
name = "bad"
urls = ["{receiver.url_json("/bad")}"]
events = [{bad}]

{kbs}"""
    path = workdir / "watcher.toml"
    path.write_text(text, encoding="utf-8")
    return path


def libfaketime() -> str | None:
    """The path of libfaketime.so.1 (Debian's `faketime`), or None where it is missing."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    return found[0] if found else None


class Incarnations:
    """The daemon's successive processes, each logging to its own files, all on one wall
    clock the harness can step (when libfaketime is there)."""

    def __init__(self, workdir: Path, config: Path) -> None:
        self.workdir, self.config = workdir, config
        self.env = guard_env({**os.environ, "DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
        self.env.pop("WATCHER_CONFIG", None)
        self.count = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.clock_file: Path | None = None
        if (library := libfaketime()) is not None:
            self.clock_file = workdir / "faketime.rc"
            self.clock_file.write_text("+0\n", encoding="ascii")
            self.env |= {
                "LD_PRELOAD": library,
                "FAKETIME_TIMESTAMP_FILE": str(self.clock_file),
                "FAKETIME_CACHE_DURATION": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "DONT_FAKE_MONOTONIC": "1",
                "NO_FAKE_STAT": "1",
            }

    def step_clock(self, offset: int) -> bool:
        """Step the daemons' wall clock to `offset` s from the true time; False without
        libfaketime."""
        if self.clock_file is None:
            return False
        self.clock_file.write_text(f"{offset:+d}\n", encoding="ascii")
        return True

    def start(self) -> None:
        self.count += 1
        out = (self.workdir / f"run{self.count}.out").open("wb")
        err = (self.workdir / f"run{self.count}.err").open("wb")
        with out, err:
            self.process = subprocess.Popen(
                [str(WATCHER), "run", "--config", str(self.config)],
                stdout=out,
                stderr=err,
                env=self.env,
                cwd=self.workdir,
            )
        self.started_at = time.time()

    def kill(self) -> float:
        """SIGKILL the running process; return the wall time of the kill."""
        assert self.process is not None
        at = time.time()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        return at

    def stop(self) -> int:
        """SIGTERM once the daemon has started, and wait; the exit code (the process is killed
        if it hangs). A SIGTERM before the daemon took its signals ends it by the signal (as
        for any process), which is not what this rig measures."""
        assert self.process is not None
        log = self.workdir / f"run{self.count}.err"
        deadline = time.monotonic() + 30
        while (
            b'"watcher_started"' not in log.read_bytes()
            and self.process.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return -9

    def output(self) -> str:
        return "".join(
            p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(self.workdir.glob("run*.*"))
        )


def run_crash(
    plan: CrashPlan, workdir: Path, log: Callable[[str], None] = lambda _: None
) -> CrashFigures:
    """Run one seeded crash run in `workdir` and return its figures."""
    started = time.monotonic()
    scenario = parse_scenario(crash_scenario(plan), f"crash-{plan.seed}")
    sim = Simulator(scenario, token=TOKEN, clock=RealClock(1.0), api_clock_offset=plan.api_skew)
    receiver = StampedReceiver(plan.answer_delay).start()
    figures = CrashFigures(seed=plan.seed, api_skew=plan.api_skew)
    rng = random.Random(plan.seed * 7919 + 1)
    try:
        with serve_in_thread(sim) as base_url:
            watched = [sim.kb_uuid(kb.key) for kb in scenario.knowledge_bases]
            config = write_config(workdir, base_url, receiver, watched)
            daemon = Incarnations(workdir, config)
            kills = _kill_loop(plan, sim, daemon, rng, log, figures)
            _drain(plan, sim, receiver, kills)
            figures.exit_code = daemon.stop()
            figures.stuck_claims = _stuck_claims(workdir / "watcher.db")
            status_out = _status_json(daemon)
            _compare(figures, sim, receiver, kills)
            secret = TOKEN.removeprefix("dop_v1_")  # the prefix says the kind of token only
            # 10 in a row: a hex token's shorter runs turn up in random uuids by chance
            runs = [secret[i : i + 10] for i in range(len(secret) - 9)]
            figures.leaked = [
                place
                for place in ("logs", "status", "alerts", "store")
                if any(run in _text(place, daemon, status_out, receiver) for run in runs)
            ]
            figures.kills = len(kills)
    finally:
        receiver.stop()
    figures.seconds = time.monotonic() - started
    return figures


def _text(which: str, daemon: Incarnations, status_out: str, receiver: WebhookReceiver) -> str:
    """Everything a person could read in one place: the logs, `status`, alerts, the store."""
    if which == "logs":
        return daemon.output()
    if which == "alerts":
        return "\n".join(r.body.decode("utf-8", "replace") for r in receiver.requests)
    if which == "store":  # every row, read through SQLite (the store's files are its own)
        conn = sqlite3.connect(daemon.workdir / "watcher.db")
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
    return status_out


def _kill_loop(
    plan: CrashPlan,
    sim: Simulator,
    daemon: Incarnations,
    rng: random.Random,
    log: Callable[[str], None],
    figures: CrashFigures,
) -> list[float]:
    """Start the daemon; kill and restart it `plan.kills` times at random moments, stepping
    its wall clock, reloading it and running commands beside it now and then."""
    daemon.start()
    first = wait_until(lambda: any(r.status == 200 for r in sim.requests), timeout=20)
    assert first, "the daemon never read the simulated API"
    kills: list[float] = []
    for number in range(plan.kills):
        seen = len(sim.requests)
        wait_until(lambda seen=seen: len(sim.requests) > seen, timeout=10)  # type: ignore[misc]
        _beside(plan, daemon, rng, figures)
        if rng.random() < plan.step_chance:
            offset = rng.choice(STEPS)
            if daemon.step_clock(offset):
                figures.clock_steps.append(offset)
                log(f"  clock stepped to {offset:+d}s")
        time.sleep(rng.uniform(*plan.kill_after))
        kills.append(daemon.kill())
        log(f"  kill {number + 1}/{plan.kills} after {time.time() - daemon.started_at:.2f}s")
        daemon.start()
    return kills


def _beside(
    plan: CrashPlan, daemon: Incarnations, rng: random.Random, figures: CrashFigures
) -> None:
    """Maybe reload the running daemon; maybe open and close the store beside it."""
    if rng.random() < plan.reload_chance:
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        figures.reloads += 1
    if rng.random() < plan.bystander_chance:
        figures.bystanders += 1
        for args, expected in ((["status", "--json"], 0), (["once"], 75)):
            done = subprocess.run(
                [str(WATCHER), *args, "--config", str(daemon.config)],
                capture_output=True,
                text=True,
                env=daemon.env,
                timeout=60,
                check=False,
            )
            if done.returncode != expected:
                tail = done.stderr.strip()[-200:]
                figures.bystander_failures.append(f"{args[0]} exited {done.returncode}: {tail}")


def _drain(plan: CrashPlan, sim: Simulator, receiver: WebhookReceiver, kills: list[float]) -> None:
    """Wait until every job is over and every alert it owes has arrived (or time is up)."""
    start = sim.t0 - sim.api_clock_offset  # on the reference clock, as time.time() is
    horizon = start.timestamp() + plan.horizon
    wait_until(lambda: time.time() > horizon and _all_over(sim), timeout=plan.horizon + 60)

    def arrived() -> bool:
        owed = _owed(sim, _unseen_live(sim, kills))
        got = Counter(_received(receiver))
        return all(got[key] >= n for key, n in owed.items())

    wait_until(arrived, timeout=plan.drain_timeout)


def _all_over(sim: Simulator) -> bool:
    moments = sim.transitions()
    jobs = {m.job_uuid for m in moments}
    over = {m.job_uuid for m in moments if m.kind not in ("created", "running")}
    return jobs == over


def _unseen_live(sim: Simulator, kills: list[float]) -> set[str]:
    """Jobs the watcher never had a chance to see pending or running: no clean answer of the
    KB list came while they were live (the daemon was down, crashing, or only got faulty
    answers), or every one that did was cut by a kill before the cycle could record it.
    Their `started` is not owed; their outcome still is."""
    moments = sim.transitions()
    born = {m.job_uuid: m.at for m in moments if m.kind == "created"}
    over = {m.job_uuid: m.at for m in moments if m.kind in _TERMINAL}
    sightings = [
        (r.at, r.wall)
        for r in sim.requests
        if r.path == KB_LIST and r.status == 200 and not r.faults and "page=1" in r.query
    ]
    _, late = ACK_WINDOW
    unseen = set()
    for job, created in born.items():
        ended = over.get(job)
        live = [w for at, w in sightings if created <= at and (ended is None or at < ended)]
        if all(any(w <= k <= w + late for k in kills) for w in live):
            unseen.add(job)
    return unseen


def _ghost_seen_missing(sim: Simulator) -> bool:
    """Whether the watcher read the account's KB list before the ghost came into being (on a
    loaded machine the first daemon may start after it did: then nothing was missing)."""
    ghost = next((kb for kb in sim.scenario.knowledge_bases if kb.key == GHOST), None)
    if ghost is None:
        return False
    born = sim.t0 + timedelta(seconds=ghost.created)
    return any(
        r.status == 200 and r.path.rstrip("/").endswith("/knowledge_bases") and r.at < born
        for r in sim.requests
    )


def _owed(sim: Simulator, unseen: set[str]) -> Counter[tuple[str, Key]]:
    jobs = lifecycle_alerts(sim, sim.t0)
    if _ghost_seen_missing(sim):
        jobs[(None, EventKind.KNOWLEDGE_BASE_MISSING)] += 1  # the ghost, before it exists
        jobs[(None, EventKind.KNOWLEDGE_BASE_FOUND)] += 1  # and once it does
    owed: Counter[tuple[str, Key]] = Counter()
    for key, n in jobs.items():
        if key[1] is EventKind.STARTED and key[0] in unseen:
            continue
        owed[("all", key)] += n
        if key[1] in BAD_EVENTS:
            owed[("bad", key)] += n
    return owed


def _received(receiver: WebhookReceiver) -> list[tuple[str, Key]]:
    return [item for item, _ in _received_at(receiver)]


def _received_at(receiver: WebhookReceiver) -> list[tuple[tuple[str, Key], int]]:
    """Each alert received, with the index of its request (for its stamp).

    A request a SIGKILL tore in the middle (headers sent, no whole body) is no delivery: the
    sender never heard an answer, so the row is sent again. It is left out, not misread.
    """
    from tests.harness import alerts_of

    found = []
    for index, request in enumerate(list(receiver.requests)):
        route = request.path.strip("/")
        try:
            alerts = alerts_of([request])
        except ValueError:
            continue
        found.extend(((route, alert.key), index) for alert in alerts)
    return found


def _compare(
    figures: CrashFigures, sim: Simulator, receiver: StampedReceiver, kills: list[float]
) -> None:
    unseen = _unseen_live(sim, kills)
    owed = _owed(sim, unseen)
    figures.unseen_live = len(unseen & {key[0] or "" for key in lifecycle_alerts(sim, sim.t0)})
    received_at = _received_at(receiver)
    received = [item for item, _ in received_at]
    stamps = list(receiver.stamps)
    got = Counter(received)
    figures.jobs = len({key[0] for _, key in owed if key[0] is not None})
    figures.expected = sum(owed.values())
    figures.delivered = sum(min(got[k], n) for k, n in owed.items())
    figures.lost = [
        f"{route} {job} {kind.value}"
        for (route, (job, kind)), n in owed.items()
        if got[(route, (job, kind))] < n
    ]
    optional = {(r, (j, EventKind.STARTED)) for r in ("all",) for j in unseen}  # may be seen
    figures.unexpected = [
        f"{r} {j} {k.value}"
        for (r, (j, k)) in got
        if (r, (j, k)) not in owed and (r, (j, k)) not in optional
    ]
    first: dict[tuple[str, Key], float] = {}
    for item, index in received_at:
        stamp = stamps[index]
        if item not in first:
            first[item] = stamp
            continue
        figures.duplicated += 1
        lo, hi = ACK_WINDOW
        if not any(first[item] + lo <= k <= first[item] + hi and k <= stamp for k in kills):
            figures.unexplained.append(f"{item[0]} {item[1][0]} {item[1][1].value}")
    for record in sim.requests:
        figures.requests += 1
        for fault in record.faults:
            figures.faults[_fault_name(fault, record.path)] += 1
            figures.malformed += fault in MALFORMED


def _fault_name(kind: str, path: str) -> str:
    """A fault's kind for the figures; a dribble says whether it held the mandatory KB list
    or an optional read (cut at its share of the cycle's deadline)."""
    if kind != "dribble":
        return kind
    return kind if path.split("?")[0] == KB_LIST else f"{kind} (optional read)"


def _stuck_claims(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE state != 'sent'").fetchone()
    return int(row[0])


def _status_json(daemon: Incarnations) -> str:
    done = subprocess.run(
        [str(WATCHER), "status", "--json", "--config", str(daemon.config)],
        capture_output=True,
        text=True,
        env=daemon.env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)
    return done.stdout + done.stderr


def figures_table(runs: list[CrashFigures]) -> str:
    """The figures of several runs as a plain-text table, with a total line."""
    head = (
        "seed",
        "kills",
        "reloads",
        "beside",
        "api skew s",
        "clock steps",
        "jobs",
        "unseen live",
        "faults",
        "malformed",
        "expected",
        "delivered",
        "dup",
        "lost",
        "s",
    )
    rows: list[tuple[str, ...]] = [head]
    for f in [*runs]:
        rows.append(
            (
                str(f.seed),
                str(f.kills),
                str(f.reloads),
                str(f.bystanders),
                f"{f.api_skew:+g}",
                str(len(f.clock_steps)),
                str(f.jobs),
                str(f.unseen_live),
                str(sum(f.faults.values())),
                str(f.malformed),
                str(f.expected),
                str(f.delivered),
                str(f.duplicated),
                str(len(f.lost)),
                f"{f.seconds:.0f}",
            )
        )
    total = ["total"] + [
        "-" if i == 4 else str(sum(int(r[i]) for r in rows[1:])) for i in range(1, len(head))
    ]
    rows.append(tuple(total))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def faults_table(runs: list[CrashFigures]) -> str:
    """Faults applied by kind, over all runs."""
    total: Counter[str] = Counter()
    for f in runs:
        total.update(f.faults)
    width = max((len(k) for k in total), default=4)
    return "\n".join(f"{kind.ljust(width)}  {n}" for kind, n in sorted(total.items()))

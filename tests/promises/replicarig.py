"""Several `watcher run` replicas on one PostgreSQL, killed and paused at seeded moments.

`run_chaos(plan, workdir)` serves a seeded scenario (jobs on several knowledge bases) from this
process with a real-time simulator, starts `plan.replicas` real daemons on one fresh
PostgreSQL schema with two real webhook routes, and for `plan.horizon` seconds SIGKILLs a
replica (restarting it a moment later) or pauses one with SIGSTOP and wakes it with SIGCONT,
the poller more often than not. Then it lets every alert arrive, stops the replicas with
SIGTERM and returns the figures:

- alerts expected, delivered, duplicated (each duplicate checked to fall in a kill's
  send-to-acknowledgement window), lost;
- poller writes under a stale epoch, counted by an audit trigger installed in the schema (a
  write of `jobs`, `events` or `knowledge_bases` whose `watcher.epoch` is not the lease row's
  epoch, or that carries none);
- failover times: from a kill or a pause of the poller to the lease's next epoch, on the
  rig's clock (killed: another replica proves it gone; paused: its lease runs out);
- API requests per hour, and KB-list rounds (one per poll cycle) against what one poller at
  the configured interval makes.

Used by `tests/promises/test_replica_chaos.py` (short, seeded) and `bench/replica_chaos.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from tests.harness import TOKEN
from tests.promises.crashrig import (
    KB_LIST,
    WATCHER,
    CrashFigures,
    CrashPlan,
    StampedReceiver,
    _compare,
    _drain,
    crash_scenario,
    write_config,
)
from tests.receivers import wait_until
from tests.stores import Engine
from watcher.edges.store.postgres import PostgresStore, token_lease
from watcher.simulator import RealClock, Simulator, serve_in_thread
from watcher.simulator.loading import parse_scenario

_AUDIT = (
    "CREATE TABLE audit_stale (at TIMESTAMPTZ DEFAULT clock_timestamp(), tbl TEXT,"
    " epoch TEXT, current_epoch INTEGER)",
    """CREATE FUNCTION audit_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        mine TEXT := current_setting('watcher.epoch', true);
        now_epoch INTEGER;
    BEGIN
        SELECT epoch INTO now_epoch FROM lease
            WHERE name = current_setting('watcher.lease', true);
        IF mine IS NULL OR mine = '' OR now_epoch IS DISTINCT FROM mine::INTEGER THEN
            INSERT INTO audit_stale (tbl, epoch, current_epoch)
                VALUES (TG_TABLE_NAME, mine, now_epoch);
        END IF;
        RETURN NEW;
    END $$""",
    *(
        f"CREATE TRIGGER audit_{t} BEFORE INSERT OR UPDATE ON {t}"
        " FOR EACH ROW EXECUTE FUNCTION audit_epoch()"
        for t in ("jobs", "events", "knowledge_bases")
    ),
)


_POLLER = " (the poller)"


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    """One seeded chaos run: replicas, actions, and the leases they run under."""

    seed: int
    replicas: int = 3
    kbs: int = 4
    first_job: float = 6.0
    horizon: float = 30.0
    every: tuple[float, float] = (1.5, 3.5)  # seconds between two actions
    # How long a SIGSTOP lasts: under the 5 s after which the server ends a transaction left
    # idle (one that acknowledged a send would be undone, and the alert sent again).
    pause: tuple[float, float] = (1.5, 4.0)
    kill_chance: float = 0.5  # else a pause
    poller_chance: float = 0.7  # the action hits the poller, else any replica
    lease: float = 3.0
    # Longer than a pause plus a whole delivery round on a loaded machine: a pause never
    # duplicates (a killed sender's claims wait this long, so drain_timeout is longer still).
    claim_lease: float = 30.0
    interval: float = 1.0
    answer_delay: float = 0.3
    drain_timeout: float = 90.0
    chaos: bool = True  # False: the replicas only run (the baseline of requests per hour)


@dataclass
class ChaosFigures:
    """What one chaos run did and found (the alert figures are crashrig's)."""

    plan: ChaosPlan
    alerts: CrashFigures
    kills: int = 0
    pauses: int = 0
    stale_writes: int = 0
    failovers_kill: list[float] = field(default_factory=list)
    failovers_pause: list[float] = field(default_factory=list)
    epochs: int = 0
    requests: int = 0
    rounds: int = 0
    seconds: float = 0.0
    exit_codes: list[int] = field(default_factory=list)

    @property
    def requests_per_hour(self) -> float:
        return self.requests / self.seconds * 3600 if self.seconds else 0.0

    @property
    def rounds_allowed(self) -> float:
        """KB-list rounds one poller makes at the interval, plus one per takeover."""
        return self.seconds / self.plan.interval * 1.15 + self.epochs + 2


def config_text(base: str, url: str, plan: ChaosPlan) -> str:
    """crashrig's daemon configuration, on the shared store with the plan's leases."""
    head, _, rest = base.partition("[state]\n")
    _, _, tail = rest.partition("\n")
    state = (
        f'[state]\nurl = "{url}"\nlease = "{plan.lease:g}s"\nclaim_lease = "{plan.claim_lease:g}s"'
    )
    interval = f"{plan.interval:g}s"
    head = head.replace('interval = "1s"', f'interval = "{interval}"')
    head = head.replace('active_interval = "0.5s"', f'active_interval = "{interval}"')
    return f"{head}{state}\n{tail}"


class Replicas:
    """The replica processes, by slot: started, killed, paused, woken, stopped."""

    def __init__(self, workdir: Path, config: Path, count: int) -> None:
        self.workdir, self.config = workdir, config
        self.env = {**os.environ, "DIGITALOCEAN_ACCESS_TOKEN": TOKEN}
        self.env.pop("WATCHER_CONFIG", None)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.runs = 0

    def start(self, slot: int) -> None:
        self.runs += 1
        err = (self.workdir / f"replica{slot}-{self.runs}.err").open("wb")
        with err:
            self.procs[slot] = subprocess.Popen(
                [str(WATCHER), "run", "--config", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=self.env,
                cwd=self.workdir,
            )

    def pid(self, slot: int) -> int:
        proc = self.procs[slot]
        assert proc is not None
        return proc.pid

    def signal(self, slot: int, sig: signal.Signals) -> float:
        at = time.time()
        proc = self.procs[slot]
        assert proc is not None
        proc.send_signal(sig)
        if sig is signal.SIGKILL:
            proc.wait(timeout=10)
        return at

    def stop_all(self) -> list[int]:
        codes = []
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc is None:
                continue
            try:
                codes.append(proc.wait(timeout=40))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait(timeout=10))
        return codes

    def logs(self) -> str:
        return "".join(p.read_text("utf-8", "replace") for p in self.workdir.glob("replica*.err"))


class LeaseWatch:
    """Reads the token's lease row: which pid holds which epoch (on its own connection)."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.name = token_lease(TOKEN)

    def now(self) -> tuple[int, int | None]:
        """The epoch and the holder's pid (None when free or never taken)."""
        try:
            row = self.conn.execute(
                "SELECT epoch, holder, info FROM lease WHERE name = %s", (self.name,)
            ).fetchone()
        except psycopg.errors.UndefinedTable:  # no replica has created the schema yet
            return 0, None
        if row is None:
            return 0, None
        pid = json.loads(row[2] or "{}").get("pid") if row[1] else None
        return int(row[0]), pid

    def replicas_seen(self) -> list[str]:
        """The replica records in the store (each replica writes one at its lease steps)."""
        try:
            rows = self.conn.execute("SELECT key FROM meta WHERE key LIKE 'replica:%%'").fetchall()
        except psycopg.errors.UndefinedTable:
            return []
        return [str(r[0]) for r in rows]

    def next_epoch(self, after: int, timeout: float) -> float | None:
        """Wait for an epoch past `after`; when it came (time.time()), None if it did not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.now()[0] > after:
                return time.time()
            time.sleep(0.05)
        return None


def run_chaos(
    plan: ChaosPlan, workdir: Path, log: Callable[[str], None] = lambda _: None
) -> ChaosFigures:
    """Run one seeded chaos run in `workdir` and return its figures."""
    started = time.monotonic()
    crash = CrashPlan(
        seed=plan.seed,
        kills=0,
        kbs=plan.kbs,
        first_job=plan.first_job,
        horizon=plan.horizon,
        fault_every=1e9,  # no API faults: the replicas are what fails here
        answer_delay=plan.answer_delay,
        drain_timeout=plan.drain_timeout,
    )
    scenario = parse_scenario(crash_scenario(crash), f"chaos-{plan.seed}")
    clock = RealClock(1.0, held=True)  # moves once the replicas are up (three starts are slow)
    sim = Simulator(scenario, token=TOKEN, clock=clock)
    receiver = StampedReceiver(plan.answer_delay).start()
    place = Engine("postgresql", workdir)
    figures = ChaosFigures(plan, CrashFigures(seed=plan.seed))
    rng = random.Random(plan.seed)
    try:
        asyncio.run(_prepare(place.url))
        with serve_in_thread(sim) as base_url:
            watched = [sim.kb_uuid(kb.key) for kb in scenario.knowledge_bases]
            base = write_config(workdir, base_url, receiver, watched).read_text("utf-8")
            config = workdir / "replica.toml"
            config.write_text(config_text(base, place.url, plan), "utf-8")
            replicas = Replicas(workdir, config, plan.replicas)
            watch = LeaseWatch(place.url)
            t0 = time.time()
            for slot in range(plan.replicas):
                replicas.start(slot)
            up = wait_until(
                lambda: len(watch.replicas_seen()) >= plan.replicas and bool(sim.requests), 60
            )
            assert up, "the replicas never came up"
            clock.release()
            kills = _chaos(plan, replicas, watch, rng, figures, log) if plan.chaos else []
            if not plan.chaos:
                time.sleep(plan.horizon)
            _drain(crash, sim, receiver, kills)
            figures.seconds = time.time() - t0
            figures.exit_codes = replicas.stop_all()
            figures.epochs = watch.now()[0]
            watch.conn.close()
            _compare(figures.alerts, sim, receiver, kills)
            figures.stale_writes = int(place.rows("SELECT count(*) FROM audit_stale")[0][0])
            figures.alerts.stuck_claims = place.count("outbox", "state <> 'sent'")
            figures.requests = len(sim.requests)
            figures.rounds = sum(
                1 for r in sim.requests if r.path == KB_LIST and "page=1" in r.query
            )
            (workdir / "replicas.log").write_text(replicas.logs(), "utf-8")
            _keep_evidence(workdir, sim, receiver)
    finally:
        receiver.stop()
        place.drop()
    figures.alerts.seconds = time.monotonic() - started
    return figures


def _keep_evidence(workdir: Path, sim: Simulator, receiver: StampedReceiver) -> None:
    """What the API did and what the receivers got, beside the logs (to read a failure)."""
    moments = [(m.job_uuid, m.kind, m.wall) for m in sim.transitions()]
    received = [
        (r.path, stamp, r.body.decode("utf-8", "replace")[:300])
        for r, stamp in zip(list(receiver.requests), list(receiver.stamps), strict=False)
    ]
    evidence = {"transitions": moments, "received": received}
    (workdir / "evidence.json").write_text(json.dumps(evidence, indent=1), "utf-8")


async def _prepare(url: str) -> None:
    """Create the schema (as the first replica would) and install the audit trigger."""
    store = await PostgresStore.connect(url, now=datetime.now(UTC))
    await store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _AUDIT:
            conn.execute(statement)


def _chaos(
    plan: ChaosPlan,
    replicas: Replicas,
    watch: LeaseWatch,
    rng: random.Random,
    figures: ChaosFigures,
    log: Callable[[str], None],
) -> list[float]:
    """Kill or pause replicas until the horizon; the kill times (for the duplicate check).

    The first two moves are a kill and then a pause of the poller, the pause longer than a
    lease (every run sees both kinds of failover); the rest are drawn by the seed."""
    assert watch.next_epoch(0, 30) is not None, "no replica ever took the lease"
    kills: list[float] = []
    end = time.time() + plan.horizon
    moves = 0
    while time.time() < end:
        time.sleep(rng.uniform(*plan.every))
        epoch, holder = watch.now()
        slots = list(range(plan.replicas))
        pids = {replicas.pid(s): s for s in slots}
        poller = pids.get(holder) if holder is not None else None
        hit_poller = poller is not None and (moves < 2 or rng.random() < plan.poller_chance)
        slot = poller if hit_poller and poller is not None else rng.choice(slots)
        kill = moves == 0 or (moves > 1 and rng.random() < plan.kill_chance)
        moves += 1
        if kill:
            kills.append(replicas.signal(slot, signal.SIGKILL))
            figures.kills += 1
            if slot == poller:
                came = watch.next_epoch(epoch, 4 * plan.lease)
                if came is not None:
                    figures.failovers_kill.append(came - kills[-1])
            time.sleep(rng.uniform(0.3, 1.0))
            replicas.start(slot)
            log(f"  killed replica {slot}{_POLLER if slot == poller else ''}")
        else:
            length = plan.pause[1] if moves == 2 else rng.uniform(*plan.pause)
            at = replicas.signal(slot, signal.SIGSTOP)
            figures.pauses += 1
            if slot == poller:
                came = watch.next_epoch(epoch, length)
                if came is not None:
                    figures.failovers_pause.append(came - at)
            time.sleep(max(0.0, at + length - time.time()))
            replicas.signal(slot, signal.SIGCONT)
            log(f"  paused replica {slot} for {length:.1f}s{_POLLER if slot == poller else ''}")
    return kills


def spread(values: list[float]) -> str:
    """`median / worst (n)` in seconds, or `-`."""
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} / {max(values):.2f} s ({len(values)})"


def chaos_table(runs: list[ChaosFigures]) -> str:
    """The figures of several runs, one line each."""
    head = (
        "seed",
        "replicas",
        "kills",
        "pauses",
        "epochs",
        "stale writes",
        "expected",
        "delivered",
        "dup",
        "lost",
        "req/h",
        "rounds/allowed",
    )
    rows: list[tuple[str, ...]] = [head]
    for f in runs:
        a = f.alerts
        rows.append(
            (
                str(f.plan.seed),
                str(f.plan.replicas),
                str(f.kills),
                str(f.pauses),
                str(f.epochs),
                str(f.stale_writes),
                str(a.expected),
                str(a.delivered),
                str(a.duplicated),
                str(len(a.lost)),
                f"{f.requests_per_hour:.0f}",
                f"{f.rounds}/{f.rounds_allowed:.0f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    kills = [x for f in runs for x in f.failovers_kill]
    pauses = [x for f in runs for x in f.failovers_pause]
    lines.append(f"failover after a kill of the poller (median / worst): {spread(kills)}")
    lines.append(f"failover after a pause of the poller (median / worst): {spread(pauses)}")
    return "\n".join(lines)

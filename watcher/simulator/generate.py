"""Large reproducible scenarios for benchmarks."""

from __future__ import annotations

import random

from watcher.simulator.lifecycle import Outcome
from watcher.simulator.scenario import (
    MONTH,
    DataSourceSpec,
    Event,
    JobSpec,
    KbSpec,
    Scenario,
    StartJob,
)

_HISTORY_OUTCOMES = [Outcome.COMPLETED] * 7 + [Outcome.NO_CHANGES] * 2 + [Outcome.PARTIAL]
_BUSY_OUTCOMES = [Outcome.COMPLETED] * 6 + [Outcome.NO_CHANGES, Outcome.PARTIAL, Outcome.FAILED]


def generated_scenario(n_kbs: int, busy: bool, seed: int = 0) -> Scenario:
    """A reproducible account of `n_kbs` KBs with finished history; if `busy`, 40% run jobs."""
    rng = random.Random(seed)
    kbs: list[KbSpec] = []
    events: list[Event] = []
    for index in range(n_kbs):
        key = f"kb-{index:05d}"
        sources = tuple(
            DataSourceSpec(f"{key}-ds{j}", rng.randint(5, 400)) for j in range(rng.randint(1, 3))
        )
        kbs.append(KbSpec(key, f"generated-{index:05d}", sources, created=-3 * MONTH))
        ago = rng.uniform(2.0, 20.0) * 3600
        for _ in range(rng.randint(1, 4)):
            outcome = rng.choice(_HISTORY_OUTCOMES)
            job = JobSpec(
                key, pending=rng.uniform(1, 30), run=rng.uniform(30, 900), outcome=outcome
            )
            events.append(Event(-ago, StartJob(job)))
            ago += rng.uniform(6.0, 48.0) * 3600
        if busy and rng.random() < 0.4:
            outcome = rng.choice(_BUSY_OUTCOMES)
            job = JobSpec(
                key, pending=rng.uniform(0.5, 5), run=rng.uniform(5, 120), outcome=outcome
            )
            events.append(Event(rng.uniform(-20.0, 60.0), StartJob(job)))
    timeline = tuple(sorted(events, key=lambda e: e.at))
    label = "busy" if busy else "idle"
    name = f"generated-{n_kbs}-{label}-{seed}"
    return Scenario(name, tuple(kbs), timeline, f"{n_kbs} generated KBs ({label})")

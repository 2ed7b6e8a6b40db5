"""A simulated DigitalOcean GenAI API (knowledge bases and indexing jobs) for tests and demos.

It is a real HTTP server (Starlette behind uvicorn, on 127.0.0.1) whose answers follow the
OpenAPI shapes, whose jobs live through scripted lifecycles on a controllable clock, and
which can be told to misbehave::

    sim = Simulator(load_scenario("demo"), token="sim-token", clock=ManualClock())
    async with serve(sim) as base_url:
        sim.advance(10)                      # lifecycles and the timeline follow
        sim.inject(Fault(FaultKind.SERVER_ERROR, status=503, count=2))
        ...
    sim.requests                             # every request, with status and faults applied
    sim.transitions()                        # when each job moment happened (simulated, wall)

Modules: `clock` (time), `lifecycle` (one job as a function of time), `wire` (its JSON),
`world` (the account and DigitalOcean's rules), `scenario` (the data format), `loading`
(bundled and file scenarios), `generate` (benchmark scenarios), `faults`, `ratelimit`,
`backend` (what the HTTP layers need of the simulator, the request log's records), `gate` (the
ASGI layer: limits, auth, faults, log), `app` (routes), `simulator` (the object tests hold),
`server` (uvicorn), `accounts` (several tokens, each its own world, on one address).
"""

from watcher.simulator.accounts import Accounts
from watcher.simulator.backend import ServedRequest
from watcher.simulator.clock import Clock, ManualClock, RealClock
from watcher.simulator.faults import Fault, FaultKind
from watcher.simulator.generate import generated_scenario
from watcher.simulator.lifecycle import Outcome
from watcher.simulator.loading import bundled_scenarios, load_scenario
from watcher.simulator.scenario import Scenario, ScenarioError
from watcher.simulator.server import run_standalone, serve, serve_in_thread
from watcher.simulator.simulator import Simulator, SkippedAction, TransitionRecord

__all__ = [
    "Accounts",
    "Clock",
    "Fault",
    "FaultKind",
    "ManualClock",
    "Outcome",
    "RealClock",
    "Scenario",
    "ScenarioError",
    "ServedRequest",
    "Simulator",
    "SkippedAction",
    "TransitionRecord",
    "bundled_scenarios",
    "generated_scenario",
    "load_scenario",
    "run_standalone",
    "serve",
    "serve_in_thread",
]

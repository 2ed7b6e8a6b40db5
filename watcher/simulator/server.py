"""Serving a simulator over HTTP on 127.0.0.1 with uvicorn: in the current loop, in a thread,
or standalone until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import uvicorn
from starlette.types import ASGIApp

from watcher.simulator.accounts import Accounts
from watcher.simulator.clock import RealClock
from watcher.simulator.loading import load_scenario
from watcher.simulator.simulator import Simulator

HOST = "127.0.0.1"
START_TIMEOUT = 10.0


class Served(Protocol):
    """What can be served: a `Simulator`, or `watcher.simulator.accounts.Accounts`."""

    @property
    def app(self) -> ASGIApp: ...


def _server(sim: Served, port: int, tls: tuple[Path, Path] | None = None) -> uvicorn.Server:
    config = uvicorn.Config(
        sim.app,
        host=HOST,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        date_header=False,  # the gate sends the simulated API's own Date
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    return uvicorn.Server(config)


def _base_url(server: uvicorn.Server) -> str:
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if server.config.ssl_certfile else "http"
    return f"{scheme}://{HOST}:{port}"


async def _serve(server: uvicorn.Server) -> None:
    """`server.serve()`, with uvicorn's exit on a port it cannot bind (`SystemExit`) turned
    into an `OSError`: a task ending in `SystemExit` escapes the event loop and is later
    logged as "never retrieved", traceback and all."""
    try:
        await server.serve()
    except SystemExit as exc:
        port = server.config.port
        raise OSError(f"could not listen on {HOST}:{port} (is the port in use?)") from exc


async def _start(server: uvicorn.Server) -> asyncio.Task[None]:
    """Run `server.serve()` as a task and return it once the socket is listening; raises
    `OSError` when the port cannot be listened on."""
    task = asyncio.create_task(_serve(server), name="watcher-simulator")
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the simulated API stopped before it started")
        if time.monotonic() > deadline:
            task.cancel()
            raise RuntimeError("the simulated API did not start in time")
        await asyncio.sleep(0.002)
    return task


@contextlib.asynccontextmanager
async def serve(
    sim: Served, port: int = 0, *, tls: tuple[Path, Path] | None = None
) -> AsyncIterator[str]:
    """Serve `sim` in the running event loop; yields the base URL, stops on exit.

    `tls` is (certificate chain file, key file): the simulator then speaks HTTPS (to test a
    private CA, as behind a TLS-inspecting proxy).
    """
    server = _server(sim, port, tls)
    task = await _start(server)
    try:
        yield _base_url(server)
    finally:
        server.should_exit = True
        await task


@contextlib.contextmanager
def serve_in_thread(sim: Served, port: int = 0) -> Iterator[str]:
    """Serve `sim` from a background thread with its own loop; yields the base URL."""
    server = _server(sim, port)
    thread = threading.Thread(target=server.run, name="watcher-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=START_TIMEOUT)
            raise RuntimeError("the simulated API did not start")
        time.sleep(0.002)
    try:
        yield _base_url(server)
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT)


async def _serve_until_stopped(
    served: Served, sims: list[Simulator], port: int, speed: float, scenario: str
) -> None:
    server = _server(served, port)
    task = await _start(server)
    url = _base_url(server)
    sim = sims[0]
    print(f"Simulated DigitalOcean GenAI API: scenario {scenario!r} at {speed:g}x speed")
    if sim.api_clock_offset:
        print(f"  clock:    {sim.api_clock_offset.total_seconds():+g}s off this machine's")
    print(f"  base URL: {url}")
    print(f"  token:    {sim.token}")
    for name, scopes in sim.scoped_tokens.items():
        print(f"  token:    {name} (only {', '.join(sorted(scopes)) or 'no scope'})")
    for other in sims[1:]:
        print(f"  token:    {other.token} (another account: scenario {other.scenario.name!r})")
    print(f"  try:      curl -H 'Authorization: Bearer {sim.token}' {url}/v2/gen-ai/indexing_jobs")
    print("Press Ctrl-C to stop.", flush=True)
    await task


def run_standalone(
    port: int,
    scenario: str,
    token: str,
    speed: float = 1.0,
    clock_offset: float = 0.0,
    scoped_tokens: Mapping[str, frozenset[str]] | None = None,
    accounts: Mapping[str, str] | None = None,
) -> None:
    """Serve a bundled scenario on 127.0.0.1:`port` in real time until Ctrl-C, its clock
    `clock_offset` seconds ahead of this machine's (behind when negative); `scoped_tokens`
    are accepted with only their scopes (403 otherwise). `accounts` (token: scenario) are
    further accounts on the same address, each its own world (`watcher.simulator.accounts`)."""
    clock = RealClock(speed)
    sims = [
        Simulator(
            load_scenario(scenario),
            token=token,
            clock=clock,
            api_clock_offset=clock_offset,
            scoped_tokens=scoped_tokens,
        )
    ]
    for number, (other, name) in enumerate((accounts or {}).items(), start=2):
        # a world of its own: the uuids derive from the scenario's name
        world = replace(load_scenario(name), name=f"{load_scenario(name).name}-account{number}")
        sims.append(Simulator(world, token=other, clock=clock, api_clock_offset=clock_offset))
    served: Served = sims[0] if len(sims) == 1 else Accounts(sims)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop serving
        asyncio.run(_serve_until_stopped(served, sims, port, speed, scenario))

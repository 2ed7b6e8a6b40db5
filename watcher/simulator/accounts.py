"""Several DigitalOcean accounts behind one simulated API: each token its own `Simulator`.

DigitalOcean scopes everything by the token's account: another team's token lists other
knowledge bases, other jobs, and has its own rate limit. `Accounts` serves one `Simulator` per
token on one address: a request goes to the simulator whose token (main or scoped) it
carries, a signed object-storage URL to the simulator whose signature it bears, and a request
with no known token to the first simulator, which answers 401 as DigitalOcean does::

    prod = Simulator(load_scenario("demo"), token="tok-prod", clock=clock)
    staging = Simulator(load_scenario("demo"), token="tok-staging", clock=clock)
    async with serve(Accounts([prod, staging])) as base_url:
        ...
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from watcher.simulator.extras import SPACES, signature
from watcher.simulator.simulator import Simulator


class Accounts:
    """One simulated API address in front of several simulators, one per account (token)."""

    def __init__(self, simulators: Sequence[Simulator]) -> None:
        if not simulators:
            raise ValueError("Accounts needs at least one simulator")
        tokens = [t for sim in simulators for t in (sim.token, *sim.scoped_tokens)]
        if len(set(tokens)) != len(tokens):
            raise ValueError("each account's simulator needs tokens of its own")
        self.simulators = tuple(simulators)

    @property
    def app(self) -> ASGIApp:
        """The ASGI application that hands each request to its account's simulator."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.account_of(scope).app(scope, receive, send)

    def account_of(self, scope: Scope) -> Simulator:
        """The simulator the request belongs to (the first when its token is unknown)."""
        path = str(scope.get("path", ""))
        if path.startswith(SPACES):
            return self._signer(path, scope.get("query_string", b"").decode("latin-1"))
        token = _bearer(scope)
        for sim in self.simulators:
            if token is not None and any(
                hmac.compare_digest(token.encode(), known.encode())
                for known in (sim.token, *sim.scoped_tokens)
            ):
                return sim
        return self.simulators[0]

    def _signer(self, path: str, query: str) -> Simulator:
        uuid = path[len(SPACES) :].removesuffix(".csv")
        given = parse_qs(query).get("X-Amz-Signature", [""])[0]
        for sim in self.simulators:
            if hmac.compare_digest(given, signature(sim.token, uuid)):
                return sim
        return self.simulators[0]


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" else None
    return None

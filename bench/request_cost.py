"""CPU per request of the API client, next to urllib (the floor), for one KB-list page.

    .venv/bin/python bench/request_cost.py [--kbs 10 120 200] [--requests 300] [--rounds 3]
        [--only urllib http.client httpx httpx-tuned aiohttp client client-new-conn] [--tls]

For each account size, a child process builds the simulator's idle generated account
(`generated_scenario(kbs, busy=False, seed=7)`), reads `GET /v2/gen-ai/knowledge_bases?
page=1&per_page=200` from it once over HTTP, and then replays that answer (its status line,
headers and body; a fresh `Date` each time) on 127.0.0.1 from a small keep-alive server, so
that none of the server's CPU is counted here and every answer is the simulator's real page.
This process then sends `--requests` requests per way and reads `time.process_time()` (user +
system CPU of this process, every thread) around them: CPU seconds, not wall, so other work on
a shared machine moves the figures little. The ways are run in turn, `--rounds` times, and
the median per round is printed, in microseconds per request.

- `urllib`: `urllib.request.urlopen` and `read()` (a new connection each time): the floor
  that `cycle_cost.py` compares the watcher with.
- `http.client`: one kept-alive `http.client.HTTPConnection`, `getresponse().read()`.
- `httpx`: a default `httpx.AsyncClient`, `await client.get(...)`, body read.
- `httpx-tuned`: httpx without per-operation timeouts (one `asyncio.timeout` around the
  exchange), the query already in the URL, the body streamed (not in the default set).
- `aiohttp`: aiohttp's `ClientSession`, the body streamed (not a dependency of the watcher:
  installed by hand to measure it; not in the default set).
- `client`: the watcher's `ApiClient.list_knowledge_bases()` (one page: one request), the
  whole request path: the budget, the size cap, the `Date` clock, the rate-limit headers and
  the page memo (the bytes are unchanged, so the page is not decoded again).
- `client-new-conn`: the same on a new connection for every request, as in production when the
  poll interval (60 s) outlasts httpx's keep-alive (5 s): with `--tls` (the replay served over
  HTTPS with a `trustme` test CA, as the real API is), that is a TLS handshake a cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import ssl
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from functools import partial
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import httpx  # noqa: E402

from watcher.edges.api.client import ApiClient, ApiSettings  # noqa: E402
from watcher.service.logs import configure_logging  # noqa: E402
from watcher.simulator import RealClock, Simulator, generated_scenario, serve_in_thread  # noqa: E402

TOKEN = "dop_v1_" + "b" * 64
PATH = "/v2/gen-ai/knowledge_bases?page=1&per_page=200"
WAYS = ("urllib", "http.client", "httpx", "httpx-tuned", "aiohttp", "client", "client-new-conn")
TRUST: ssl.SSLContext | None = None
"""With `--tls`: the context that trusts the replaying server's test CA."""
DEFAULT_WAYS = ("urllib", "http.client", "httpx", "client")


def _capture(kbs: int) -> tuple[int, list[tuple[str, str]], bytes]:
    """The simulator's real answer for the first page of the KB list."""
    sim = Simulator(
        generated_scenario(kbs, False, 7), token=TOKEN, clock=RealClock(1.0), per_minute=10**6
    )
    with serve_in_thread(sim) as base_url:
        request = urllib.request.Request(
            base_url + PATH, headers={"Authorization": "Bearer " + TOKEN}
        )
        with urllib.request.urlopen(request) as answer:
            return answer.status, list(answer.headers.items()), answer.read()


def _serve(kbs: int, ready: multiprocessing.connection.Connection, chain: str | None) -> None:
    """Replay the captured answer to every request, keeping connections alive (over TLS
    with the certificate chain and key in the file `chain`, when given)."""
    status, headers, body = _capture(kbs)
    kept = [(k, v) for k, v in headers if k.lower() not in ("date", "connection")]

    def head() -> bytes:
        lines = [f"HTTP/1.1 {status} OK", f"date: {formatdate(usegmt=True)}"]
        lines += [f"{k}: {v}" for k, v in kept]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                if not request:
                    break
                writer.write(head() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        tls = None
        if chain is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(chain)
        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=tls)
        port = server.sockets[0].getsockname()[1]
        ready.send((f"{'https' if tls else 'http'}://127.0.0.1:{port}", len(body)))
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _per_request(run: Callable[[int], None], n: int) -> float:
    """Microseconds of this process's CPU per request, over `n` requests."""
    run(max(5, n // 20))  # warm up: connections, memos, imports
    started = time.process_time()
    run(n)
    return (time.process_time() - started) / n * 1e6


def _urllib(base: str) -> Callable[[int], None]:
    headers = {"Authorization": "Bearer " + TOKEN}

    def run(n: int) -> None:
        for _ in range(n):
            request = urllib.request.Request(base + PATH, headers=headers)
            with urllib.request.urlopen(request, context=TRUST) as r:
                r.read()

    return run


def _http_client(base: str) -> Callable[[int], None]:
    host, port = base.split("//")[1].split(":")
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection(host, int(port), context=TRUST)
        if TRUST
        else http.client.HTTPConnection(host, int(port))
    )
    headers = {"Authorization": "Bearer " + TOKEN}

    def run(n: int) -> None:
        for _ in range(n):
            conn.request("GET", PATH, headers=headers)
            conn.getresponse().read()

    return run


def _in_loop(
    make: Callable[[], Awaitable[Callable[[int], Awaitable[None]]]],
) -> Callable[[int], None]:
    """An async way run on one event loop that lives as long as the way."""
    loop = asyncio.new_event_loop()
    step = loop.run_until_complete(make())

    def run(n: int) -> None:
        loop.run_until_complete(step(n))

    return run


def _httpx(base: str) -> Callable[[int], None]:
    import httpx

    async def make() -> Callable[[int], Awaitable[None]]:
        headers = {"Authorization": "Bearer " + TOKEN}
        client = httpx.AsyncClient(base_url=base, headers=headers, verify=TRUST or True)

        async def step(n: int) -> None:
            for _ in range(n):
                (await client.get(PATH)).raise_for_status()

        return step

    return _in_loop(make)


def _httpx_tuned(base: str) -> Callable[[int], None]:
    """httpx with the options that could matter: no per-operation timeouts (one deadline
    around the whole exchange instead), the query already in the URL, the body streamed."""
    import httpx

    async def make() -> Callable[[int], Awaitable[None]]:
        headers = {"Authorization": "Bearer " + TOKEN}
        trust = TRUST or True
        client = httpx.AsyncClient(base_url=base, headers=headers, timeout=None, verify=trust)

        async def step(n: int) -> None:
            for _ in range(n):
                async with asyncio.timeout(30), client.stream("GET", PATH) as answer:
                    body = bytearray()
                    async for chunk in answer.aiter_raw():
                        body += chunk

        return step

    return _in_loop(make)


def _aiohttp(base: str) -> Callable[[int], None]:
    """aiohttp (not a dependency: `pip install aiohttp` to measure it), the body streamed."""
    import aiohttp

    async def make() -> Callable[[int], Awaitable[None]]:
        headers = {"Authorization": "Bearer " + TOKEN}
        connector = aiohttp.TCPConnector(ssl=TRUST or True)
        session = aiohttp.ClientSession(
            base_url=base, headers=headers, auto_decompress=False, connector=connector
        )

        async def step(n: int) -> None:
            for _ in range(n):
                async with asyncio.timeout(30), session.get(PATH) as answer:
                    body = bytearray()
                    async for chunk in answer.content.iter_any():
                        body += chunk

        return step

    return _in_loop(make)


def _client(base: str, *, keep_alive: bool = True) -> Callable[[int], None]:
    async def make() -> Callable[[int], Awaitable[None]]:
        settings = ApiSettings(base_url=base, max_requests_per_minute=10**9, verify=TRUST or True)
        transport = None
        if not keep_alive:  # as in production when the poll interval outlasts httpx's 5 s
            limits = httpx.Limits(max_keepalive_connections=0)
            transport = httpx.AsyncHTTPTransport(verify=TRUST or True, limits=limits)
        client = ApiClient(settings, TOKEN, token_source="bench", transport=transport)

        async def step(n: int) -> None:
            for _ in range(n):
                await client.list_knowledge_bases()

        return step

    return _in_loop(make)


MAKERS: dict[str, Callable[[str], Callable[[int], None]]] = {
    "urllib": _urllib,
    "http.client": _http_client,
    "httpx": _httpx,
    "httpx-tuned": _httpx_tuned,
    "aiohttp": _aiohttp,
    "client": _client,
    "client-new-conn": partial(_client, keep_alive=False),
}


def measure(kbs: int, ways: list[str], n: int, rounds: int, chain: str | None) -> dict[str, float]:
    """Median µs of CPU per request for each way, its runs interleaved round by round."""
    here, there = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(kbs, there, chain), daemon=True)
    server.start()
    try:
        base, size = here.recv()
        print(f"{kbs} KBs: page of {size:,} bytes", file=sys.stderr)
        runs = {way: MAKERS[way](base) for way in ways}
        samples: dict[str, list[float]] = {way: [] for way in ways}
        for _ in range(rounds):
            for way in ways:
                samples[way].append(_per_request(runs[way], n))
        return {way: statistics.median(values) for way, values in samples.items()}
    finally:
        server.terminate()
        server.join()


def _test_ca(folder: str) -> str:
    """A test CA that `TRUST` trusts, and the file of a certificate and key for 127.0.0.1."""
    import trustme

    global TRUST
    authority = trustme.CA()
    chain = str(Path(folder) / "chain.pem")
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(chain)
    TRUST = ssl.create_default_context()
    authority.configure_trust(TRUST)
    return chain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kbs", type=int, nargs="+", default=[10, 120, 200])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=WAYS, default=list(DEFAULT_WAYS))
    parser.add_argument("--json", action="store_true", help="one JSON line per size")
    parser.add_argument("--tls", action="store_true", help="HTTPS with a test CA (trustme)")
    args = parser.parse_args()
    chain = _test_ca(tempfile.mkdtemp(prefix="request-cost-")) if args.tls else None
    configure_logging("info", "json")  # as the daemon runs: its debug lines filtered out
    print(f"CPU µs per request (median of {args.rounds} rounds of {args.requests})")
    print(f"{'KBs':>5} " + " ".join(f"{way:>12}" for way in args.only))
    for kbs in args.kbs:
        figures = measure(kbs, args.only, args.requests, args.rounds, chain)
        if args.json:
            print(json.dumps({"kbs": kbs, **figures}))
        print(f"{kbs:>5} " + " ".join(f"{figures[way]:>12.0f}" for way in args.only), flush=True)


if __name__ == "__main__":
    main()

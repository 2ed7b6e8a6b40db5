"""Who may read and who may write: the rules as a table, then as real requests."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.edges.web.conftest import TOKEN, Serve
from tests.edges.web.history import KbPlan, settle, write_history
from watcher.core.outbox import DeliveryState
from watcher.edges.store.sqlite import SqliteStore
from watcher.edges.web.access import Access, Need, Verdict

BEARER = f"Bearer {TOKEN}"
BASIC = "Basic " + base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
WRONG = "Bearer not-the-token-but-long-enough"
LOCAL = "127.0.0.1:9187"

_LOOPBACK = Access(loopback=True)
_LOOPBACK_TOKEN = Access(loopback=True, token=TOKEN)
_WIDE = Access(loopback=False)
_WIDE_TOKEN = Access(loopback=False, token=TOKEN)


@pytest.mark.parametrize(
    ("access", "need", "authorization", "host", "verdict"),
    [
        # Probes are open everywhere: kubelets send no credentials.
        (_WIDE_TOKEN, Need.PROBE, None, "10.0.0.5:9187", Verdict.ALLOW),
        (_WIDE, Need.PROBE, None, "10.0.0.5:9187", Verdict.ALLOW),
        # Loopback: reads open, under a loopback name only (DNS rebinding).
        (_LOOPBACK, Need.READ, None, LOCAL, Verdict.ALLOW),
        (_LOOPBACK, Need.READ, None, "localhost:9187", Verdict.ALLOW),
        (_LOOPBACK, Need.READ, None, "[::1]:9187", Verdict.ALLOW),
        (_LOOPBACK, Need.READ, None, "evil.example:9187", Verdict.FOREIGN_HOST),
        (_LOOPBACK, Need.METRICS, None, "evil.example", Verdict.FOREIGN_HOST),
        # ...unless the token comes with it (a reverse proxy under its own name).
        (_LOOPBACK_TOKEN, Need.READ, BEARER, "watcher.example", Verdict.ALLOW),
        # Writes always need the token, as a Bearer header; without a token file, none.
        (_LOOPBACK, Need.WRITE, BEARER, LOCAL, Verdict.WRITES_OFF),
        (_LOOPBACK_TOKEN, Need.WRITE, None, LOCAL, Verdict.NO_CREDENTIALS),
        (_LOOPBACK_TOKEN, Need.WRITE, WRONG, LOCAL, Verdict.NO_CREDENTIALS),
        (_LOOPBACK_TOKEN, Need.WRITE, BASIC, LOCAL, Verdict.NO_CREDENTIALS),  # CSRF-proof
        (_LOOPBACK_TOKEN, Need.WRITE, BEARER, LOCAL, Verdict.ALLOW),
        (_LOOPBACK_TOKEN, Need.WRITE, "bearer  " + TOKEN, LOCAL, Verdict.ALLOW),
        # Beyond loopback with a token: every read needs it, Bearer or Basic.
        (_WIDE_TOKEN, Need.READ, None, "10.0.0.5:9187", Verdict.NO_CREDENTIALS),
        (_WIDE_TOKEN, Need.READ, WRONG, "10.0.0.5:9187", Verdict.NO_CREDENTIALS),
        (_WIDE_TOKEN, Need.READ, BEARER, "10.0.0.5:9187", Verdict.ALLOW),
        (_WIDE_TOKEN, Need.READ, BASIC, "10.0.0.5:9187", Verdict.ALLOW),
        (_WIDE_TOKEN, Need.READ, "Basic !!notbase64", "10.0.0.5:9187", Verdict.NO_CREDENTIALS),
        (_WIDE_TOKEN, Need.METRICS, None, "10.0.0.5:9187", Verdict.NO_CREDENTIALS),
        (_WIDE_TOKEN, Need.METRICS, BEARER, "10.0.0.5:9187", Verdict.ALLOW),
        # Beyond loopback without a token file: no page; metrics as before the page.
        (_WIDE, Need.READ, BEARER, "10.0.0.5:9187", Verdict.NOT_SERVED),
        (_WIDE, Need.METRICS, None, "10.0.0.5:9187", Verdict.ALLOW),
        (_WIDE, Need.WRITE, BEARER, "10.0.0.5:9187", Verdict.WRITES_OFF),
    ],
)
def test_the_access_rules(
    access: Access, need: Need, authorization: str | None, host: str, verdict: Verdict
) -> None:
    assert access.judge(need, authorization, host) is verdict


async def _dead_letter(store: SqliteStore) -> int:
    uuid = "dddddddd-0000-4000-8000-000000000004"
    await write_history(store, [KbPlan(uuid, "delta", ["failed"])])
    [row] = await settle(store, DeliveryState.DEAD, limit=1, error="refused (HTTP 404)")
    return row


async def test_an_unauthenticated_write_is_refused_and_an_authenticated_one_retries(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    row = await _dead_letter(store)
    base = await serve(Access(loopback=True, token=TOKEN))
    url = f"{base}/api/v1/deliveries/{row}/retry"

    anonymous = await client.post(url)
    basic = await client.post(url, headers={"authorization": BASIC})
    wrong = await client.post(url, headers={"authorization": WRONG})
    assert [r.status_code for r in (anonymous, basic, wrong)] == [401, 401, 401]
    assert anonymous.json()["error"] == "this needs the token of http.auth_token_file"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert (await store.outbox_counts()).by_state[DeliveryState.DEAD] == 1  # nothing changed

    done = await client.post(url, headers={"authorization": BEARER})
    again = await client.post(url, headers={"authorization": BEARER})
    assert done.status_code == 200 and done.json() == {"retried": [row]}
    assert again.status_code == 409 and "not a dead letter" in again.json()["error"]
    counts = await store.outbox_counts()
    assert counts.by_state[DeliveryState.DEAD] == 0 and counts.by_state[DeliveryState.PENDING] == 1


async def test_without_a_token_file_the_page_refuses_every_write_and_says_how(
    serve: Serve, store: SqliteStore, client: httpx.AsyncClient
) -> None:
    row = await _dead_letter(store)
    base = await serve(Access(loopback=True))
    answer = await client.post(f"{base}/api/v1/deliveries/{row}/retry")
    assert answer.status_code == 403
    assert "watcher retry ID" in answer.json()["error"]
    page = (await client.get(f"{base}/deliveries?state=dead")).text
    assert "data-retry" not in page and "needs <code>http.auth_token_file</code>" in page


async def test_beyond_loopback_the_page_asks_a_browser_for_the_token_and_probes_stay_open(
    serve: Serve, client: httpx.AsyncClient
) -> None:
    base = await serve(Access(loopback=False, token=TOKEN))
    page = await client.get(base + "/")
    assert page.status_code == 401
    assert 'Basic realm="gradient-watcher"' in page.headers["www-authenticate"]
    assert (await client.get(base + "/", headers={"authorization": BASIC})).status_code == 200
    assert (await client.get(base + "/api/v1/watcher")).status_code == 401
    api = await client.get(base + "/api/v1/watcher", headers={"authorization": BEARER})
    assert api.status_code == 200 and api.json()["version"] == "0.1.0"
    assert (await client.get(base + "/metrics")).status_code == 401
    assert (await client.get(base + "/healthz")).status_code == 200


async def test_beyond_loopback_without_a_token_file_only_probes_and_metrics_are_served(
    serve: Serve, client: httpx.AsyncClient
) -> None:
    base = await serve(Access(loopback=False))
    page = await client.get(base + "/")
    assert page.status_code == 403 and "SSH tunnel" in page.text
    assert (await client.get(base + "/api/v1/knowledge_bases")).status_code == 403
    assert (await client.get(base + "/metrics")).status_code == 200
    assert (await client.get(base + "/readyz")).status_code in (200, 503)


async def test_a_page_under_a_foreign_name_is_refused_on_loopback(
    serve: Serve, client: httpx.AsyncClient
) -> None:
    """DNS rebinding: a site whose name resolves to 127.0.0.1 reads nothing through a browser."""
    base = await serve()
    refused = await client.get(base + "/api/v1/knowledge_bases", headers={"host": "evil.example"})
    assert refused.status_code == 403 and "loopback name" in refused.json()["error"]
    probe = await client.get(base + "/healthz", headers={"host": "evil.example"})
    assert probe.status_code == 200  # a probe tells nothing worth stealing

"""Several accounts behind one simulated API: each token sees its own world and rate limit."""

from __future__ import annotations

import httpx
import pytest

from tests.simulator import START, kb, start
from watcher.simulator import Accounts, ManualClock, Scenario, Simulator, serve

KBS = "/v2/gen-ai/knowledge_bases"


def world(name: str, kb_key: str) -> Scenario:
    return Scenario(name, (kb(kb_key),), (start(5, f"{kb_key}-job", kb_key),))


async def test_each_token_sees_its_own_accounts_knowledge_bases_and_jobs() -> None:
    clock = ManualClock(START)
    prod = Simulator(world("prod", "docs"), token="tok-prod", clock=clock)
    staging = Simulator(world("staging", "faq"), token="tok-staging", clock=clock)
    async with serve(Accounts([prod, staging])) as base_url, httpx.AsyncClient() as http:
        clock.advance(10)

        async def names(token: str) -> list[str]:
            answer = await http.get(base_url + KBS, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200
            return [item["name"] for item in answer.json()["knowledge_bases"]]

        assert await names("tok-prod") == ["docs-name"]
        assert await names("tok-staging") == ["faq-name"]
        other = await http.get(base_url + KBS, headers={"Authorization": "Bearer nope"})
        assert other.status_code == 401
    assert [r.status for r in prod.requests] == [200, 401]  # the unknown token: the first's
    assert [r.status for r in staging.requests] == [200]


def test_two_accounts_cannot_share_a_token() -> None:
    clock = ManualClock(START)
    one = Simulator(world("a", "docs"), token="same", clock=clock)
    two = Simulator(world("b", "faq"), token="same", clock=clock)
    with pytest.raises(ValueError, match="tokens of its own"):
        Accounts([one, two])

"""Every answer of the simulator, errors included, validated against DigitalOcean's OpenAPI file.

The simulator runs behind real uvicorn on loopback; a walker reads every list page (following
`links.pages.next`), every knowledge base, every KB job list, every job and its data sources
at many clock points of a scenario, then provokes every error answer. openapi-core (which
reads `openapi-genai-indexing.yaml` as it is, `example:` oddities included) validates each
answer against its operation; the few answers on paths the spec does not declare (an
unknown path, a wrong method) are validated with jsonschema against `components/schemas/error`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from tests.simulator import AUTH, DO_BASE, START
from watcher.simulator import (
    Fault,
    FaultKind,
    ManualClock,
    Scenario,
    Simulator,
    generated_scenario,
    load_scenario,
    serve,
)

SPEC = Path(__file__).resolve().parents[2] / ".." / "shared" / "api" / "openapi-genai-indexing.yaml"
pytestmark = pytest.mark.skipif(
    not SPEC.is_file(),
    reason=f"the OpenAPI file is not at {SPEC} (expected ../shared/api beside the repository)",
)

KBS = "/v2/gen-ai/knowledge_bases"
JOBS = "/v2/gen-ai/indexing_jobs"
_TEMPLATES = [
    ("GET", re.compile(r"^/v2/gen-ai/knowledge_bases/[^/]+/indexing_jobs$"), "kb indexing_jobs"),
    ("GET", re.compile(r"^/v2/gen-ai/knowledge_bases/[^/]+$"), "kb"),
    ("GET", re.compile(r"^/v2/gen-ai/knowledge_bases$"), "kbs"),
    ("GET", re.compile(r"^/v2/gen-ai/indexing_jobs/[^/]+/data_sources$"), "job data_sources"),
    ("PUT", re.compile(r"^/v2/gen-ai/indexing_jobs/[^/]+/cancel$"), "cancel"),
    ("GET", re.compile(r"^/v2/gen-ai/indexing_jobs/[^/]+/details_signed_url$"), "report url"),
    ("GET", re.compile(r"^/v2/gen-ai/indexing_jobs/[^/]+$"), "job"),
    ("GET", re.compile(r"^/v2/gen-ai/indexing_jobs$"), "jobs"),
    ("POST", re.compile(r"^/v2/gen-ai/indexing_jobs$"), "start"),
    ("GET", re.compile(r"^/v2/gen-ai/scheduled-indexing/knowledge-base/[^/]+$"), "schedule"),
    ("GET", re.compile(r"^/v2/gen-ai/models/catalog$"), "model catalog"),
    ("GET", re.compile(r"^/v2/gen-ai/models$"), "models"),
]


def _operation(method: str, path: str) -> str | None:
    """The spec operation a request addresses, or None when the spec declares none."""
    for verb, pattern, name in _TEMPLATES:
        if verb == method and pattern.match(path):
            return f"{verb} {name}"
    return None


class SpecChecker:
    """Validates answers against the spec and counts which operations and statuses it saw."""

    def __init__(self) -> None:
        self.openapi = OpenAPI.from_file_path(str(SPEC))
        spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
        self.error_schema = spec["components"]["schemas"]["error"]
        self.seen: Counter[tuple[str, int]] = Counter()
        self._valid: set[tuple[str | None, int, bytes, frozenset[str]]] = set()

    def check(self, response: httpx.Response) -> Any:
        """Validate one answer and return its JSON body."""
        url = response.request.url
        method = response.request.method
        for header in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
            assert response.headers[header].isdigit(), f"{method} {url.path}: bad {header}"
        operation = _operation(method, url.path)
        key = (operation, response.status_code, response.content, frozenset(response.headers))
        if operation is None:
            jsonschema.validate(response.json(), self.error_schema)
        elif key not in self._valid:
            request = MockRequest(DO_BASE, method, url.path, args=dict(url.params))
            content_type = response.headers["content-type"]
            answer = MockResponse(
                response.content, response.status_code, dict(response.headers), content_type
            )
            self.openapi.validate_response(request, answer)
            # the same body with the same (all-integer) headers cannot validate differently
            self._valid.add(key)
        self.seen[(operation or f"{method} (undeclared)", response.status_code)] += 1
        return response.json()


async def _pages(http: httpx.AsyncClient, checker: SpecChecker, path: str, key: str) -> list[Any]:
    """Every item of a paged list, following `links.pages.next`."""
    items: list[Any] = []
    url: str | None = f"{path}?per_page=3"
    while url is not None:
        body = checker.check(await http.get(url))
        items += body[key]
        url = body["links"]["pages"].get("next")
    return items


async def _walk(http: httpx.AsyncClient, checker: SpecChecker) -> int:
    """Read everything the account holds right now; returns the number of jobs seen."""
    kbs = await _pages(http, checker, KBS, "knowledge_bases")
    for kb in kbs:
        checker.check(await http.get(f"{KBS}/{kb['uuid']}"))
        checker.check(await http.get(f"{KBS}/{kb['uuid']}/indexing_jobs"))
    jobs = await _pages(http, checker, JOBS, "jobs")
    for job in jobs:
        checker.check(await http.get(f"{JOBS}/{job['uuid']}"))
        checker.check(await http.get(f"{JOBS}/{job['uuid']}/data_sources"))
    return len(jobs)


async def _run(scenario: Scenario, points: list[float], checker: SpecChecker) -> Simulator:
    sim = Simulator(scenario, "sim-token", ManualClock(START), per_hour=10**6, per_minute=10**6)
    async with serve(sim) as base_url, httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        elapsed = 0.0
        for point in points:
            sim.advance(point - elapsed)
            elapsed = point
            assert await _walk(http, checker) > 0
    return sim


@pytest.fixture(scope="module")
def checker() -> SpecChecker:
    return SpecChecker()


DEMO_POINTS = [0, 4, 8, 11.5, 12.5, 16, 23, 42, 120]


async def test_every_answer_of_a_whole_demo_run_matches_the_spec(checker: SpecChecker) -> None:
    sim = await _run(load_scenario("demo"), DEMO_POINTS, checker)
    operations = {op for op, status in checker.seen if status == 200}
    assert operations >= {
        "GET kbs",
        "GET kb",
        "GET kb indexing_jobs",
        "GET jobs",
        "GET job",
        "GET job data_sources",
    }
    assert len(sim.requests) > 300


async def test_every_answer_of_quiet_and_busy_generated_runs_matches_the_spec(
    checker: SpecChecker,
) -> None:
    await _run(load_scenario("quiet"), [0, 3600], checker)
    await _run(generated_scenario(8, busy=True, seed=1), [0, 30, 200], checker)


async def _provoke_errors(http: httpx.AsyncClient, sim: Simulator, checker: SpecChecker) -> None:
    idle = sim.kb_uuid("pricing")
    created = checker.check(await http.post(JOBS, json={"knowledge_base_uuid": idle}))
    uuid = created["job"]["uuid"]
    checker.check(await http.post(JOBS, json={"knowledge_base_uuid": idle}))  # 409
    checker.check(await http.post(JOBS, content=b"{broken"))  # 400
    checker.check(await http.post(JOBS, json={"knowledge_base_uuid": "nope"}))  # 404
    checker.check(await http.put(f"{JOBS}/{uuid}/cancel", json={"uuid": uuid}))  # 200
    checker.check(await http.put(f"{JOBS}/{uuid}/cancel", json={"uuid": uuid}))  # 422
    checker.check(await http.put(f"{JOBS}/nope/cancel", json={"uuid": "nope"}))  # 404
    for path in (f"{JOBS}/nope", f"{JOBS}/nope/data_sources", f"{KBS}/nope"):
        checker.check(await http.get(path))  # 404
    checker.check(await http.get(KBS, params={"page": "x"}))  # 400
    checker.check(await http.get(KBS, headers={"Authorization": "Bearer wrong"}))  # 401
    checker.check(await http.get("/v2/gen-ai/agents"))  # 404, not in the spec
    checker.check(await http.delete(JOBS))  # 405, not in the spec
    sim.inject(Fault(FaultKind.RATE_LIMITED, retry_after=3))
    sim.inject(Fault(FaultKind.SERVER_ERROR, status=500))
    sim.inject(Fault(FaultKind.SERVER_ERROR, status=503))
    for _ in range(3):
        checker.check(await http.get(JOBS))  # 429, 500, 503
    for _ in range(3):
        checker.check(await http.get(KBS))  # 429 from the sliding window
    sim.advance(60)
    checker.check(await http.get(KBS))


async def test_every_error_answer_matches_the_spec(checker: SpecChecker) -> None:
    sim = Simulator(load_scenario("demo"), "sim-token", ManualClock(START), per_minute=25)
    sim.advance(30)
    async with serve(sim) as base_url, httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        await _provoke_errors(http, sim, checker)
    statuses = [r.status for r in sim.requests]
    for expected in (200, 400, 401, 404, 405, 409, 422, 429, 500, 503):
        assert expected in statuses
    assert sim.requests[-1].status == 200


async def test_the_validator_rejects_an_unknown_enum_value(checker: SpecChecker) -> None:
    sim = Simulator(load_scenario("quiet"), "sim-token", ManualClock(START))
    sim.inject(Fault(FaultKind.UNKNOWN_ENUM))
    async with serve(sim) as base_url, httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        response = await http.get(JOBS)
    with pytest.raises(Exception, match="BATCH_JOB_PHASE_COMPLETED"):
        checker.check(response)


async def test_schedules_and_report_urls_match_the_spec_and_the_reports_download(
    checker: SpecChecker,
) -> None:
    """Every KB's schedule (404 without one), every finished job's signed URL, before and
    after runs and a schedule turned off; each report downloads without the token, and a
    wrong signature is refused."""
    sim = Simulator(
        load_scenario("schedules"),
        "sim-token",
        ManualClock(START),
        per_hour=10**6,
        per_minute=10**6,
    )
    reports = 0
    async with serve(sim) as base_url, httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        for point in (0, 15, 40):
            sim.advance(point - (sim.now() - START).total_seconds())
            for kb in await _pages(http, checker, KBS, "knowledge_bases"):
                checker.check(
                    await http.get(f"/v2/gen-ai/scheduled-indexing/knowledge-base/{kb['uuid']}")
                )
            for job in await _pages(http, checker, JOBS, "jobs"):
                answer = checker.check(await http.get(f"{JOBS}/{job['uuid']}/details_signed_url"))
                if "signed_url" in answer:
                    async with httpx.AsyncClient() as bare:  # no token: a signed URL needs none
                        report = await bare.get(answer["signed_url"])
                        assert report.status_code == 200
                        assert report.text.startswith("file,data_source_uuid,status,error")
                        forged = answer["signed_url"].rsplit("=", 1)[0] + "=0000"
                        assert (await bare.get(forged)).status_code == 403
                    reports += 1
    assert reports > 0
    assert {("GET schedule", 200), ("GET schedule", 404), ("GET report url", 200)} <= set(
        checker.seen
    )


async def test_the_models_the_catalog_and_a_403_for_a_missing_scope_match_the_spec(
    checker: SpecChecker,
) -> None:
    read_only = {"read-only": frozenset({"genai:read"})}
    sim = Simulator(load_scenario("demo"), "sim-token", ManualClock(START), scoped_tokens=read_only)
    sim.advance(30)
    async with serve(sim) as base_url, httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        usecase = {"usecases": "MODEL_USECASE_KNOWLEDGEBASE", "per_page": 1}
        for page in (1, 2):
            body = checker.check(
                await http.get("/v2/gen-ai/models", params={**usecase, "page": page})
            )
            assert len(body["models"]) == 1
        catalog = checker.check(await http.get("/v2/gen-ai/models/catalog", params={"limit": 1}))
        assert "links" not in catalog and catalog["meta"]["pages"] == 2
        kb = sim.kb_uuid("pricing")
        ro = {"Authorization": "Bearer read-only"}
        assert checker.check(await http.get(KBS, headers=ro))["knowledge_bases"]
        denied = await http.post(JOBS, json={"knowledge_base_uuid": kb}, headers=ro)
        assert checker.check(denied)["id"] == "forbidden"
        assert denied.status_code == 403
        cancel = await http.put(f"{JOBS}/x/cancel", json={"uuid": "x"}, headers=ro)
        assert cancel.status_code == 403 and "genai:update" in checker.check(cancel)["message"]
    assert ("GET models", 200) in checker.seen and ("GET model catalog", 200) in checker.seen

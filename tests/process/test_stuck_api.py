"""A real `watcher run` against an API that sends its headers and then one byte a second.

A read timeout between bytes never fires; only the cycle's deadline ends such a cycle. The
cycle counts as a failed API read, so `api_unreachable` is alerted after its threshold; the
next cycle starts on time; `/healthz` stays 200 (cycles finish: a restart would cure
nothing) while `/readyz` and `watcher health` say not ready, in the same words (one rule).
"""

from __future__ import annotations

import json
import re
import signal

from tests.harness import alerts_of
from tests.process.conftest import (
    Route,
    Service,
    config_text,
    free_port,
    http_get,
    manual_simulator,
    scenario,
    wait_for,
)
from watcher.core.model import EventKind
from watcher.simulator import Fault, FaultKind

LIMIT = "(limit 10s)"  # interval 1 s + 2 x cycle deadline 2 s + delivery timeout 5 s
DEADLINE = "the API was not read within the cycle deadline (2s)"


def test_a_dribbling_api_is_alerted_unreachable_and_probes_agree_while_cycles_go_on(
    service: Service,
) -> None:
    sim = manual_simulator(scenario([("alpha", "alpha-docs"), ("beta", "beta-docs")]))
    base_url = service.serve(sim)
    receiver = service.receiver()
    port = free_port()
    extra = '[alerts]\napi_unreachable_after = "5s"\n'
    text = config_text(
        base_url=base_url,
        state=service.state,
        routes=[Route("ops", (receiver.url_json("/ops"),), ("api_unreachable", "api_recovered"))],
        listen=f"127.0.0.1:{port}",
        extra=extra,
    )
    text = text.replace("[poll]\n", '[poll]\ncycle_deadline = "2s"\n')
    service.write_config(text)
    proc = service.run_daemon()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_get(url + "/readyz")[0] == 200, 10, "ready")

    dribble = Fault(FaultKind.DRIBBLE, count=None, path_prefix="/v2/gen-ai/knowledge_bases")
    sim.inject(dribble)
    began = len(proc.records("cycle_finished"))

    def kinds() -> list[EventKind]:
        return [a.kind for a in alerts_of([r for r in receiver.requests if r.answered == 200])]

    wait_for(lambda: EventKind.API_UNREACHABLE in kinds(), 30, "api_unreachable")
    wait_for(lambda: http_get(url + "/readyz")[0] == 503, 20, "not ready")
    status, body = http_get(url + "/readyz")
    assert status == 503, body
    ready_reason = json.loads(body)["reason"]
    probe = service.cli("health")
    live_status, live_body = http_get(url + "/healthz")
    assert (live_status, json.loads(live_body)["live"]) == (200, True), live_body
    assert probe.returncode == 1
    for reason in (ready_reason, probe.stderr):
        assert re.search(rf"last successful cycle \d+s ago {re.escape(LIMIT)}", reason), reason
        assert reason.rstrip().endswith(f"the last cycle failed: {DEADLINE}"), reason
    assert service.cli("health", "--live").returncode == 0

    failed = proc.records("cycle_finished")[began:]
    assert len(failed) >= 4
    # each ends at its 2 s deadline: never sooner, and later only by what follows the read
    # (a loaded machine's commit can wait seconds on the disk); without the deadline a page
    # dribbled a byte a second takes about 1,000 s
    assert all(not c["ok"] and 1.9 <= c["duration_s"] < 15 for c in failed[1:]), failed
    assert len(proc.records("cycle_deadline_passed")) >= 4

    sim.clear_faults()
    wait_for(lambda: EventKind.API_RECOVERED in kinds(), 30, "api_recovered")
    wait_for(lambda: http_get(url + "/readyz")[0] == 200, 20, "ready again")
    assert kinds() == [EventKind.API_UNREACHABLE, EventKind.API_RECOVERED]
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0, proc.tail()

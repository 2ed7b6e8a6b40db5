"""The running daemon's `/healthz`, `/readyz` and `/metrics`, and the `watcher health` probe."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.process.conftest import (
    Route,
    Service,
    config_text,
    free_port,
    http_get,
    manual_simulator,
    metrics_url,
    scenario,
    start_job,
    wait_for,
)
from tests.stores import open_held
from watcher.core.health import HEARTBEAT_KEY, Heartbeat, Probe
from watcher.service.quickhealth import quick_health
from watcher.service.runtime import utcnow
from watcher.simulator import Fault, FaultKind

P = "gradient_watcher_"
KBS = [("alpha", "alpha-docs"), ("beta", "beta-docs"), ("gamma", "gamma-docs")]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of `/metrics`, keyed by sample name and label set."""
    status, text = http_get(url)
    assert status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((P + name, frozenset(labels.items())))


def test_the_daemon_serves_health_readiness_and_metrics_that_describe_its_work(
    service: Service,
) -> None:
    sim = manual_simulator(
        scenario(
            KBS,
            [
                start_job(5, "alpha", "completed"),
                start_job(5, "beta", "failed"),
                start_job(5, "gamma", "partial"),
            ],
        )
    )
    base_url = service.serve(sim)
    ok, failing, refusing = service.receiver(), service.receiver(), service.receiver()
    failing.answer(500)  # retryable: stays pending
    refusing.answer(404)  # permanent: dead-lettered at once
    routes = [
        Route("ops", (ok.url_json(),)),
        Route("flaky", (failing.url_json(),)),
        Route("gone", (refusing.url_json(),)),
    ]
    port = free_port()
    listen = f"127.0.0.1:{port}"
    text = config_text(base_url=base_url, state=service.state, routes=routes, listen=listen)
    service.write_config(text)
    # The first cycle's KB list takes 2 s: long enough to ask /readyz before it succeeded.
    sim.inject(Fault(FaultKind.SLOW, delay=2.0, path_prefix="/v2/gen-ai/knowledge_bases"))
    proc = service.start("run")

    assert proc.wait_for_log("http_listening")["port"] == port
    status, body = http_get(metrics_url(proc, "/healthz"))
    assert (status, json.loads(body)["live"]) == (200, True), body
    assert json.loads(body)["reason"].startswith("starting: first cycle under way")
    status, body = http_get(metrics_url(proc, "/readyz"))
    assert (status, json.loads(body)["ready"]) == (503, False), body
    assert "no successful cycle" in json.loads(body)["reason"]
    proc.wait_for_log("cycle_finished")
    status, body = http_get(metrics_url(proc, "/readyz"))
    assert (status, json.loads(body)["ready"]) == (200, True), body

    sim.advance(20)
    url = metrics_url(proc, "/metrics")
    wait_for(
        lambda: (
            value(scrape(url), "dead_letters") == 3
            and value(scrape(url), "jobs", state="done") == 3
        ),
        15,
        "the finished jobs and dead letters in /metrics",
    )
    samples = scrape(url)
    assert (value(samples, "cycles_total", outcome="ok") or 0) >= 2
    assert value(samples, "cycles_total", outcome="error") == 0
    kb_list = value(
        samples, "api_requests_total", endpoint="/v2/gen-ai/knowledge_bases", status="200"
    )
    assert kb_list is not None and kb_list >= 2
    # New jobs on three KBs at once: read through the account-wide job list (one page),
    # which costs less than three per-KB latest-15 lists.
    account_jobs = "/v2/gen-ai/indexing_jobs"
    assert (value(samples, "api_requests_total", endpoint=account_jobs, status="200") or 0) >= 1
    remaining = value(samples, "api_ratelimit_remaining")
    assert remaining is not None and 0 < remaining < 5000
    assert {s: value(samples, "jobs", state=s) for s in ("pending", "running", "stalled")} == {
        "pending": 0,
        "running": 0,
        "stalled": 0,
    }
    for kind in ("completed", "failed", "partial"):
        assert value(samples, "events_total", kind=kind) == 1, kind
    assert value(samples, "events_total", kind="cancelled") == 0
    # the three outcomes, and `delivery_failing` about the route whose alerts were given up
    assert value(samples, "deliveries_total", route="ops", outcome="sent") == 4
    assert (value(samples, "deliveries_total", route="flaky", outcome="failed") or 0) >= 1
    assert value(samples, "deliveries_total", route="gone", outcome="dead") == 3
    # flaky's three outcomes, and the news that `gone` gave up, which flaky also asked for
    assert value(samples, "outbox_depth", state="pending") == 4
    assert value(samples, "outbox_depth", state="dead") == 3
    assert value(samples, "outbox_depth", state="sent") == 4  # with the news about `gone`
    assert value(samples, "poll_interval_seconds") == 1.0
    assert value(samples, "api_up") == 1

    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0, proc.tail()


async def _age_last_cycle(path: Path, by: timedelta) -> None:
    """Make the daemon's last heartbeat `by` older, on the monotonic clock it is measured on."""
    store = await open_held(path, utcnow())
    try:
        beat = Heartbeat.decode(await store.get_meta(HEARTBEAT_KEY))
        assert beat is not None and beat.last_ok is not None
        older = replace(beat, finished=beat.finished.minus(by), last_ok=beat.last_ok.minus(by))
        older = replace(older, stopped=None)  # as a daemon killed, not stopped, leaves it
        await store.set_meta(HEARTBEAT_KEY, older.encode())
    finally:
        await store.close()


def test_watcher_health_exits_0_while_the_daemon_is_healthy_and_1_when_stale_or_missing(
    service: Service,
) -> None:
    base_url = service.serve(manual_simulator(scenario(KBS)))
    receiver = service.receiver()
    routes = [Route("ops", (receiver.url_json(),))]
    service.write_config(config_text(base_url=base_url, state=service.state, routes=routes))

    missing = service.cli("health")
    assert missing.returncode == 1
    assert "no state file" in missing.stderr

    proc = service.run_daemon()
    healthy = service.cli("health")
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.startswith("ok: last successful cycle")
    assert "Polling every" in service.cli("status").stdout
    # the daemon stored the mark of the file it validated: the probe needs no config model
    probe = quick_health(str(service.dir / "watcher.toml"), service.env(), Probe.READY)
    assert asyncio.run(probe) is not None
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0
    stopped = service.cli("health")  # at once, not "ok" until the limit and "stuck" after it
    assert stopped.returncode == 1
    assert stopped.stderr.startswith("not running: the watcher stopped cleanly"), stopped.stderr
    assert service.cli("health", "--live").returncode == 1
    shown = service.cli("status").stdout
    assert "Polling: nobody polls now (the last every" in shown and "Polling every" not in shown

    asyncio.run(_age_last_cycle(service.state, timedelta(hours=1)))
    stale = service.cli("health")
    assert stale.returncode == 1
    assert re.search(r"stuck: the last cycle finished 36\d\ds ago \(limit 126s\)", stale.stderr)

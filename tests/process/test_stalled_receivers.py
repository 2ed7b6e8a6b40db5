"""Real processes and a receiver that stalls: `watcher run` keeps the other routes on time and
stops within its bounds; `watcher test-notify` ends at the deadline (issue: it hung, and a
stopped daemon lived on for a minute while apprise's shared threads waited on the receiver).
"""

from __future__ import annotations

import signal
import time

from tests.process.conftest import (
    Route,
    Service,
    alert_titles,
    config_text,
    manual_simulator,
    scenario,
    start_job,
    wait_for,
)

KBS = [(f"kb{n}", f"kb{n}-docs") for n in range(6)]


def test_a_trickling_route_neither_delays_the_healthy_one_nor_holds_the_stop(
    service: Service,
) -> None:
    # Late enough that no job predates the daemon's first look even on a loaded machine (the
    # simulator's clock starts with the fixture, the daemon a few seconds later).
    jobs = [start_job(25 + n, f"kb{n}", "completed") for n in range(6)]
    sim = manual_simulator(scenario(KBS, jobs))
    base_url = service.serve(sim)
    healthy, stalled = service.receiver(), service.receiver()
    stalled.trickle(every=2.0)  # headers at once, then a byte every 2 s: 140 s per answer
    routes = [
        Route("healthy", (healthy.url_json("/ok"),)),
        Route("stalled", tuple(stalled.url_json(f"/slow{n}") for n in range(4))),
    ]
    extra = '[alerts]\ndelivery_failing_after = "0s"\n'
    text = config_text(base_url=base_url, state=service.state, routes=routes, extra=extra)
    service.write_config(text.replace('timeout = "5s"', 'timeout = "20s"'))
    proc = service.run_daemon()
    proc.wait_for_log("cycle_finished")

    sim.advance(60)  # six jobs start and complete between two polls: six outcomes per route
    try:
        wait_for(lambda: len(alert_titles(healthy, "/ok")) >= 6, 20, "the healthy alerts")
    except AssertionError as exc:
        said = [
            {k: r.get(k) for k in ("event", "route", "events", "error", "detail", "timestamp")}
            for r in proc.records()
            if str(r.get("event", "")).startswith(("alert_", "delivery_", "job_", "cycle_f"))
        ]
        raise AssertionError(f"{exc}; got {alert_titles(healthy, '/ok')}; {said}") from None
    assert len(stalled.requests) >= 4  # the stalled route is sending too, each URL stuck

    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    code = proc.wait_exit(timeout=40)
    took = time.monotonic() - started

    assert code == 0, proc.tail()
    assert took < 25, f"stopping took {took:.1f} s"  # cycle grace 10 s + delivery grace 10 s
    titles = alert_titles(healthy, "/ok")
    assert sorted(titles)[:6] == [f"✅ kb{n}-docs: indexing completed" for n in range(6)], titles


def test_test_notify_ends_at_the_deadline_on_a_trickling_receiver_and_says_why(
    service: Service,
) -> None:
    stalled, slow = service.receiver(), service.receiver()
    stalled.trickle(every=2.0)
    slow.slow(6.0)
    routes = [Route("stalled", (stalled.url_json(),)), Route("slow", (slow.url_json(),))]
    text = config_text(base_url="http://127.0.0.1:9", state=service.state, routes=routes)
    service.write_config(text.replace('timeout = "5s"', 'timeout = "8s"'))

    started = time.monotonic()
    result = service.cli("test-notify", timeout=60)
    took = time.monotonic() - started

    assert result.returncode == 1, result.stdout + result.stderr
    assert "route stalled: FAILED" in result.stdout
    assert "retryable: timed out" in result.stdout
    # apprise's own 4 s read timeout no longer fails a receiver that answers in 6 s
    assert "route slow: delivered" in result.stdout
    assert len(slow.requests) == 1
    # the 8 s deadline, not the receiver (which trickles for as long as it is let); process
    # start and apprise load add seconds on a loaded machine
    assert took < 45, f"test-notify took {took:.1f} s"

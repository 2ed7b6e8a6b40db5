"""`watcher run` under signals: SIGTERM/SIGINT stop it gracefully, SIGHUP reloads its config."""

from __future__ import annotations

import json
import signal

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
from watcher.simulator import Fault, FaultKind

KBS = [("alpha", "alpha-docs"), ("beta", "beta-docs"), ("gamma", "gamma-docs")]
OUTCOME_TITLES = {
    "alpha-docs: indexing completed",
    "beta-docs: indexing failed",
    "gamma-docs: indexing partial (finished with gaps)",
}


def _titles(titles: list[str]) -> list[str]:
    """Alert titles without their severity icon."""
    return [t.split(" ", 1)[1] for t in titles]


def test_sigterm_during_a_slow_cycle_lets_it_finish_exits_0_and_loses_no_alert(
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
    up, down = service.receiver(), service.receiver()
    down.go_down()
    routes = [Route("up", (up.url_json("/up"),)), Route("down", (down.url_json("/down"),))]
    service.write_config(config_text(base_url=base_url, state=service.state, routes=routes))
    proc = service.run_daemon()

    # The next cycle's first request (the KB list) hangs for 2 s; by the time it is answered,
    # all three jobs have started and finished.
    sim.inject(Fault(FaultKind.SLOW, delay=2.0, path_prefix="/v2/gen-ai/knowledge_bases"))
    sim.advance(20)
    wait_for(lambda: not sim.faults, 10, "the slow KB list request to reach the simulator")
    proc.signal(signal.SIGTERM)

    assert proc.wait_exit() == 0, proc.tail()
    lines = [line.record for line in proc.lines if line.record is not None]
    events = [rec["event"] for rec in lines]
    stop = events.index("stop_requested")
    finished_after_stop = [r for r in lines[stop:] if r["event"] == "cycle_finished"]
    assert len(finished_after_stop) == 1, proc.output
    assert finished_after_stop[0]["ok"] is True and finished_after_stop[0]["events"] >= 3
    assert events[-1] == "watcher_stopped"
    # The receiver that was up got every outcome before the process ended.
    assert set(_titles(alert_titles(up, "/up"))) >= OUTCOME_TITLES

    # What the other route could not get waits in the outbox, and the cycle's state is stored.
    status = json.loads(service.cli("status", "--json").stdout)
    states = {kb["name"]: kb["state"] for kb in status["knowledge_bases"]}
    assert states == {"alpha-docs": "completed", "beta-docs": "failed", "gamma-docs": "partial"}
    routes = [
        {key: row[key] for key in ("route", "pending", "dead", "held")}
        for row in status["deliveries"]["routes"]
    ]
    assert routes == [{"route": "down", "pending": 3, "dead": 0, "held": 0}]

    # A following `watcher once` delivers it, and nothing is left behind.
    down.come_up()
    once = service.cli("once")
    assert once.returncode == 0, once.stderr
    assert sorted(_titles(alert_titles(down, "/down"))) == sorted(OUTCOME_TITLES)
    after = json.loads(service.cli("status", "--json").stdout)
    by_state = after["deliveries"]["by_state"]
    assert by_state == {"pending": 0, "sending": 0, "sent": 6, "dead": 0, "silenced": 0}
    # Each outcome reached each route exactly once.
    assert sorted(_titles(alert_titles(up, "/up"))) == sorted(OUTCOME_TITLES)


def test_sigint_stops_the_daemon_gracefully_with_exit_code_0(service: Service) -> None:
    sim = manual_simulator(scenario(KBS))
    base_url = service.serve(sim)
    receiver = service.receiver()
    routes = [Route("ops", (receiver.url_json(),))]
    service.write_config(config_text(base_url=base_url, state=service.state, routes=routes))
    proc = service.run_daemon()

    proc.signal(signal.SIGINT)

    assert proc.wait_exit() == 0, proc.tail()
    assert proc.records("stop_requested", signal="SIGINT")
    assert proc.records()[-1]["event"] == "watcher_stopped"


def test_sighup_applies_a_good_config_and_keeps_the_old_one_when_the_new_one_is_bad(
    service: Service,
) -> None:
    sim = manual_simulator(
        scenario(KBS[:2], [start_job(5, "alpha", "completed"), start_job(40, "beta", "completed")])
    )
    base_url = service.serve(sim)
    receiver = service.receiver()
    ops = Route("ops", (receiver.url_json("/ops"),), ("completed",))
    new = Route("new", (receiver.url_json("/new"),), ("completed",))
    service.write_config(config_text(base_url=base_url, state=service.state, routes=[ops]))
    proc = service.run_daemon()

    # A good config: a new route.
    good = config_text(base_url=base_url, state=service.state, routes=[ops, new])
    service.write_config(good)
    proc.signal(signal.SIGHUP)
    proc.wait_for_log("config_reloaded")
    sim.advance(15)
    wait_for(  # routes are delivered side by side: either may be first
        lambda: all(
            "alpha-docs: indexing completed" in _titles(alert_titles(receiver, path))
            for path in ("/new", "/ops")
        ),
        15,
        "the first alert on the route added by the reload, and on the old one",
    )

    # A bad config: an unknown key. It is reported, and the config in force stays in force.
    service.write_config(good.replace("[poll]\n", '[poll]\nintervall = "5s"\n'))
    proc.signal(signal.SIGHUP)
    rejected = proc.wait_for_log("config_reload_rejected")
    assert any("poll.intervall" in problem for problem in rejected["problems"]), rejected
    assert len(proc.records("config_reloaded")) == 1
    sim.advance(40)
    wait_for(
        lambda: all(
            "beta-docs: indexing completed" in _titles(alert_titles(receiver, path))
            for path in ("/ops", "/new")
        ),
        15,
        "the alert on both routes after the rejected reload",
    )
    assert proc.alive

    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0, proc.tail()


def test_sighup_to_a_config_whose_state_file_cannot_be_opened_is_rejected_and_survived(
    service: Service,
) -> None:
    sim = manual_simulator(scenario(KBS[:1], [start_job(5, "alpha", "completed")]))
    base_url = service.serve(sim)
    receiver = service.receiver()
    routes = [Route("ops", (receiver.url_json(),), ("completed",))]
    good = config_text(base_url=base_url, state=service.state, routes=routes)
    service.write_config(good)
    proc = service.run_daemon()

    # Valid on paper, but the state file's directory is a regular file.
    (service.dir / "not-a-dir").write_text("x", encoding="utf-8")
    unusable = service.dir / "not-a-dir" / "watcher.db"
    service.write_config(good.replace(str(service.state), str(unusable)))
    proc.signal(signal.SIGHUP)

    rejected = proc.wait_for_log("config_reload_rejected")
    assert any(str(unusable) in problem for problem in rejected["problems"]), rejected
    sim.advance(15)
    wait_for(
        lambda: "alpha-docs: indexing completed" in _titles(alert_titles(receiver)),
        15,
        "an alert through the config kept in force",
    )
    assert proc.alive and not proc.records("config_reloaded")
    assert not [r for r in proc.records() if r.get("level") == "error" and r is not rejected]
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0, proc.tail()

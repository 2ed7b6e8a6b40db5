"""Exit codes and messages of `watcher run` for a bad config, a missing token and a wrong one."""

from __future__ import annotations

import json
import signal
import socket

from tests.process.conftest import (
    TOKEN,
    Route,
    Service,
    config_text,
    http_get,
    manual_simulator,
    metrics_url,
    scenario,
)

EX_CONFIG = 78
WRONG_TOKEN = "dop_v1_" + "0badc0de" * 8
KBS = [("alpha", "alpha-docs")]


def _config(service: Service, base_url: str = "http://127.0.0.1:9", **kwargs: str) -> str:
    routes = [Route("ops", ("json://127.0.0.1:9/alerts",))]
    return config_text(base_url=base_url, state=service.state, routes=routes, **kwargs)


def test_run_with_an_unknown_key_exits_78_naming_the_key_and_the_file(service: Service) -> None:
    path = service.write_config(_config(service).replace("[poll]\n", '[poll]\nintervall = "5s"\n'))

    result = service.cli("run")

    assert result.returncode == EX_CONFIG
    assert f"{path}: poll.intervall: unknown key" in result.stderr
    assert "did you mean 'interval'" in result.stderr
    assert not service.state.exists()


def test_check_config_exits_2_for_the_same_bad_file(service: Service) -> None:
    path = service.write_config(_config(service).replace("[poll]\n", '[poll]\nintervall = "5s"\n'))

    result = service.cli("check-config")

    assert result.returncode == 2
    assert f"{path}: poll.intervall: unknown key" in result.stderr


def test_run_without_a_token_exits_78_saying_where_a_token_can_come_from(
    service: Service,
) -> None:
    path = service.write_config(_config(service))

    result = service.cli("run", env=service.env(token=None))

    assert result.returncode == EX_CONFIG
    assert str(path) in result.stderr
    for source in ("DIGITALOCEAN_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN", "api.token_file"):
        assert source in result.stderr


def test_run_with_its_health_port_taken_exits_78_with_one_clear_line(service: Service) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = service.write_config(_config(service, listen=f"127.0.0.1:{port}"))

        result = service.cli("run")

    assert result.returncode == EX_CONFIG
    assert result.stderr.strip() == (
        f"{path}: http.listen: port {port} on 127.0.0.1 is already in use by another program"
    )
    assert not service.state.exists()


def test_a_refused_token_is_logged_as_401_with_its_source_and_the_daemon_stays_up_not_ready(
    service: Service,
) -> None:
    sim = manual_simulator(scenario(KBS), token=TOKEN)
    base_url = service.serve(sim)
    service.write_config(_config(service, base_url=base_url, listen="127.0.0.1:0"))
    env = service.env(token=None, DIGITALOCEAN_TOKEN=WRONG_TOKEN)

    proc = service.start("run", env=env)
    failure = proc.wait_for_log("cycle_fetch_failed")
    proc.wait_for_log("cycle_finished", count=3, ok=False)

    assert "401" in failure["error"]
    assert "environment variable DIGITALOCEAN_TOKEN" in failure["error"]
    assert all(r.status == 401 for r in sim.requests)
    assert proc.alive
    status, body = http_get(metrics_url(proc, "/readyz"))
    assert (status, json.loads(body)["ready"]) == (503, False)
    assert WRONG_TOKEN not in proc.output

    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0, proc.tail()

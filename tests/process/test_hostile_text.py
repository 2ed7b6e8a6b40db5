"""Hostile names from the API stay inert, and misread URLs are refused, as a user meets them.

The knowledge base is named the way an attacker with write access to the account would name
it: escape sequences that set the terminal's title and clear the screen, a BEL, a NUL, a
bidi override and a newline followed by a forged "completed" row. `watcher once` alerts on its
running job and `watcher status` prints it, both as real processes writing to pipes.
"""

from __future__ import annotations

from tests.process.conftest import (
    Route,
    Service,
    config_text,
    manual_simulator,
    scenario,
    start_job,
)
from watcher.core.inert import is_inert

FORGED = "11111111-2222-3333-4444-555555555555  completed  3/3  1s ago"
HOSTILE = f"docs\x1b]0;pwned\x07\x1b[2J\x1b[H\x00\u202eexe.txt\n{FORGED}\r"


def test_a_hostile_kb_name_neither_drives_the_terminal_nor_forges_a_status_row(
    service: Service,
) -> None:
    sim = manual_simulator(scenario([("evil", HOSTILE)], [start_job(1, "evil", "completed", 60)]))
    base_url = service.serve(sim)
    receiver = service.receiver()
    routes = [Route("ops", (receiver.url_json("/ops"),))]
    service.write_config(config_text(base_url=base_url, state=service.state, routes=routes))
    sim.advance(5)  # the job is running: the first run alerts it

    once = service.cli("once")
    status = service.cli("status")
    as_json = service.cli("status", "--json")

    assert once.returncode == 0, once.stderr
    assert status.returncode == 0 and as_json.returncode == 0, status.stderr
    for output in (status.stdout, status.stderr, as_json.stdout, once.stdout, once.stderr):
        assert is_inert(output, newlines=True), repr(output)
    rows = [line for line in status.stdout.splitlines() if line.startswith("docs")]
    assert len(rows) == 1, status.stdout
    assert "docs\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H\\x00\\u202eexe.txt " in rows[0]
    assert not any(line.startswith(FORGED[:10]) for line in status.stdout.splitlines())
    [alert] = [r.json for r in receiver.requests]
    assert is_inert(alert["title"]) and alert["title"].startswith("ℹ️ docs\\x1b]0;pwned")
    assert is_inert(alert["message"], newlines=True)


def test_check_config_names_a_password_apprise_would_misread_without_showing_it(
    service: Service,
) -> None:
    """The issue's password `Zq9@x#T/7%Lm` written raw: apprise reads host `x` and drops the
    rest. check-config says so (exit 2), shows no part of it, and says how to write it."""
    urls = ("mailto://alerts:Zq9@x#T/7%Lm@smtp.example.com",)
    routes = [Route("mail", urls)]
    service.write_config(
        config_text(base_url="http://127.0.0.1:9", state=service.state, routes=routes)
    )

    result = service.cli("check-config")

    assert result.returncode == 2
    assert "routes[0].urls: URL #1 has a raw '#' in its user name or password" in result.stderr
    assert "'#' as %23" in result.stderr
    for run in ("Zq9", "T/7", "7%L", "%Lm"):
        assert run not in result.stdout + result.stderr


def test_check_config_shows_an_encoded_password_url_with_nothing_of_the_secrets(
    service: Service,
) -> None:
    urls = (
        "mailto://alerts:Zq9%40x%23T%2F7%25Lm@smtp.example.com?to=ops@example.com",
        "json://127.0.0.1:9/hooks/Wq7TzXk2pLm9?+X-Api-Key=Hk4vNq8RsYw2&+Authorization=Bearer%20Rt5Uv",
    )
    routes = [Route("ops", urls)]
    service.write_config(
        config_text(base_url="http://127.0.0.1:9", state=service.state, routes=routes)
    )

    result = service.cli("check-config")

    assert result.returncode == 0, result.stderr
    assert "mailto://****@smtp.example.com?to=ops@example.com" in result.stdout
    assert "json://127.0.0.1:9/hooks/****?+X-Api-Key=****&+Authorization=***" in result.stdout
    for secret in ("Zq9@x#T/7%Lm", "Wq7TzXk2pLm9", "Hk4vNq8RsYw2", "Rt5Uv"):
        assert not [
            secret[i : i + 3] for i in range(len(secret) - 2) if secret[i : i + 3] in result.stdout
        ]

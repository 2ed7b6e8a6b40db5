"""`check-config` and the route keys of incidents: `repeat_after`, `escalate_after`,
`escalate_to` (a route's name; unknown or in a cycle, the error names the route's key and the
source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.test_cli_check_config import TOKEN, config, run

OPS = '[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:9/ops"]\n'
PAGER = '[[routes]]\nname = "pager"\nurls = ["json://127.0.0.1:9/pager"]\n'
ENV = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN}


def test_check_config_describes_reminders_and_escalation(tmp_path: Path) -> None:
    ops = OPS + 'repeat_after = "4h"\nescalate_after = "30m"\nescalate_to = "pager"\n'
    code, out, err = run(["check-config", "--config", config(tmp_path, ops + PAGER)], ENV)
    assert code == 0, err
    assert (
        "incidents: reminded every 4h until acknowledged; sent on to route pager when not "
        "acknowledged within 30m" in out
    )


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        # a route name nobody defined
        (
            OPS + 'escalate_after = "30m"\nescalate_to = "pagr"\n' + PAGER,
            "routes[0].escalate_to: 'pagr' is not a route (routes: 'ops', 'pager')",
        ),
        # a route escalating to itself
        (
            OPS + 'escalate_after = "30m"\nescalate_to = "ops"\n',
            "routes[0].escalate_to: escalation goes round in a cycle: 'ops' -> 'ops'",
        ),
        # two routes escalating to each other
        (
            OPS
            + 'escalate_after = "30m"\nescalate_to = "pager"\n'
            + PAGER
            + 'escalate_after = "1h"\nescalate_to = "ops"\n',
            "routes[1].escalate_to: escalation goes round in a cycle: 'pager' -> 'ops' -> 'pager'",
        ),
        # escalate_to without escalate_after
        (OPS + 'escalate_to = "pager"\n' + PAGER, "escalate_to needs escalate_after too"),
        # a reminder period that is not a duration
        (OPS + 'repeat_after = "often"\n', "routes[0].repeat_after"),
        # nor zero
        (OPS + 'repeat_after = "0s"\n', "routes[0].repeat_after: must be longer than zero"),
        # reminders are not chosen in events
        (
            OPS + 'events = ["failed", "reminder"]\n',
            "routes[0].events[1]: 'reminder' is not chosen in events: set this route's "
            "repeat_after",
        ),
    ],
)
def test_a_bad_incident_key_exits_2_naming_the_route_key_and_source(
    tmp_path: Path, toml: str, problem: str
) -> None:
    path = config(tmp_path, toml)
    code, out, err = run(["check-config", "--config", path], ENV)
    assert code == 2, out
    assert f"{path}: " in err and problem in err

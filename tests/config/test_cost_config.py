"""`[cost]` keys that could never work are errors naming the key and its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.test_cli_check_config import TOKEN, config, run

ROUTE = '[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:9/x"]\n'


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        # more jobs asked for than the window holds: cost_spike would never fire
        (
            "[cost]\nspike_factor = 3\nspike_min_history = 5\nspike_window = 3\n",
            "cost",
            "spike_min_history (5) is more than spike_window (3)",
        ),
        # more than the costs kept per knowledge base (20): never filled, never fires
        (
            "[cost]\nspike_factor = 3\nspike_min_history = 30\nspike_window = 40\n",
            "cost.spike_min_history",
            "less than or equal to 20",
        ),
        # a window wider than the costs kept would silently be 20
        ("[cost]\nspike_factor = 3\nspike_window = 50\n", "cost.spike_window", "equal to 20"),
    ],
)
def test_a_cost_spike_rule_that_could_never_fire_is_an_error_naming_the_key(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    path = config(tmp_path, text + ROUTE)
    code, _, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith(f"{path}: {key}: ")]
    assert lines and message in lines[0], err

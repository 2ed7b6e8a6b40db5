"""The README's "Try a configuration on the simulator" tells the truth: it lists every bundled
scenario, its example scenario file loads and does what the text says, and its watcher.toml
is valid."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.simulator import manual
from watcher.simulator import load_scenario

REPO = Path(__file__).resolve().parents[2]
SECTION = re.compile(r"### Try a configuration on the simulator\n(.*?)\n## ", re.S)


def _section() -> str:
    found = SECTION.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert found, "the README lost its section on trying a configuration on the simulator"
    return found.group(1)


def test_the_readme_lists_every_bundled_scenario_and_no_other() -> None:
    bundled = {p.stem for p in (REPO / "watcher" / "simulator" / "scenarios").glob("*.json")}
    listed = set(re.findall(r"^\| `(\w+)`", _section(), re.M))
    assert listed == bundled


def test_the_readme_example_scenario_ends_its_three_jobs_as_it_says(tmp_path: Path) -> None:
    example = re.search(r"```json\n(.*?)```", _section(), re.S)
    assert example, "the section has no JSON example"
    path = tmp_path / "storm.json"
    path.write_text(example.group(1), encoding="utf-8")
    assert json.loads(example.group(1))["name"] == "storm"
    sim = manual(load_scenario(str(path)))
    sim.advance(60)
    names = {sim.kb_uuid(key): key for key in "abc"}
    seen = {(names[r.kb_uuid], r.kind) for r in sim.transitions()}
    assert {("a", "completed"), ("b", "failed"), ("c", "stalled")} <= seen
    # the stuck job never ends: its stall is for good
    assert [kind for key, kind in seen if key == "c" and kind in ("completed", "partial")] == []


def test_the_readme_s_watcher_toml_for_the_simulator_is_valid(tmp_path: Path) -> None:
    toml = re.search(r"```toml\n(.*?)```", _section(), re.S)
    assert toml, "the section has no watcher.toml"
    path = tmp_path / "watcher.toml"
    path.write_text(toml.group(1), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN_"))}
    checked = subprocess.run(
        [str(Path(sys.executable).parent / "watcher"), "check-config", "--no-token"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "API:        http://127.0.0.1:8080" in checked.stdout

"""The README's "Try a configuration on the simulator" tells the truth: it lists every bundled
scenario, and its example scenario file loads and does what the text says it does."""

from __future__ import annotations

import json
import re
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

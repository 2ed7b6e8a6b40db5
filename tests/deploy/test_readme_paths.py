"""The READMEs name only files that exist: a test or module renamed or moved fails here, so
the documentation cannot go stale in silence (it did once, after the layout move)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PATH = re.compile(
    r"(?<![\w/.-])(?:tests|watcher|bench|deploy)/[A-Za-z0-9_./-]+\.(?:py|toml|yaml|json|md)\b"
)


@pytest.mark.parametrize("readme", ["README.md", "bench/README.md"])
def test_every_path_a_readme_names_exists(readme: str) -> None:
    named = sorted(set(PATH.findall((REPO / readme).read_text(encoding="utf-8"))))
    assert named, f"{readme} names no path: the pattern is wrong"
    assert [path for path in named if not (REPO / path).exists()] == []


def test_the_bench_readme_lists_every_bench_script() -> None:
    text = (REPO / "bench" / "README.md").read_text(encoding="utf-8")
    scripts = sorted(p.name for p in (REPO / "bench").glob("*.py") if p.name != "__init__.py")
    assert [name for name in scripts if f"`{name}`" not in text] == []

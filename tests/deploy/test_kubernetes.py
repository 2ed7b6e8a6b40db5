"""The Kubernetes sidecar manifest: valid, locked down, probed, and wired to its state."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "watcher-sidecar.yaml"
STATE_DIR = "/var/lib/gradient-watcher"


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    """Every document in the manifest, keyed by kind (each kind appears once)."""
    docs = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]
    by_kind = {doc["kind"]: doc for doc in docs}
    assert len(by_kind) == len(docs), "one document per kind"
    return by_kind


@pytest.fixture(scope="module")
def pod(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = documents["Deployment"]["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def watcher(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in pod["containers"] if c["name"] == "watcher"]
    assert isinstance(container, dict)
    return container


@pytest.fixture(scope="module")
def config(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return tomllib.loads(documents["ConfigMap"]["data"]["watcher.toml"])


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def _mounts(container: dict[str, Any]) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container["volumeMounts"]}


def _volumes(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod["volumes"]}


@pytest.mark.parametrize("version", ["1.29.0", "latest"])
def test_the_manifest_validates_strictly_against_the_kubernetes_schemas(version: str) -> None:
    validator = pytest.importorskip("kubernetes_validate")
    target = validator.latest_version() if version == "latest" else version
    for doc in yaml.safe_load_all(MANIFEST.read_text()):
        if doc:
            validator.validate(doc, target, strict=True)


def test_the_watcher_runs_as_a_sidecar_beside_the_app(pod: dict[str, Any]) -> None:
    names = [c["name"] for c in pod["containers"]]
    assert "watcher" in names
    assert len(names) >= 2


def test_one_replica_replaced_not_rolled_because_the_store_has_one_writer(
    documents: dict[str, dict[str, Any]],
) -> None:
    spec = documents["Deployment"]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"


def test_the_applied_manifest_holds_no_secret_so_it_never_overwrites_the_token(
    documents: dict[str, dict[str, Any]],
) -> None:
    """A placeholder Secret applied after the real one would replace the token (401s)."""
    assert "Secret" not in documents
    assert "REPLACE_ME" not in MANIFEST.read_text()


def _steps() -> list[str]:
    """The commands the manifest's header tells the reader to run, in order."""
    header = MANIFEST.read_text().split("\n---", 1)[0]
    return [
        line.strip().removeprefix("#").strip()
        for line in header.splitlines()
        if line.lstrip("# ").startswith(("kubectl ", "watcher ", "WATCHER_"))
    ]


def _created_secret() -> tuple[str, str]:
    """The Secret name and key of the header's `kubectl create secret` command."""
    (create,) = [step for step in _steps() if step.startswith("kubectl create secret")]
    found = re.fullmatch(r"kubectl create secret generic (\S+) --from-file=([\w.-]+)=\S+", create)
    assert found, create
    return found.group(1), found.group(2)


def test_the_steps_check_the_config_then_create_the_secret_then_apply_the_manifest() -> None:
    steps = _steps()
    order = [
        next(i for i, step in enumerate(steps) if marker in step)
        for marker in ("check-config --online", "kubectl create secret", "kubectl apply -f deploy")
    ]
    assert order == sorted(order), steps


def test_the_watcher_container_is_locked_down(watcher: dict[str, Any]) -> None:
    context = watcher["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] != 0
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]


def test_the_watcher_has_resource_requests_and_limits(watcher: dict[str, Any]) -> None:
    resources = watcher["resources"]
    assert resources["requests"]["cpu"] == "50m"
    assert resources["requests"]["memory"] == "64Mi"
    assert resources["limits"]["memory"] == "256Mi"


def test_probes_reach_the_health_endpoint_on_the_port_it_listens_on(
    watcher: dict[str, Any], config: dict[str, Any]
) -> None:
    host, _, port = config["http"]["listen"].rpartition(":")
    # Kubelet probes connect to the pod IP: a loopback listener would fail every probe.
    assert host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in watcher["ports"]}
    for probe in ("startupProbe", "livenessProbe"):
        http_get = watcher[probe]["httpGet"]
        assert http_get["path"] == "/healthz"
        assert ports[http_get["port"]] == int(port)


def test_readiness_of_the_api_does_not_gate_the_apps_pod(watcher: dict[str, Any]) -> None:
    """A DigitalOcean outage must not pull the app out of its Service (see the manifest)."""
    assert "readinessProbe" not in watcher
    assert "/readyz" in MANIFEST.read_text()


def test_the_state_directory_is_on_the_persistent_volume(
    pod: dict[str, Any], watcher: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    volume = _volumes(pod)[_mounts(watcher)[STATE_DIR]]
    claim = documents["PersistentVolumeClaim"]["metadata"]["name"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim
    assert _env(watcher)["WATCHER_STATE__PATH"].startswith(STATE_DIR + "/")
    # fsGroup makes the volume writable by the image's non-root user.
    assert pod["securityContext"]["fsGroup"] == watcher["securityContext"]["runAsGroup"]


def test_the_token_file_and_config_come_from_their_mounted_objects(
    pod: dict[str, Any], watcher: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    env, mounts, volumes = _env(watcher), _mounts(watcher), _volumes(pod)
    token_dir, _, token_name = env["WATCHER_API__TOKEN_FILE"].rpartition("/")
    secret = volumes[mounts[token_dir]]["secret"]
    # The Secret the header's `kubectl create secret` makes, with the key the watcher reads.
    assert (secret["secretName"], token_name) == _created_secret()
    # Owned by root, group fsGroup: the group bit is what lets uid 10001 read it.
    assert secret["defaultMode"] & 0o040
    config_dir, _, config_name = env["WATCHER_CONFIG"].rpartition("/")
    config_map = volumes[mounts[config_dir]]["configMap"]
    assert config_map["name"] == documents["ConfigMap"]["metadata"]["name"]
    assert config_name in documents["ConfigMap"]["data"]
    assert not any("TOKEN" in name and "FILE" not in name for name in env)


def test_the_config_map_holds_no_token(config: dict[str, Any]) -> None:
    assert "token" not in config.get("api", {})
    assert "token_file" not in config.get("api", {})


def test_watcher_check_config_accepts_the_config_map(
    tmp_path: Path, documents: dict[str, dict[str, Any]]
) -> None:
    if importlib.util.find_spec("watcher.cli") is None:
        pytest.skip("the watcher command line is not built yet")
    path = tmp_path / "watcher.toml"
    path.write_text(documents["ConfigMap"]["data"]["watcher.toml"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN"))}
    env["DIGITALOCEAN_ACCESS_TOKEN"] = "placeholder-for-check-config"
    env["WATCHER_STATE__PATH"] = str(tmp_path / "watcher.db")
    # check-config binds the listen address to see it is free: any free port of this machine.
    env["WATCHER_HTTP__LISTEN"] = "0.0.0.0:0"
    command = [sys.executable, "-c", "from watcher.cli import main; main()"]
    result = subprocess.run(
        [*command, "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

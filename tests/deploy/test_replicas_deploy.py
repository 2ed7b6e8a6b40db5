"""The replica deployments: two watchers on one PostgreSQL, in Kubernetes and in compose.

Checked statically (no cluster, no Docker engine here): the Kubernetes documents validate
strictly against the schemas, the Deployment runs two replicas on the database URL of a
Secret with no volume of state, the compose file runs two watchers beside PostgreSQL, and no
password is in either file; the ConfigMap passes `watcher check-config`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "kubernetes" / "watcher-replicas.yaml"
COMPOSE = ROOT / "deploy" / "container" / "compose-replicas.yaml"


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_manifest_validates_strictly_against_the_kubernetes_schemas() -> None:
    validator = pytest.importorskip("kubernetes_validate")
    for doc in yaml.safe_load_all(MANIFEST.read_text()):
        if doc:
            validator.validate(doc, "1.29.0", strict=True)


def test_two_replicas_roll_with_one_always_up_and_keep_no_state_of_their_own(
    documents: dict[str, dict[str, Any]],
) -> None:
    spec = documents["Deployment"]["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert documents["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    assert "PersistentVolumeClaim" not in documents
    pod = spec["template"]["spec"]
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"])


def test_the_database_url_comes_from_a_secret_never_from_the_manifest(
    documents: dict[str, dict[str, Any]],
) -> None:
    (container,) = documents["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["WATCHER_STATE__URL"]["valueFrom"]["secretKeyRef"]["name"] == "gradient-watcher-db"
    assert "value" not in env["WATCHER_STATE__URL"]
    assert "Secret" not in documents
    assert "postgresql://" not in documents["ConfigMap"]["data"]["watcher.toml"]


def test_readiness_is_probed_since_a_standing_by_replica_is_ready(
    documents: dict[str, dict[str, Any]],
) -> None:
    (container,) = documents["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_watcher_check_config_accepts_the_config_map_on_a_database_url(
    tmp_path: Path, documents: dict[str, dict[str, Any]]
) -> None:
    path = tmp_path / "watcher.toml"
    path.write_text(documents["ConfigMap"]["data"]["watcher.toml"])
    assert tomllib.loads(path.read_text())["state"]["lease"] == "30s"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN"))}
    env["DIGITALOCEAN_ACCESS_TOKEN"] = "placeholder-for-check-config"
    env["WATCHER_STATE__URL"] = "postgresql://watcher:pw-never-shown@db:25060/w?sslmode=require"
    env["WATCHER_HTTP__LISTEN"] = "0.0.0.0:0"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from watcher.cli import main; main()",
            "check-config",
            "--config",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "watcher@db:25060/w (PostgreSQL), shared by replicas" in result.stdout
    assert "pw-never-shown" not in result.stdout + result.stderr


def test_compose_runs_two_watchers_on_one_postgresql_started_first(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    watchers = [name for name in services if name.startswith("watcher")]
    assert len(watchers) == 2
    for name in watchers:
        service = services[name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["environment"]["WATCHER_STATE__URL"].startswith("postgresql://watcher@")
        assert service["read_only"] is True
    assert "healthcheck" in services["postgres"]


def test_compose_keeps_every_password_in_secret_files(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    assert "POSTGRES_PASSWORD:" not in text
    watcher = compose["services"]["watcher-a"]
    assert watcher["environment"]["PGPASSFILE"] == "/run/secrets/pgpass"
    url = watcher["environment"]["WATCHER_STATE__URL"]
    assert ":" not in url.removeprefix("postgresql://").split("@")[0]  # no password in it
    assert set(compose["secrets"]) == {"do-token", "pgpass", "db-password"}

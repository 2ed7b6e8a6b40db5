"""Names the config declares for people are never masked as secrets: a webhook's path guessed
secret (Zapier, n8n and Home Assistant keep their keys there) that equals an account's, a
route's or a knowledge base's name would otherwise turn every alert naming it into `***`."""

from __future__ import annotations

from pathlib import Path

from watcher.config import load_config
from watcher.core.redact import SECRETS
from watcher.service.config_secrets import register_config_secrets

TOKEN_A = "dop_v1_" + "a1" * 32
TOKEN_B = "dop_v1_" + "b2" * 32
KEY = "x7Qp2Lk9Zr"  # the webhook's own secret path segment
CONFIG = f"""
[[accounts]]
name = "staging"
token_env = "DO_TOKEN_STAGING"
[[accounts.knowledge_bases]]
uuid = "9f3c1b2a-4d5e-11ef-8a1b-0242ac120002"
name = "product-docs"

[[accounts]]
name = "production"
token_env = "DO_TOKEN_PROD"

[[routes]]
name = "releases"
urls = ["json://127.0.0.1:9/staging/product-docs/releases/{KEY}"]
accounts = ["staging"]
"""


def test_a_webhook_path_named_like_an_account_a_route_or_a_kb_leaves_those_names_readable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.toml"
    path.write_text(CONFIG, encoding="utf-8")
    env = {"DO_TOKEN_STAGING": TOKEN_A, "DO_TOKEN_PROD": TOKEN_B}
    register_config_secrets(load_config(path, env, check_urls=False))
    alert = f"❌ product-docs [staging]: indexing failed (route releases, key {KEY})"
    assert (
        SECRETS.redact(alert)
        == "❌ product-docs [staging]: indexing failed (route releases, key ***)"
    )
    assert TOKEN_A not in SECRETS.redact(f"token {TOKEN_A}")  # the tokens stay masked


def test_a_name_declared_public_does_not_unmask_what_was_registered_before() -> None:
    SECRETS.register("staging-secret")
    SECRETS.declare_public(["staging-secret"])
    assert SECRETS.redact("a staging-secret here") == "a *** here"

"""The CA bundle is read once by a process that checks its configuration and then polls: the
context the check built goes to the first client trusting the same, unchanged file, and to no
other (`watcher.config.trust`)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from watcher.config import trust


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The bundles read into a new context, in order."""
    seen: list[str] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        seen.append(str(kwargs.get("cafile")))
        return real(*args, **kwargs)

    monkeypatch.setattr(trust.ssl, "create_default_context", counting)
    return seen


def test_the_checked_bundle_is_handed_to_the_first_client_only(
    bundle: Path, reads: list[str]
) -> None:
    assert trust.check_bundle(bundle) is None
    first = trust.verify_context(bundle)
    assert reads == [str(bundle)]  # the check's read serves the first client
    second = trust.verify_context(bundle)
    assert reads == [str(bundle)] * 2  # a second client gets a context of its own
    assert isinstance(first, ssl.SSLContext) and isinstance(second, ssl.SSLContext)
    assert first is not second and first.get_ca_certs() == second.get_ca_certs()


def test_a_bundle_changed_after_the_check_is_read_again(
    bundle: Path, reads: list[str], tmp_path: Path
) -> None:
    assert trust.check_bundle(bundle) is None
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    os.replace(other, bundle)
    context = trust.verify_context(bundle)
    assert reads == [str(bundle)] * 2
    assert isinstance(context, ssl.SSLContext)
    assert context.get_ca_certs() == ssl.create_default_context(cafile=bundle).get_ca_certs()


def test_a_bundle_of_only_a_server_certificate_is_refused_and_a_ca_bundle_accepted(
    tmp_path: Path, bundle: Path
) -> None:
    """A PEM file holding only a server's own certificate (no CA) is no CA bundle: the check
    names the file and why; a file with a CA certificate passes."""
    leaf = tmp_path / "leaf.pem"
    trustme.CA().issue_cert("api.example.com").cert_chain_pems[0].write_to_path(str(leaf))
    assert trust.check_bundle(leaf) == f"CA bundle {leaf} holds no CA certificate"
    assert trust.check_bundle(bundle) is None

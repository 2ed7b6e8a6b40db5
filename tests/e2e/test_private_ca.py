"""Behind a TLS-inspecting proxy: one CA bundle setting serves the API client and the alerts.

The simulated API and a webhook receiver both speak HTTPS with certificates from a private CA
(made by `trustme`), as a proxy that re-signs traffic would. `SSL_CERT_FILE` alone used to fix
polling but leave alerts pending, `REQUESTS_CA_BUNDLE` alone the reverse; now either one, or
`[http] ca_bundle`, is used by both.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.harness import TOKEN
from tests.receivers import WebhookReceiver
from watcher.config import load_config
from watcher.config.trust import CA_ENVS
from watcher.core.errors import ConfigError
from watcher.service.runtime import open_runtime
from watcher.simulator import ManualClock, Simulator, serve
from watcher.simulator.loading import parse_scenario

SCENARIO: dict[str, Any] = {
    "name": "tls",
    "knowledge_bases": [{"key": "docs", "name": "docs-kb", "data_sources": [{"key": "a"}]}],
    "timeline": [{"at": 5, "start_job": {"kb": "docs", "id": "j", "pending": 1, "run": 10}}],
}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def bundle(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "proxy-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def hook(ca: trustme.CA) -> Iterator[WebhookReceiver]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    receiver = WebhookReceiver(tls=context).start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
async def api(ca: trustme.CA, tmp_path: Path) -> AsyncIterator[tuple[Simulator, str]]:
    cert = ca.issue_cert("127.0.0.1")
    chain, key = tmp_path / "api-chain.pem", tmp_path / "api-key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    sim = Simulator(parse_scenario(SCENARIO, "tls"), token=TOKEN, clock=ManualClock())
    async with serve(sim, tls=(chain, key)) as base_url:
        yield sim, base_url


def write_config(tmp_path: Path, base_url: str, hook: WebhookReceiver, extra: str = "") -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text(
        f"""
[api]
base_url = "{base_url}"
timeout = "5s"
reserve = 0
[state]
path = "{tmp_path / "watcher.db"}"
[delivery]
timeout = "5s"
send_interval = "0s"
{extra}
[[routes]]
name = "ops"
urls = ["jsons://127.0.0.1:{hook.port}/alerts"]
events = ["*"]
"""
    )
    return path


@pytest.mark.parametrize(
    ("variable", "in_file"),
    [
        ("SSL_CERT_FILE", False),  # what fixed polling but not alerts
        ("REQUESTS_CA_BUNDLE", False),  # what fixed alerts but not polling
        (None, True),  # the documented setting
    ],
)
async def test_one_ca_setting_serves_the_api_client_and_the_alerts(
    api: tuple[Simulator, str],
    hook: WebhookReceiver,
    bundle: Path,
    tmp_path: Path,
    variable: str | None,
    in_file: bool,
) -> None:
    sim, base_url = api
    extra = f'[http]\nca_bundle = "{bundle}"' if in_file else ""
    env = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN}
    if variable is not None:
        env[variable] = str(bundle)
    config = load_config(write_config(tmp_path, base_url, hook, extra), env)
    assert config.ca_bundle == bundle

    runtime = await open_runtime(config, clock=sim.now)
    try:
        assert (await runtime.cycle.run()).ok  # first sight: the KB, no job yet
        sim.advance(7)  # the job starts
        report = await runtime.cycle.run()
    finally:
        await runtime.close()

    assert report.ok, report.error
    [request] = hook.wait_for_requests(1)
    assert "indexing started" in request.json["title"]


async def test_without_the_bundle_neither_side_trusts_the_proxy(
    api: tuple[Simulator, str], hook: WebhookReceiver, tmp_path: Path
) -> None:
    sim, base_url = api
    config = load_config(
        write_config(tmp_path, base_url, hook), {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN}
    )
    runtime = await open_runtime(config, clock=sim.now)
    try:
        report = await runtime.cycle.run()
    finally:
        await runtime.close()
    assert not report.ok and report.error is not None
    assert "certificate" in report.error.lower() or "ssl" in report.error.lower()


@pytest.mark.parametrize("variable", CA_ENVS)
def test_a_bad_bundle_is_a_config_error_naming_its_source(
    tmp_path: Path, hook: WebhookReceiver, variable: str
) -> None:
    not_pem = tmp_path / "not-a-bundle.pem"
    not_pem.write_text("this is not a certificate\n")
    env = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN, variable: str(not_pem)}
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, "https://127.0.0.1:1", hook), env)
    [problem] = caught.value.problems
    assert problem.key == "http.ca_bundle"
    assert problem.source == f"environment variable {variable}"
    assert str(not_pem) in problem.message


def test_a_missing_bundle_in_the_file_names_the_key_and_the_file(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    extra = f'[http]\nca_bundle = "{tmp_path / "nowhere.pem"}"'
    path = write_config(tmp_path, "https://127.0.0.1:1", hook, extra)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    [problem] = caught.value.problems
    assert (problem.key, problem.source) == ("http.ca_bundle", str(path))
    assert "does not exist" in problem.message

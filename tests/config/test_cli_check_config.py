"""`watcher check-config`: exit 0 with a masked description, or exit 2 with every problem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import main

REPO = Path(__file__).resolve().parents[2]
TOKEN = "dop_v1_" + "0123456789abcdef" * 4
SECRET = "XOXBSECRET"
VALID = f'[[routes]]\nname = "ops"\nurls = ["slack://{SECRET}/B0/C0/#indexing"]\n'
# Isolate every run from the developer's own environment.
CLEAN_ENV = {
    "DIGITALOCEAN_ACCESS_TOKEN": None,
    "DIGITALOCEAN_TOKEN": None,
    "WATCHER_CONFIG": None,
    "CREDENTIALS_DIRECTORY": None,
}


@pytest.fixture(autouse=True)
def no_watcher_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep WATCHER_ overrides of the developer's shell out of these runs."""
    for name in [name for name in os.environ if name.upper().startswith("WATCHER_")]:
        monkeypatch.delenv(name)


def run(args: list[str], env: Mapping[str, str | None] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, env={**CLEAN_ENV, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "watcher.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_valid_config_exits_0_and_describes_it_with_secrets_masked(tmp_path: Path) -> None:
    path = config(tmp_path, VALID)
    code, out, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 0, err
    assert f"{path} is valid" in out
    assert "slack://****/****/****/#indexing" in out and "dop_v1_… (sha256 9e4a4330)" in out
    assert SECRET not in out + err and TOKEN not in out + err


@pytest.mark.parametrize(
    ("api", "line"),
    [
        ("", "Extras:     at most 360 requests/hour (10% of the ceiling)"),
        (
            '[api]\nmax_requests_per_minute = 120\nextra_reads_share = "5%"\n',
            "at most 360 requests/hour (5% of",
        ),
        ("[api]\nextra_reads_share = 0\n", "Extras:     off (api.extra_reads_share = 0)"),
        ("", "database health, agents, schedules and per-file reports; model prices (2 requests"),
        ("[api]\nextra_reads_share = 0\n", "nor schedules; model prices (2 requests every 1h)"),
        ("", "waits while fewer than 500 of the rate limit remain"),
    ],
)
def test_check_config_shows_the_extra_reads_share_in_requests_an_hour(
    tmp_path: Path, api: str, line: str
) -> None:
    path = config(tmp_path, api + VALID)
    code, out, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 0, err
    assert line in out


def test_an_extra_reads_share_over_half_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = config(tmp_path, '[api]\nextra_reads_share = "60%"\n' + VALID)
    code, _, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 2 and "api.extra_reads_share" in err


def test_check_config_shows_the_cycle_deadline_and_the_health_limit_it_makes(
    tmp_path: Path,
) -> None:
    path = config(tmp_path, '[poll]\ninterval = "30s"\ncycle_deadline = "45s"\n' + VALID)
    code, out, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 0, err
    assert "a cycle reads the API for at most 45s" in out
    # 30 s + 2 x 45 s + the default delivery timeout of 30 s
    assert "a cycle must finish every 2m30s (live) and succeed as often (ready)" in out


def test_a_cycle_deadline_that_is_not_a_duration_is_named_with_its_source(
    tmp_path: Path,
) -> None:
    path = config(tmp_path, VALID)
    env = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN, "WATCHER_POLL__CYCLE_DEADLINE": "0s"}
    code, _, err = run(["check-config", "--config", path], env)
    assert code == 2
    assert "poll.cycle_deadline" in err and "WATCHER_POLL__CYCLE_DEADLINE" in err
    assert "longer than zero" in err


def test_the_example_config_passes_check_config() -> None:
    example = str(REPO / "config.example.toml")
    code, _, err = run(["check-config", "--config", example], {"DIGITALOCEAN_TOKEN": TOKEN})
    assert code == 0, err


def test_an_invalid_config_exits_2_with_one_line_per_problem_on_stderr(tmp_path: Path) -> None:
    text = VALID + 'events = ["faild"]\n[poll]\ninterval = "soon"\n'
    path = config(tmp_path, text)
    code, out, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 2 and out == ""
    assert sorted(err.splitlines()) == [
        f"{path}: poll.interval: 'soon' is not a duration (e.g. 90s, 0.5s, 15m, 4h, 1d, 1h30m, "
        "or whole seconds)",
        f"{path}: routes[0].events[0]: 'faild' is not an event; did you mean 'failed'?",
    ]
    assert SECRET not in err


def test_a_missing_token_fails_check_config(tmp_path: Path) -> None:
    path = config(tmp_path, VALID)
    code, _, err = run(["check-config", "--config", path])
    assert code == 2
    assert f"{path}: token: no API token found" in err and "DIGITALOCEAN_TOKEN" in err


def test_the_config_path_defaults_to_watcher_config(tmp_path: Path) -> None:
    path = config(tmp_path, VALID)
    env = {"WATCHER_CONFIG": path, "DIGITALOCEAN_ACCESS_TOKEN": TOKEN}
    code, out, _ = run(["check-config"], env)
    assert code == 0 and f"{path} is valid" in out


def test_a_missing_file_exits_2_and_says_how_to_create_one(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    code, _, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 2
    assert err.startswith(f"{path}: file: configuration file not found")
    assert "config.example.toml" in err


def test_env_overrides_are_checked_and_blamed_on_the_variable(tmp_path: Path) -> None:
    path = config(tmp_path, VALID)
    env = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN, "WATCHER_API__BASE_URL": "http://example.com"}
    code, _, err = run(["check-config", "--config", path], env)
    assert code == 2
    assert err.startswith("WATCHER_API__BASE_URL: api.base_url: http:// is only allowed")


def test_no_token_reports_a_token_file_not_there_yet_without_failing(tmp_path: Path) -> None:
    """The systemd order: the config names the token file before the file exists."""
    missing = tmp_path / "do-token"
    path = config(tmp_path, f'[api]\ntoken_file = "{missing}"\n' + VALID)
    strict, _, strict_err = run(["check-config", "--config", path])
    code, out, err = run(["check-config", "--no-token", "--config", path])
    assert strict == 2 and f"api.token_file: token file {missing} does not exist" in strict_err
    assert code == 0, err
    assert f"Token:      none (not required here; `run` needs one): {path}: api.token_file: " in out
    assert f"token file {missing} does not exist" in out


def test_a_state_path_problem_is_reported_with_every_other_problem(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    text = VALID + 'events = ["complete"]\n[state]\npath = "' + str(tmp_path / "file/w.db") + '"\n'
    path = config(tmp_path, text)
    code, _, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 2
    assert sorted(line.split(": ")[1] for line in err.splitlines()) == [
        "routes[0].events[0]",
        "state.path",
    ]


def test_check_config_shows_the_delivery_pace_deadline_and_the_ca_bundle_with_its_source(
    tmp_path: Path,
) -> None:
    import trustme

    bundle = tmp_path / "proxy-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    text = (
        '[delivery]\ntimeout = "45s"\nsend_interval = "2s"\n'
        '[alerts]\ndelivery_failing_after = "15m"\n'
        f'{VALID}send_interval = "0.4s"\n'
    )
    env = {
        "DIGITALOCEAN_ACCESS_TOKEN": TOKEN,
        "SSL_CERT_FILE": None,  # it would come first
        "REQUESTS_CA_BUNDLE": str(bundle),
    }
    code, out, err = run(["check-config", "--config", config(tmp_path, text)], env)
    assert code == 0, err
    assert "send timeout 45s, at most one message per URL every 2s" in out
    assert "delivery_failing after 15m" in out
    assert f"CA bundle {bundle} (from environment variable REQUESTS_CA_BUNDLE)" in out
    assert "one message per URL every 0.4s" in out


def test_a_ca_bundle_that_is_not_pem_fails_check_config_naming_the_variable(
    tmp_path: Path,
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    env = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN, "SSL_CERT_FILE": str(junk)}
    code, _, err = run(["check-config", "--config", config(tmp_path, VALID)], env)
    assert code == 2
    assert err.startswith("environment variable SSL_CERT_FILE: http.ca_bundle: CA bundle ")


def test_check_config_shows_schedules_and_freshness(tmp_path: Path) -> None:
    kb = '[[knowledge_bases]]\nuuid = "9f3c1b2a-4d5e-11ef-8a1b-0242ac120002"\nname = "docs"\n'
    text = (
        '[schedules]\ngrace = "45m"\n[freshness]\nfresh_within = "30h"\n'
        + kb
        + 'fresh_within = "8h"\n'
        + VALID
    )
    code, out, err = run(
        ["check-config", "--config", config(tmp_path, text)], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN}
    )
    assert code == 0, err
    assert "Schedules:  read every 1h, a run is missed 45m after its time; " in out
    assert "fresh within 1d6h; docs: 8h" in out


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[schedules]\ngrace = "soon"\n', "schedules.grace"),
        ('[schedules]\nread_every = "1m"\n', "schedules.read_every: must be at least 5m"),
        ('[freshness]\nfresh_within = "0s"\n', "freshness.fresh_within"),
        ('[freshness]\nstale_after = "1h"\n', "freshness.stale_after"),
        (
            '[[knowledge_bases]]\nuuid = "9f3c1b2a-4d5e-11ef-8a1b-0242ac120002"\n'
            'fresh_within = "-1h"\n',
            "knowledge_bases[0].fresh_within",
        ),
    ],
)
def test_a_bad_schedule_or_freshness_key_is_named_with_its_source(
    tmp_path: Path, text: str, named: str
) -> None:
    path = config(tmp_path, text + VALID)
    code, _, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    assert code == 2
    assert f"{path}: {named}" in err, err

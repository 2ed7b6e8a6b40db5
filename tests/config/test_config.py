"""Loading the configuration: defaults, every error with its key and source, env, token, masking."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from watcher.config import Config, describe, load_config, mask_url, resolve_config_path
from watcher.config.url_secrets import url_secrets
from watcher.core.decide import route
from watcher.core.errors import ConfigError, ConfigProblem
from watcher.core.model import EventKind
from watcher.core.state import Policy, Transition
from watcher.service.runtime import cycle_settings

REPO = Path(__file__).resolve().parents[2]
TOKEN = "dop_v1_" + "5ec7e7" * 10 + "wxyz"
TOKEN_ENV = {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN}
SECRET = "T0PSECRET"
ROUTE = '[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:8080/hook"]\n'
KB_UUID = "9f3c1b2a-4d5e-11ef-8a1b-0242ac120002"
KBS = f'[[knowledge_bases]]\nuuid = "{KB_UUID}"\nname = "docs"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), {**TOKEN_ENV, **(env or {})})


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    for problem in caught.value.problems:
        assert SECRET not in str(problem) and TOKEN not in str(problem)
    return list(caught.value.problems)


def problem(tmp_path: Path, text: str, key: str, env: dict[str, str] | None = None) -> str:
    """The message of the one problem about `key`, checking it names the config file."""
    found = [p for p in problems(tmp_path, text, env) if p.key == key]
    assert len(found) == 1, found
    assert found[0].source == str(tmp_path / "watcher.toml")
    return found[0].message


def routed(
    config: Config, kind: EventKind, kb_uuid: str | None, kb_name: str | None = None
) -> list[str]:
    """The routes an event goes to under this config, by the rules the daemon builds from it."""
    event = Transition(f"e/{kind}", kind, datetime(2026, 12, 1, tzinfo=UTC), kb_uuid, kb_name)
    return [delivery.route for delivery in route([event], cycle_settings(config).rules)]


def test_example_config_loads_cleanly_with_a_token_in_the_environment() -> None:
    config = load_config(REPO / "config.example.toml", TOKEN_ENV)
    assert [route.name for route in config.routes] == ["ops", "docs-team"]
    assert [kb.name for kb in config.knowledge_bases] == ["product-docs", "support-articles"]
    assert config.token is not None and config.token.get_secret_value() == TOKEN


def test_a_minimal_file_gets_every_documented_default(tmp_path: Path) -> None:
    config = load(tmp_path, ROUTE)
    assert config.api.base_url == "https://api.digitalocean.com"
    assert (config.api.max_requests_per_minute, config.api.reserve, config.api.per_page) == (
        60,
        500,
        200,
    )
    assert (config.poll.interval, config.poll.active_interval, config.poll.jitter) == (
        timedelta(seconds=60),
        timedelta(seconds=15),
        timedelta(seconds=2),
    )
    assert config.stall_policy() == Policy()
    assert config.state.path == Path("watcher.db")
    assert config.state.retention == timedelta(days=90)
    assert config.delivery.storm_threshold == 5
    assert config.delivery.dead_after == timedelta(hours=24)
    assert config.alerts.api_unreachable_after == timedelta(minutes=10)
    assert config.alerts.delivery_failing_after == timedelta(minutes=10)
    assert (config.delivery.timeout, config.delivery.send_interval) == (
        timedelta(seconds=30),
        timedelta(seconds=1),
    )
    assert (config.http.ca_bundle, config.ca_bundle, config.routes[0].send_interval) == (
        None,
        None,
        None,
    )
    assert (config.log.level, config.log.format, config.http.address) == ("info", "auto", None)
    assert config.knowledge_bases == () and config.watched() == ()
    assert (config.schedules.grace, config.schedules.read_every) == (
        timedelta(minutes=30),
        timedelta(hours=1),
    )
    assert config.freshness.fresh_within is None
    assert config.routes[0].event_kinds == {
        EventKind.FAILED,
        EventKind.PARTIAL,
        EventKind.CANCELLED,
        EventKind.STALLED,
        EventKind.RECOVERED,
        EventKind.CORRECTED,
        EventKind.API_UNREACHABLE,
        EventKind.API_RECOVERED,
        EventKind.KNOWLEDGE_BASE_MISSING,
        EventKind.KNOWLEDGE_BASE_FOUND,
        EventKind.DELIVERY_FAILING,
        EventKind.DELIVERY_RECOVERED,
        EventKind.DATABASE_UNHEALTHY,
        EventKind.DATABASE_RECOVERED,
        EventKind.SCHEDULE_MISSED,
        EventKind.SCHEDULE_DISABLED,
        EventKind.STALE,
        EventKind.FRESH,
    }
    assert config.source == str(tmp_path / "watcher.toml")


def test_the_config_tree_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, ROUTE)
    with pytest.raises(ValidationError):
        config.poll.interval = timedelta(seconds=1)  # type: ignore[misc]


def test_a_missing_file_says_how_to_create_one_and_how_to_pick_another(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml", TOKEN_ENV)
    (only,) = caught.value.problems
    assert only.source == str(tmp_path / "absent.toml")
    assert "config.example.toml" in only.message
    assert "--config" in only.message and "$WATCHER_CONFIG" in only.message


def test_broken_toml_is_reported_with_its_line_and_column(tmp_path: Path) -> None:
    message = problem(tmp_path, '[poll]\ninterval = "60s"\njitter = \n', "file")
    assert "not valid TOML" in message and "line 3" in message and "column" in message


@pytest.mark.parametrize(
    ("text", "key", "suggestion"),
    [
        ('[poll]\nintervall = "5m"\n' + ROUTE, "poll.intervall", "'interval'"),
        (ROUTE + 'url = ["json://127.0.0.1/x"]\n', "routes[0].url", "'urls'"),
        (f'[[knowledge_bases]]\nuuid = "{KB_UUID}"\nnmae = "x"\n' + ROUTE,
         "knowledge_bases[0].nmae", "'name'"),
        ('[stal]\npending_after = "1m"\n' + ROUTE, "stal", "'stall'"),
    ],
)  # fmt: skip
def test_unknown_keys_are_named_with_the_closest_valid_key(
    tmp_path: Path, text: str, key: str, suggestion: str
) -> None:
    message = problem(tmp_path, text, key)
    assert message.startswith("unknown") and suggestion in message


def test_a_token_written_in_the_file_is_refused_without_repeating_it(tmp_path: Path) -> None:
    message = problem(tmp_path, f'[api]\ntoken = "{SECRET}"\n' + ROUTE, "api.token")
    assert "DIGITALOCEAN_ACCESS_TOKEN" in message


@pytest.mark.parametrize(
    ("text", "key", "why"),
    [
        ('[poll]\ninterval = "soon"\n', "poll.interval", "not a duration"),
        ('[stall]\nmax_runtime = "-1h"\n', "stall.max_runtime", "must not be negative"),
        ('[delivery]\nretry_base = "0s"\n', "delivery.retry_base", "longer than zero"),
        ('[api]\ntimeout = 0\n', "api.timeout", "longer than zero"),
        ('[state]\nretention = 1.5\n', "state.retention", "duration"),
    ],
)  # fmt: skip
def test_bad_durations_name_their_key(tmp_path: Path, text: str, key: str, why: str) -> None:
    assert why in problem(tmp_path, text + ROUTE, key)


def test_zero_is_allowed_where_it_makes_sense(tmp_path: Path) -> None:
    text = '[poll]\njitter = "0s"\n[alerts]\napi_unreachable_after = 0\n' + ROUTE
    config = load(tmp_path, text)
    assert config.poll.jitter == timedelta(0) == config.alerts.api_unreachable_after


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[api]\nmax_requests_per_minute = 251\n", "api.max_requests_per_minute"),
        ("[api]\nmax_requests_per_minute = 0\n", "api.max_requests_per_minute"),
        ("[api]\nper_page = 201\n", "api.per_page"),
        ("[api]\nreserve = -1\n", "api.reserve"),
        ('[api]\nmax_response_size = "10kB"\n', "api.max_response_size"),
        ('[api]\nmax_response_size = "2GiB"\n', "api.max_response_size"),
        ('[api]\nmax_response_size = "lots"\n', "api.max_response_size"),
        ("[api]\nmax_list_items = 100\n", "api.max_list_items"),
        ("[delivery]\nstorm_threshold = 0\n", "delivery.storm_threshold"),
        ('[log]\nlevel = "loud"\n', "log.level"),
        ('[log]\nformat = "xml"\n', "log.format"),
        ('[http]\nlisten = "9187"\n', "http.listen"),
        ('[http]\nlisten = "127.0.0.1:99999"\n', "http.listen"),
        ('[state]\npath = ""\n', "state.path"),
    ],
)
def test_out_of_range_values_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    assert problem(tmp_path, text + ROUTE, key)


def test_the_answer_caps_default_to_16_mib_and_20000_items_and_read_units(tmp_path: Path) -> None:
    assert (
        load(tmp_path, ROUTE).api.max_response_size,
        load(tmp_path, ROUTE).api.max_list_items,
    ) == (
        16 * 1024 * 1024,
        20_000,
    )
    text = '[api]\nmax_response_size = "4MB"\nmax_list_items = 50000\n' + ROUTE
    config = load(tmp_path, text)
    assert (config.api.max_response_size, config.api.max_list_items) == (4_000_000, 50_000)
    assert (
        load(tmp_path, "[api]\nmax_response_size = 1048576\n" + ROUTE).api.max_response_size
        == 2**20
    )


def test_corrected_is_an_event_word_a_route_may_ask_for(tmp_path: Path) -> None:
    text = ROUTE + 'events = ["corrected", "failed"]\n'
    assert load(tmp_path, text).routes[0].event_kinds == {EventKind.CORRECTED, EventKind.FAILED}


def test_an_active_interval_longer_than_the_interval_is_refused(tmp_path: Path) -> None:
    text = '[poll]\ninterval = "30s"\nactive_interval = "1m"\n' + ROUTE
    assert "poll.interval" in problem(tmp_path, text, "poll.active_interval")


def test_a_short_interval_scales_the_unset_active_interval_and_jitter(tmp_path: Path) -> None:
    config = load(tmp_path, '[poll]\ninterval = "4s"\n' + ROUTE)
    assert config.poll.active_interval == timedelta(seconds=4)
    assert config.poll.jitter == timedelta(seconds=2)


def test_retry_max_below_retry_base_is_refused(tmp_path: Path) -> None:
    text = '[delivery]\nretry_base = "5m"\nretry_max = "1m"\n' + ROUTE
    assert "retry_base" in problem(tmp_path, text, "delivery.retry_max")


def test_log_level_and_listen_address_are_parsed(tmp_path: Path) -> None:
    text = '[log]\nlevel = "DEBUG"\nformat = "json"\n[http]\nlisten = "[::1]:9187"\n' + ROUTE
    config = load(tmp_path, text)
    assert (config.log.level, config.log.format) == ("debug", "json")
    assert config.http.address == ("::1", 9187)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://localhost:8080",
        "http://[::1]:8080",
        "https://api.digitalocean.com",
        "https://example.com/prefix",
    ],
)
def test_http_is_allowed_only_for_loopback_and_https_anywhere(tmp_path: Path, url: str) -> None:
    config = load(tmp_path, f'[api]\nbase_url = "{url}/"\n' + ROUTE)
    assert config.api.base_url == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com", "loopback"),
        ("http://10.0.0.1:8080", "loopback"),
        ("ftp://127.0.0.1", "https://"),
        (f"https://user:{SECRET}@api.digitalocean.com", "credentials"),
    ],
)
def test_unsafe_base_urls_are_refused(tmp_path: Path, url: str, why: str) -> None:
    assert why in problem(tmp_path, f'[api]\nbase_url = "{url}"\n' + ROUTE, "api.base_url")


def test_a_route_with_no_urls_is_refused(tmp_path: Path) -> None:
    message = problem(tmp_path, '[[routes]]\nname = "ops"\nurls = []\n', "routes[0].urls")
    assert "empty" in message


def test_no_routes_at_all_is_refused(tmp_path: Path) -> None:
    assert "nobody" in problem(tmp_path, "[poll]\n", "routes")


def test_an_unparseable_apprise_url_names_route_and_index_but_never_the_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = f'["json://127.0.0.1/ok", "nosuchscheme://{SECRET}@host/x"]'
    with caplog.at_level(logging.DEBUG):
        message = problem(tmp_path, f'[[routes]]\nname = "ops"\nurls = {urls}\n', "routes[0].urls")
    assert "URL #2" in message and "'ops'" in message and "nosuchscheme://" in message
    assert SECRET not in caplog.text
    assert SECRET not in "".join(capsys.readouterr())


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (f'[poll]\ninterval = "slack://{SECRET}/a"\n' + ROUTE, "poll.interval"),
        (ROUTE + f'events = ["slack://{SECRET}/a"]\n', "routes[0].events[0]"),
        (KBS + ROUTE + f'knowledge_bases = ["mailto://u:{SECRET}@x.com"]\n',
         "routes[0].knowledge_bases[0]"),
    ],
)  # fmt: skip
def test_a_url_pasted_into_the_wrong_key_is_not_echoed(tmp_path: Path, text: str, key: str) -> None:
    assert "this " in problem(tmp_path, text, key)  # "this value" / "this entry"


def test_a_url_given_as_a_string_instead_of_a_list_is_not_echoed(tmp_path: Path) -> None:
    text = f'[[routes]]\nname = "ops"\nurls = "slack://{SECRET}/x/y"\n'
    assert problem(tmp_path, text, "routes[0].urls") == "must be a list"


def test_duplicate_route_names_are_refused(tmp_path: Path) -> None:
    assert "routes[0]" in problem(tmp_path, ROUTE + ROUTE, "routes[1].name")


def test_unknown_events_are_refused_with_a_suggestion(tmp_path: Path) -> None:
    text = ROUTE + 'events = ["failed", "stalle"]\n'
    assert "'stalled'" in problem(tmp_path, text, "routes[0].events[1]")


def test_star_subscribes_a_route_to_every_event_but_the_scheduled_digest(tmp_path: Path) -> None:
    config = load(tmp_path, ROUTE + 'events = ["*"]\n')
    # every event but the incident's own (repeat_after and escalate_to send them) and the digest
    chosen = frozenset(EventKind) - {EventKind.REMINDER, EventKind.ESCALATED, EventKind.DIGEST}
    assert config.routes[0].event_kinds == chosen


@pytest.mark.parametrize("ref", ["docs", KB_UUID, KB_UUID.upper(), "*"])
def test_routes_may_name_watched_kbs_by_name_or_uuid(tmp_path: Path, ref: str) -> None:
    config = load(tmp_path, KBS + ROUTE + f'knowledge_bases = ["{ref}"]\n')
    # the API may call the KB something else than the config does
    assert routed(config, EventKind.FAILED, KB_UUID, "api-name") == ["ops"]
    assert routed(config, EventKind.API_UNREACHABLE, None) == ["ops"]
    assert routed(config, EventKind.COMPLETED, KB_UUID, "docs") == []  # not subscribed
    assert config.watched()[0].uuid == KB_UUID
    assert KB_UUID in config.kb_refs(config.routes[0]) or ref == "*"


def test_a_route_naming_an_unwatched_kb_is_refused(tmp_path: Path) -> None:
    text = KBS + ROUTE + 'knowledge_bases = ["docs", "other"]\n'
    assert "'other'" in problem(tmp_path, text, "routes[0].knowledge_bases[1]")


def test_a_route_filter_excludes_other_kbs(tmp_path: Path) -> None:
    config = load(tmp_path, ROUTE + 'knowledge_bases = ["docs"]\n')
    assert routed(config, EventKind.FAILED, "0b7d2e4c-6f81-11ef-9c2d-0242ac120002", "x") == []
    assert routed(config, EventKind.FAILED, "0b7d2e4c-6f81-11ef-9c2d-0242ac120002", "docs") == [
        "ops"
    ]


def test_bad_and_duplicate_kb_uuids_are_refused(tmp_path: Path) -> None:
    found = {p.key for p in problems(tmp_path, KBS + KBS + '[[knowledge_bases]]\nuuid = "x"\n')}
    assert {
        "knowledge_bases[1].uuid",
        "knowledge_bases[1].name",
        "knowledge_bases[2].uuid",
    } <= found


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = '[poll]\ninterval = "x"\n[api]\nper_page = 0\n[[routes]]\nname = "a"\nurls = []\n'
    assert {p.key for p in problems(tmp_path, text)} == {
        "poll.interval",
        "api.per_page",
        "routes[0].urls",
    }


def test_env_overrides_nested_keys_with_double_underscores(tmp_path: Path) -> None:
    env = {"WATCHER_POLL__INTERVAL": "30s", "WATCHER_API__BASE_URL": "http://127.0.0.1:8080"}
    config = load(tmp_path, '[poll]\ninterval = "5m"\n' + ROUTE, env)
    assert config.poll.interval == timedelta(seconds=30)
    assert config.api.base_url == "http://127.0.0.1:8080"
    assert config.overrides == ("WATCHER_API__BASE_URL", "WATCHER_POLL__INTERVAL")


def test_env_replaces_a_whole_list_with_json(tmp_path: Path) -> None:
    env = {
        "WATCHER_ROUTES": '[{"name": "env", "urls": ["json://127.0.0.1/a"], "events": ["*"]}]',
        "WATCHER_KNOWLEDGE_BASES": f'[{{"uuid": "{KB_UUID}"}}]',
    }
    config = load(tmp_path, ROUTE, env)
    assert [route.name for route in config.routes] == ["env"]
    assert config.knowledge_bases[0].uuid == KB_UUID


def test_env_replaces_a_nested_list_of_one_route_with_json(tmp_path: Path) -> None:
    env = {"WATCHER_ROUTES__0__URLS": f'["json://127.0.0.1/{SECRET}"]'}
    config = load(tmp_path, ROUTE, env)
    assert config.routes[0].urls[0].get_secret_value() == f"json://127.0.0.1/{SECRET}"
    assert SECRET not in describe(config)


def test_a_bad_env_value_is_blamed_on_the_env_var(tmp_path: Path) -> None:
    found = problems(tmp_path, ROUTE, {"WATCHER_POLL__INTERVAL": "-5m"})
    assert [(p.key, p.source) for p in found] == [("poll.interval", "WATCHER_POLL__INTERVAL")]


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("WATCHER_POLL__INTERVALL", "5m", "poll.intervall"),  # unknown key
        ("WATCHER_ROUTES", "[{bad json", "routes"),  # lists must be JSON
        ("WATCHER_ROUTES__3__URLS", '["json://127.0.0.1/x"]', "routes[3].urls"),  # no entry 3
        ("WATCHER_ROUTES__0__URLS", f"slack://{SECRET}", "routes[0].urls"),  # not JSON
    ],
)
def test_env_problems_name_the_env_var(tmp_path: Path, name: str, value: str, key: str) -> None:
    found = problems(tmp_path, ROUTE, {name: value})
    assert [(p.key, p.source) for p in found] == [(key, name)]


def test_watcher_config_is_not_taken_for_a_config_key(tmp_path: Path) -> None:
    assert load(tmp_path, ROUTE, {"WATCHER_CONFIG": "/elsewhere.toml"}).overrides == ()


def test_config_path_comes_from_the_option_then_the_env_then_the_default() -> None:
    env = {"WATCHER_CONFIG": "/etc/watcher/w.toml"}
    assert resolve_config_path("/x.toml", env) == Path("/x.toml")
    assert resolve_config_path(None, env) == Path("/etc/watcher/w.toml")
    assert resolve_config_path(None, {}) == Path("watcher.toml")


def test_load_config_without_a_path_uses_watcher_config(tmp_path: Path) -> None:
    path = write(tmp_path, ROUTE)
    assert load_config(None, {**TOKEN_ENV, "WATCHER_CONFIG": str(path)}).source == str(path)


def token_file(tmp_path: Path, content: str = "dop_v1_fromfile\n") -> Path:
    path = tmp_path / "do-token"
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("env", "expected", "source"),
    [
        (
            {"DIGITALOCEAN_ACCESS_TOKEN": "a", "DIGITALOCEAN_TOKEN": "b"},
            "a",
            "environment variable DIGITALOCEAN_ACCESS_TOKEN",
        ),
        (
            {"DIGITALOCEAN_ACCESS_TOKEN": " ", "DIGITALOCEAN_TOKEN": "b"},
            "b",
            "environment variable DIGITALOCEAN_TOKEN",
        ),
        ({}, "dop_v1_fromfile", "token file"),
    ],
)
def test_token_precedence_is_access_token_then_token_then_file(
    tmp_path: Path, env: dict[str, str], expected: str, source: str
) -> None:
    text = f'[api]\ntoken_file = "{token_file(tmp_path)}"\n' + ROUTE
    config = load_config(write(tmp_path, text), env)
    assert config.token is not None and config.token.get_secret_value() == expected
    assert config.token_source is not None and config.token_source.startswith(source)


def test_a_relative_token_file_is_found_in_the_credentials_directory(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    token_file(credentials)
    path = write(tmp_path, '[api]\ntoken_file = "do-token"\n' + ROUTE)
    config = load_config(path, {"CREDENTIALS_DIRECTORY": str(credentials)})
    assert config.token is not None and config.token.get_secret_value() == "dop_v1_fromfile"
    assert config.token_source == f"token file {credentials / 'do-token'}"


@pytest.mark.parametrize(
    ("content", "why"),
    [(None, "does not exist"), ("\n", "is empty"), ("dir", "cannot read"), ("a b", "spaces")],
)
def test_token_file_problems_are_named(tmp_path: Path, content: str | None, why: str) -> None:
    path = tmp_path / "do-token"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    config = write(tmp_path, f'[api]\ntoken_file = "{path}"\n' + ROUTE)
    with pytest.raises(ConfigError) as caught:
        load_config(config, {})
    (only,) = caught.value.problems
    assert (only.key, only.source) == ("api.token_file", str(config))
    assert why in only.message and "a b" not in only.message


def test_no_token_anywhere_names_the_three_places_it_may_come_from(tmp_path: Path) -> None:
    path = write(tmp_path, ROUTE)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    (only,) = caught.value.problems
    assert (only.key, only.source) == ("token", str(path))
    for place in ("DIGITALOCEAN_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN", "api.token_file"):
        assert place in only.message
    assert load_config(path, {}, require_token=False).token is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # apprise marks Slack's three tokens private; the channel is a target
        ("slack://TokenA/TokenB/TokenC/#indexing", "slack://****/****/****/#indexing"),
        # user info always; `to` is an argument apprise declares public
        (
            "mailto://user:pass@gmail.com?to=a@example.com",
            "mailto://****@gmail.com?to=a@example.com",
        ),
        # a generic webhook's path may hold its secret: a segment that could be one is masked
        # (and the whole path with it), one that reads as a word is not
        ("json://127.0.0.1:8080/hook/x7Qp2Lk9Zr", "json://127.0.0.1:8080/hook/****"),
        ("json://127.0.0.1:8080/hooks/alerts", "json://127.0.0.1:8080/hooks/alerts"),
        ("ntfy://ntfy.sh/topic", "ntfy://ntfy.sh/topic"),
        ("discord://123456/abcdef", "discord://****/****"),
        ("mmost://[::1]:8065/token", "mmost://[::1]:8065/****"),
        ("not a url with secrets", "****"),
    ],
)
def test_apprise_urls_are_masked_from_what_apprise_says_is_secret(url: str, shown: str) -> None:
    assert url_secrets(url).masked(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("slack://TokenA/TokenB/TokenC/#indexing", "slack://****/****/****/****"),
        ("mailto://user:pass@gmail.com?to=a@example.com", "mailto://****@gmail.com?to=****"),
        ("mmost://[::1]:8065/token", "mmost://[::1]:8065/****"),
    ],
)
def test_urls_without_apprise_show_only_the_scheme_and_a_host_name(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_describe_shows_what_was_loaded_with_secrets_masked(tmp_path: Path) -> None:
    text = KBS + f'[[routes]]\nname = "ops"\nurls = ["slack://{SECRET}/B/C/#indexing"]\n'
    shown = describe(load(tmp_path, text))
    assert SECRET not in shown and TOKEN not in shown
    assert "dop_v1_… (sha256 ff39b832)" in shown and "DIGITALOCEAN_ACCESS_TOKEN" in shown
    assert "slack://****/****/****/#indexing" in shown
    assert "docs" in shown and "every 1m" in shown


def test_a_config_can_be_built_in_code_without_file_or_token_env(tmp_path: Path) -> None:
    config = Config.for_demo(
        "http://127.0.0.1:9999",
        tmp_path / "demo.db",
        "demo-token",
        {"terminal": ["json://127.0.0.1:1/x"]},
        overrides={"poll": {"interval": "2s", "jitter": "0s"}},
    )
    assert config.api.base_url == "http://127.0.0.1:9999"
    assert config.poll.interval == timedelta(seconds=2) and config.poll.jitter == timedelta(0)
    unasked = {EventKind.DIGEST, EventKind.REMINDER, EventKind.ESCALATED}  # sent by other keys
    assert config.routes[0].event_kinds == frozenset(EventKind) - unasked
    assert config.token is not None and config.token.get_secret_value() == "demo-token"


def test_building_in_code_validates_like_loading() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_mapping({"poll": {"interval": "x"}, "routes": []})
    assert {(p.key, p.source) for p in caught.value.problems} == {
        ("poll.interval", "<code>"),
        ("routes", "<code>"),
    }


def test_url_checks_can_be_skipped_for_schemes_registered_later() -> None:
    data = {"routes": [{"name": "demo", "urls": ["democonsole://"]}]}
    with pytest.raises(ConfigError):
        Config.from_mapping(data)
    assert Config.from_mapping(data, check_urls=False).routes[0].name == "demo"

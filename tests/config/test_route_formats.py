"""The route keys of issue 16 (format, secret_file, templates) and [heartbeat]: each mistake is
named by its key, its source and why, like every other key."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from watcher.config import Config
from watcher.core.errors import ConfigError

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def _problems(**route: Any) -> list[str]:
    data = {"routes": [{"name": "ci", "urls": ["json://127.0.0.1:9/x"], **route}]}
    with pytest.raises(ConfigError) as caught:
        Config.from_mapping(data, token="t", source="watcher.toml")
    return [str(p) for p in caught.value.problems]


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(f"# new first, old second\n{SECRET}\n", encoding="utf-8")
    return path


def test_an_event_route_with_a_secret_file_loads_its_keys(secret_file: Path) -> None:
    route = {"name": "ci", "format": "event", "urls": ["https://ci.example.com/hook"]}
    config = Config.from_mapping({"routes": [route | {"secret_file": str(secret_file)}]}, token="t")
    assert config.routes[0].signing_keys == (bytes(range(32)),)


def test_an_event_route_without_a_secret_is_refused_with_how_to_make_one() -> None:
    (problem,) = _problems(format="event", urls=["https://ci.example.com/hook"])
    assert problem.startswith("watcher.toml: routes[0]: ")
    assert "set secret_file" in problem and "whsec_" in problem


def test_a_secret_file_on_an_alert_route_is_refused(secret_file: Path) -> None:
    (problem,) = _problems(secret_file=str(secret_file))
    assert 'secret_file is for format = "event" routes only' in problem


def test_an_apprise_url_on_an_event_route_is_refused(secret_file: Path) -> None:
    (problem,) = _problems(format="event", secret_file=str(secret_file))
    assert "routes[0].urls: URL #1 must be an https:// URL" in problem


def test_a_bad_secret_names_the_file_and_line_and_never_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("whsec_c2hvcnQ=\n", encoding="utf-8")
    (problem,) = _problems(format="event", urls=["https://ci.example.com/h"], secret_file=str(path))
    assert f"secret_file {path}, line 1: a signing secret holds 24 to 64 bytes" in problem
    assert "c2hvcnQ" not in problem


def test_an_unknown_format_and_a_misspelt_key_are_named() -> None:
    problems = _problems(format="json", secret_fil="x")
    assert any("routes[0].format: Input should be 'alert' or 'event'" in p for p in problems)
    assert any(
        "routes[0].secret_fil: unknown key; did you mean 'secret_file'?" in p for p in problems
    )


def test_a_template_syntax_error_names_the_route_and_the_line() -> None:
    (problem,) = _problems(body_template="Job {{ job.uuid }}\n{% if job %}\n{{ job.uuid }")
    assert problem.startswith("watcher.toml: routes[0].body_template: route 'ci': line 3: ")


def test_a_template_that_would_fail_for_an_event_the_route_gets_is_refused() -> None:
    # the route gets api_unreachable, which has no job: `job.uuid` would fail at send time
    (problem,) = _problems(events=["failed", "api_unreachable"], title_template="{{ job.uuid }}")
    assert "title_template: route 'ci': line 1: " in problem
    assert "(for a api_unreachable event)" in problem


def test_a_template_may_guard_what_an_event_lacks() -> None:
    route = {
        "name": "ci",
        "urls": ["json://127.0.0.1:9/x"],
        "events": ["*"],
        "title_template": "{% if job %}{{ job.uuid }}{% else %}{{ headline }}{% endif %}",
    }
    assert Config.from_mapping({"routes": [route]}, token="t").routes[0].templates[0] is not None


def test_a_template_cannot_reach_python_internals() -> None:
    (problem,) = _problems(title_template="{{ headline.__class__.__mro__ }}")
    assert "line 1: access to attribute '__class__' of 'str' object is unsafe" in problem


def test_an_event_route_has_no_templates(secret_file: Path) -> None:
    (problem,) = _problems(
        format="event",
        urls=["https://ci.example.com/h"],
        secret_file=str(secret_file),
        title_template="x",
    )
    assert "templates are for alerts" in problem

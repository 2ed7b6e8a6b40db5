"""`[[time_intervals]]`, a route's `mute_during` and `digest` in `watcher check-config`: a valid
window passes; every mistake exits 2 naming the key, the route where it is one, and the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.test_cli_check_config import TOKEN, config, run
from watcher.config import Config

ROUTE = '[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:9/x"]\n'
NIGHTS = """
[[time_intervals]]
name = "weekday-nights"
[[time_intervals.time_intervals]]
times = [{ start_time = "22:00", end_time = "06:00" }]
weekdays = ["monday:friday"]
location = "Europe/Berlin"
[[time_intervals.time_intervals]]
weekdays = ["saturday", "sunday"]
days_of_month = ["1:7", "-3:-1"]
months = ["december:february"]
years = ["2026:2027"]
location = "America/New_York"
"""


def check(tmp_path: Path, text: str) -> tuple[int, str, str, str]:
    path = config(tmp_path, text)
    code, out, err = run(["check-config", "--config", path], {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN})
    return code, out, err, path


def test_a_route_muted_by_a_window_with_a_digest_is_valid(tmp_path: Path) -> None:
    route = (
        ROUTE + 'mute_during = ["weekday-nights"]\ndigest = "weekly monday 09:00 Europe/Berlin"\n'
    )
    code, out, err, _ = check(tmp_path, NIGHTS + route)
    assert code == 0, err
    assert "quiet during weekday-nights (held, then one message)" in out
    assert "digest weekly monday 09:00 Europe/Berlin" in out
    loaded = Config.from_mapping(
        {
            "time_intervals": [
                {"name": "n", "time_intervals": [{"weekdays": ["saturday:monday"]}]}
            ],
            "routes": [{"name": "ops", "urls": ["json://127.0.0.1:9/x"], "mute_during": ["n"]}],
        },
        token="t",
    )
    (window,) = loaded.mutes()["ops"]
    assert window.intervals[0].weekdays == frozenset({5, 6, 0})  # wraps around the week


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            NIGHTS + ROUTE + 'mute_during = ["weekday-nights", "weekend"]\n',
            "routes[0].mute_during[1]",
            "route 'ops': 'weekend' names no [[time_intervals]] (known: weekday-nights)",
        ),
        (
            NIGHTS.replace("Europe/Berlin", "Europe/Atlantis") + ROUTE,
            "time_intervals[0].time_intervals[0].location",
            "'Europe/Atlantis' is not an IANA timezone",
        ),
        (
            NIGHTS.replace('"22:00"', '"22h"') + ROUTE,
            "time_intervals[0].time_intervals[0].times[0].start_time",
            "'22h' is not a time of day as HH:MM",
        ),
        (
            NIGHTS.replace('"2026:2027"', '"2027:2026"') + ROUTE,
            "time_intervals[0].time_intervals[1].years",
            "'2027:2026': the range starts after it ends",
        ),
        (
            NIGHTS.replace('"1:7"', '"1:32"') + ROUTE,
            "time_intervals[0].time_intervals[1].days_of_month",
            "'32' is not a day of month (-31 to 31)",
        ),
        (
            NIGHTS.replace("years =", "yeers =") + ROUTE,
            "time_intervals[0].time_intervals[1].yeers",
            "unknown key; did you mean 'years'?",
        ),
        (
            '[[time_intervals]]\nname = "always"\n[[time_intervals.time_intervals]]\n'
            'location = "UTC"\n' + ROUTE + 'mute_during = ["always"]\n',
            "time_intervals[0].time_intervals[0]",
            "sets none of times, weekdays, days_of_month, months, years: it would match all",
        ),
        (
            NIGHTS + NIGHTS + ROUTE,
            "time_intervals[1].name",
            "'weekday-nights' is taken",
        ),
        (
            ROUTE + 'digest = "every day at nine"\n',
            "routes[0].digest",
            'is not a digest schedule; e.g. "daily 09:00 Europe/Berlin"',
        ),
        (
            ROUTE + 'digest = "weekly 09:00 UTC"\n',
            "routes[0].digest",
            "a weekly digest names its weekday",
        ),
        (
            ROUTE + 'events = ["failed", "digest"]\n',
            "routes[0].events[1]",
            'a digest is not asked for in events: set digest = "daily 09:00 UTC"',
        ),
    ],
)
def test_a_bad_window_or_schedule_is_an_error_naming_the_key_and_the_source(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    code, _, err, path = check(tmp_path, text)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith(f"{path}: {key}: ")]
    assert lines and message in lines[0], err


def test_an_unknown_window_set_from_the_environment_is_blamed_on_the_variable(
    tmp_path: Path,
) -> None:
    path = config(tmp_path, NIGHTS + ROUTE)
    routes = '[{"name": "ops", "urls": ["json://127.0.0.1:9/x"], "mute_during": ["weekend"]}]'
    code, _, err = run(
        ["check-config", "--config", path],
        {"DIGITALOCEAN_ACCESS_TOKEN": TOKEN, "WATCHER_ROUTES": routes},
    )
    assert code == 2
    assert "WATCHER_ROUTES: routes[0].mute_during[0]: route 'ops': 'weekend' names no" in err


def test_a_muted_event_route_is_described_as_getting_each_held_event(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("whsec_" + "A" * 43 + "=\n")
    route = (
        '[[routes]]\nname = "ci"\nformat = "event"\nurls = ["https://ci.example.com/hook"]\n'
        f'secret_file = "{secret}"\nmute_during = ["weekday-nights"]\n'
    )
    code, out, err, _ = check(tmp_path, NIGHTS + route)
    assert code == 0, err
    assert "quiet during weekday-nights (held, then each event)" in out

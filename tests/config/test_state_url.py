"""`[state] url`, `lease` and `claim_lease`: a PostgreSQL store is chosen by a libpq URL, from
the file or `WATCHER_STATE__URL`, and its password is never echoed back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.config.test_config import ROUTE, load, problems
from watcher.config.describe import describe

PASSWORD = "pw-0f3a9c-never-shown"


def test_a_postgresql_url_selects_the_shared_store_and_keeps_the_file_default(
    tmp_path: Path,
) -> None:
    url = f"postgresql://watcher:{PASSWORD}@db.internal:25060/alerts?sslmode=require"
    config = load(tmp_path, ROUTE, {"WATCHER_STATE__URL": url})
    assert config.state.shared
    assert config.state.url is not None and config.state.url.get_secret_value() == url
    assert config.state.where() == "watcher@db.internal:25060/alerts (PostgreSQL)"
    assert (config.state.lease, config.state.claim_lease) == (
        timedelta(seconds=30),
        timedelta(minutes=5),
    )
    assert PASSWORD not in describe(config)
    assert not load(tmp_path, ROUTE).state.shared


@pytest.mark.parametrize(
    ("url", "words"),
    [
        # another database engine
        (f"mysql://watcher:{PASSWORD}@db/alerts", "must be a PostgreSQL URL"),
        # a key-value DSN rather than a URL
        (f"host=db password={PASSWORD} dbname=alerts", "must be a PostgreSQL URL"),
        # no database named
        (f"postgresql://watcher:{PASSWORD}@db:5432", "must name a host and a database"),
        # a port libpq cannot read (check-config crashed on it)
        (f"postgresql://watcher:{PASSWORD}@db:99999/alerts", "port from 1 to 65535"),
        # a query parameter libpq does not know (every store command crashed on it)
        (f"postgresql://watcher:{PASSWORD}@db/alerts?bogus=1", 'parameter: "bogus"'),
    ],
)
def test_a_url_that_is_not_a_postgresql_database_names_the_key_without_its_password(
    tmp_path: Path, url: str, words: str
) -> None:
    text = f'[state]\nurl = "{url}"\n' + ROUTE
    (found,) = [p for p in problems(tmp_path, text) if p.key == "state.url"]
    assert words in found.message
    assert PASSWORD not in str(found)


def test_the_lease_durations_are_read_from_the_state_section(tmp_path: Path) -> None:
    config = load(tmp_path, '[state]\nlease = "10s"\nclaim_lease = "90s"\n' + ROUTE)
    assert (config.state.lease, config.state.claim_lease) == (
        timedelta(seconds=10),
        timedelta(seconds=90),
    )

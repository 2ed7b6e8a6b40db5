"""Shared fixtures. Real loopback receivers for delivery tests live in `tests.receivers`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests import storeguard
from tests.receivers import SmtpReceiver, WebhookReceiver
from tests.stores import Engine, pg_available
from watcher.core.redact import SECRETS


def pytest_configure(config: pytest.Config) -> None:
    """The store guard watches every test of the session (see `tests.storeguard`)."""
    storeguard.install()


@pytest.fixture(autouse=True)
def store_opened_only_by_sqlite() -> Iterator[None]:
    """Fail the test if anything opened a live store's file outside SQLite during it."""
    storeguard.violations.clear()
    yield
    found, storeguard.violations[:] = list(storeguard.violations), []
    assert not found, "a live SQLite store was opened outside its connection:\n" + found[0]


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """Each test starts from structlog's defaults: a CLI test's level filter must not leak."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def fresh_secrets() -> Iterator[None]:
    """Each test starts with no registered secret: one test's password must not mask another's
    words (the registry is process-wide, as the watcher's processes need it)."""
    SECRETS.clear()
    yield
    SECRETS.clear()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """An HTTP webhook receiver on 127.0.0.1, stopped after the test."""
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """An SMTP server on 127.0.0.1, stopped after the test."""
    receiver = SmtpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Each store engine in turn: a SQLite file in `tmp_path`, or a fresh PostgreSQL schema
    (at `tests.stores.PG_SERVER`, dropped after the test; skipped when no server answers)."""
    if request.param == "postgresql":
        missing = pg_available()
        if missing is not None:
            pytest.skip(missing)
    place = Engine(request.param, tmp_path)
    try:
        yield place
    finally:
        place.drop()

"""Shared fixtures. Real loopback receivers for delivery tests live in `tests.receivers`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from tests.receivers import SmtpReceiver, WebhookReceiver


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """Each test starts from structlog's defaults: a CLI test's level filter must not leak."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


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

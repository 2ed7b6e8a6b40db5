"""The page in a real headless browser: Debian's Chromium driven by Playwright.

Playwright's own browser download is not used (`executable_path` points at the system's
Chromium, `$WATCHER_TEST_CHROMIUM` or /usr/bin/chromium; `.ci/run` installs Debian's
`chromium` when it is missing). Running as root needs `--no-sandbox`. Each test gets a fresh
page that records console messages, uncaught errors, failed requests and dialogs, and fails
the test on any console error (a Content-Security-Policy violation is one).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, sync_playwright

from tests.process.conftest import Service

CHROMIUM = (
    os.environ.get("WATCHER_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)


@dataclass
class Seen:
    """What the browser reported while a test ran."""

    console: list[ConsoleMessage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def expect_error(self, words: str) -> None:
        """A console error the test causes on purpose (a refused request) is not a failure."""
        self.expected.append(words)

    @property
    def console_errors(self) -> list[str]:
        return [
            m.text
            for m in self.console
            if m.type == "error" and not any(words in m.text for words in self.expected)
        ]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per module, closed before the next module runs: Playwright's sync API keeps
    its own event loop current while it is open, which no asyncio test could run beside."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (see .ci/run)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def page(browser: Browser, seen: Seen) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.on("console", lambda message: seen.console.append(message))
    opened.on("pageerror", lambda exc: seen.errors.append(str(exc)))
    opened.on("requestfailed", lambda req: seen.failed.append(req.url))

    def dismiss(dialog: Dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", dismiss)
    try:
        yield opened
    finally:
        context.close()
    assert not seen.console_errors, seen.console_errors
    assert not seen.errors, seen.errors
    assert not seen.dialogs, seen.dialogs


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """The process harness: simulators, receivers and `watcher` processes, cleaned up after."""
    harness = Service(tmp_path)
    try:
        yield harness
    finally:
        harness.close()

"""The page as a person uses it, in headless Chromium, served by a real `watcher run` (and by
`watcher demo`): the overview's states, its refresh without a reload, the charts, retrying a
dead letter, hostile names; and no console error on any page."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Seen
from tests.process.conftest import (
    WATCHER,
    Route,
    Service,
    config_text,
    manual_simulator,
    scenario,
    start_job,
    wait_for,
)
from tests.storeguard import guard_env
from watcher.simulator import Simulator

# One worker runs the module under pytest-xdist: one browser (`browser`) for all its tests.
# (Ignored under pytest 9.2 until pytest-xdist issue 1386 is fixed: see pyproject.toml.)
pytestmark = pytest.mark.xdist_group("browser")

TOKEN = "browser-test-token-0123456789"
KBS = [("alpha", "alpha-docs"), ("beta", "beta-wiki"), ("gamma", "gamma-notes")]
DEMO_KBS = [
    "product-docs",
    "support-articles",
    "pricing-pages",
    "legal-archive",
    "engineering-wiki",
    "release-notes",
    "onboarding-guides",
]
STATE_WORDS = {
    "pending",
    "running",
    "stalled",
    "unknown",
    "completed",
    "no changes",
    "partial",
    "failed",
    "cancelled",
    "no jobs",
}
TIMELINE = [
    start_job(5, "alpha", "completed", run=4),
    start_job(5, "beta", "failed", run=4),
    start_job(5, "gamma", "completed", run=20),
    start_job(20, "alpha", "partial", run=4),
    start_job(35, "alpha", "completed", run=6),
]


def _daemon(service: Service, sim: Simulator, *, dead: bool = False, token: bool = False) -> str:
    """`watcher run` watching `sim`, the page on a free port; its base URL."""
    base_url = service.serve(sim)
    receiver = service.receiver()
    routes = [Route("ops", (receiver.url_json("/ops"),))]
    if dead:
        refusing = service.receiver()
        refusing.answer(404)  # permanent: dead-lettered at once
        routes.append(Route("gone", (refusing.url_json("/gone"),), ("failed", "completed")))
    extra = '[http]\nlisten = "127.0.0.1:0"\n'  # a free port, read from the log
    if token:
        (service.dir / "page-token").write_text(TOKEN + "\n")
        extra += f'auth_token_file = "{service.dir / "page-token"}"\n'
    service.write_config(
        config_text(base_url=base_url, state=service.state, routes=routes, extra=extra)
    )
    port = service.run_daemon().wait_for_log("http_listening")["port"]
    return f"http://127.0.0.1:{port}"


def _until(page: Page, holds: Callable[[], bool], timeout: float, what: str) -> None:
    """Reload the page until `holds()` (the daemon may not have polled yet)."""

    def check() -> bool:
        if holds():
            return True
        page.wait_for_timeout(250)
        page.reload()
        return False

    wait_for(check, timeout, what)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _states(page: Page) -> dict[str, str]:
    rows = page.locator("table.kbs tbody tr[data-uuid]")
    return {
        rows.nth(i).locator("th a").inner_text(): rows.nth(i).locator(".badge").inner_text()
        for i in range(rows.count())
    }


def test_the_overview_shows_each_state_and_refreshes_itself_without_a_reload(
    service: Service, page: Page
) -> None:
    sim = manual_simulator(scenario(KBS, TIMELINE))
    base = _daemon(service, sim)
    sim.advance(12)  # alpha completed, beta failed, gamma running
    page.goto(base + "/")
    expect(page.locator("table.kbs")).to_contain_text("gamma-notes")
    expected = {"alpha-docs": "completed", "beta-wiki": "failed", "gamma-notes": "running"}
    _until(page, lambda: _states(page) == expected, 30, "the three states on the page")
    page.evaluate("window.__notReloaded = true")

    sim.advance(18)  # gamma completes; alpha's second job finished partial
    expect(page.locator('tr:has-text("gamma-notes") .badge')).to_have_text(
        "completed", timeout=30_000
    )
    expect(page.locator('tr:has-text("alpha-docs") .badge')).to_have_text("partial")
    assert page.evaluate("window.__notReloaded") is True  # refreshed in place
    expect(page.locator('[data-field="refreshed"]')).to_contain_text("updated")
    sparks = page.locator('tr:has-text("alpha-docs") .spark i')
    assert sparks.count() == 2

    page.select_option('select[name="state"]', "problems")  # the filter applies on change
    page.wait_for_url(re.compile(r"state=problems"))
    assert set(_states(page)) == {"alpha-docs", "beta-wiki"}


def test_a_knowledge_bases_page_draws_its_charts(service: Service, page: Page) -> None:
    sim = manual_simulator(scenario(KBS, TIMELINE))
    base = _daemon(service, sim)
    sim.advance(50)
    page.goto(base + "/")
    sparks = page.locator('tr:has-text("alpha-docs") .spark i')
    _until(page, lambda: sparks.count() == 3, 30, "alpha's three jobs")
    page.click("text=alpha-docs")
    expect(page.locator("h1")).to_contain_text("alpha-docs")
    charts = page.locator("svg.chart")
    assert charts.count() == 3
    for i in range(3):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 30
        drawn = charts.nth(i).locator("path")
        assert drawn.count() >= 1
        shape = drawn.first.bounding_box()
        assert shape is not None and shape["width"] > 0 and shape["height"] > 0
    page.locator("table.jobs a").first.click()
    expect(page.locator("h1")).to_contain_text("Job")


def test_no_page_logs_a_console_error(service: Service, page: Page, seen: Seen) -> None:
    sim = manual_simulator(scenario(KBS, TIMELINE))
    base = _daemon(service, sim, dead=True, token=True)
    sim.advance(12)
    for path in (
        "/",
        "/deliveries",
        "/deliveries?state=dead",
        "/deliveries?state=sent",
        "/watcher",
    ):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
    page.goto(base + "/")
    page.click("text=beta-wiki")
    page.locator("table.jobs a").first.click()
    page.wait_for_load_state("networkidle")
    assert [m for m in seen.console if m.type in ("error", "warning")] == []


def test_a_dead_letter_is_retried_only_with_the_token(
    service: Service, page: Page, seen: Seen
) -> None:
    seen.expect_error("status of 401 (Unauthorized)")  # the refusals this test asks for
    sim = manual_simulator(scenario(KBS, TIMELINE))
    base = _daemon(service, sim, dead=True, token=True)
    sim.advance(12)
    page.goto(base + "/deliveries?state=dead")
    _until(page, lambda: page.locator("button[data-retry]").count() >= 2, 30, "dead letters")
    row = page.locator("tr[data-delivery]").first
    result = row.locator('[data-field="retry-result"]')

    row.locator("button").click()  # no token typed
    expect(result).to_have_text("type the token first")
    page.fill("#token", "a-wrong-token-of-some-length")
    row.locator("button").click()
    expect(result).to_have_text("this needs the token of http.auth_token_file")
    # a script of the page's own origin without the token is refused too
    status = page.evaluate(
        "async (u) => (await fetch(u, {method: 'POST'})).status",
        base + "/api/v1/deliveries/1/retry",
    )
    assert status == 401
    assert page.locator("button[data-retry]").count() >= 2  # still dead

    page.fill("#token", TOKEN)
    row.locator("button").click()
    expect(result).to_have_text("queued again")
    page.goto(base + "/deliveries?state=pending")
    expect(page.locator("table.deliveries-table")).to_contain_text("failed")


def test_a_hostile_name_is_shown_as_text_and_runs_nothing(service: Service, page: Page) -> None:
    hostile = 'evil\u202e<img src=x onerror="alert(1)"><script>alert(2)</script>\x1b[2J'
    sim = manual_simulator(scenario([("evil", hostile)], [start_job(5, "evil", "failed", 4)]))
    base = _daemon(service, sim)
    sim.advance(12)
    page.goto(base + "/")
    link = page.locator("table.kbs th a").first
    expect(link).to_contain_text("<img src=x")
    assert "\\u202e" in link.inner_text() and "\\x1b[2J" in link.inner_text()
    assert page.locator("table.kbs img").count() == 0
    link.click()
    expect(page.locator("h1")).to_contain_text("<script>alert(2)</script>")


def test_the_demo_prints_the_pages_address_and_serves_its_knowledge_bases(
    tmp_path: Path, page: Page
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "DIGITALOCEAN"))}
    output = tmp_path / "demo.out"
    with output.open("w") as sink:
        demo = subprocess.Popen(
            [str(WATCHER), "demo", "--speed", "3", "--port", "0"],
            cwd=tmp_path,
            env=guard_env(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "the page:" in output.read_text(), 20, "the banner")
        match = re.search(r"the page: (http://127\.0\.0\.1:\d+/)", output.read_text())
        assert match, output.read_text()
        port = int(match[1].rsplit(":", 1)[1].strip("/"))
        names = sorted(DEMO_KBS)
        wait_for(lambda: _listening(port), 20, "the page's port")
        page.goto(match[1])
        _until(page, lambda: sorted(_states(page)) == names, 30, "the demo's knowledge bases")
        api = page.evaluate("async () => (await fetch('/api/v1/knowledge_bases')).json()")
        assert {kb["label"] for kb in api["items"]} == set(names)
        assert set(_states(page).values()) <= STATE_WORDS
    finally:
        page.goto("about:blank")  # no refresh may hit the demo once it stops
        demo.send_signal(signal.SIGINT)
        demo.wait(30)

"""apprise's plugins are loaded for the schemes a configuration uses, not all ~190 of them,
and no URL apprise knows is refused for want of its plugin.

apprise's plugin manager is one per process, and other tests load it whole: each case runs in
a fresh interpreter and reports what it saw as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.receivers import WebhookReceiver

COUNT = "sum(1 for m in sys.modules if m.startswith('apprise.plugins.'))"


def in_fresh_process(body: str) -> Any:
    """Run `body` (which sets `result`) in a new interpreter; `result`, read back as JSON."""
    code = f"import json, sys\n{body}\nprint(json.dumps(result))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_checking_urls_loads_only_the_plugins_of_their_schemes() -> None:
    """Validating json://, mmost:// and mailto:// URLs accepts them with a handful of plugin
    modules in memory, where apprise alone would import every one."""
    result = in_fresh_process(
        "from watcher.config.urls import unloadable\n"
        "urls = ['json://127.0.0.1:9/hook', 'mmost://127.0.0.1:9/token',\n"
        "        'mailto://127.0.0.1:9?from=a@example.com&to=b@example.com']\n"
        f"result = [unloadable(urls), {COUNT}]"
    )
    refused, loaded = result
    assert refused == []
    assert 0 < loaded <= 12


def test_a_scheme_the_sources_do_not_name_plainly_still_loads_and_validates() -> None:
    """kodi:// declares its schemes in a way the text scan does not read: every plugin is then
    loaded, as apprise would, and the URL is accepted."""
    result = in_fresh_process(
        "from watcher.config.urls import unloadable\n"
        f"result = [unloadable(['kodi://127.0.0.1']), {COUNT}]"
    )
    assert result[0] == []
    assert result[1] > 100


def test_an_unknown_scheme_is_refused_as_before() -> None:
    """A scheme no plugin has is refused (by apprise, with every plugin loaded)."""
    result = in_fresh_process(
        "from watcher.config.urls import unloadable\n"
        "result = unloadable(['json://127.0.0.1:9/ok', 'nosuchservice://x/y'])"
    )
    assert result == [1]


def test_a_scheme_added_later_is_loaded_when_it_is_first_used() -> None:
    """After a configuration's plugins are held, a URL of another scheme (a reload, a second
    route) still validates: its plugin is loaded then."""
    result = in_fresh_process(
        "from watcher.config.urls import unloadable\n"
        "first = unloadable(['json://127.0.0.1:9/hook'])\n"
        "later = unloadable(['ntfy://127.0.0.1:9/topic'])\n"
        f"result = [first, later, {COUNT}]"
    )
    assert result[:2] == [[], []]
    assert result[2] <= 12


def test_the_notifier_delivers_with_only_its_routes_plugins_loaded(
    webhook_receiver: WebhookReceiver,
) -> None:
    """A real send to a json:// receiver succeeds while apprise holds only that plugin."""
    url = webhook_receiver.url_json("/alerts")
    result = in_fresh_process(
        "import asyncio\n"
        "from watcher.core.model import Severity\n"
        "from watcher.core.render import message\n"
        "from watcher.edges.notify.apprise import AppriseNotifier\n"
        f"notifier = AppriseNotifier({{'ops': [{url!r}]}}, timeout=5)\n"
        "sent = asyncio.run(notifier.send('ops', message('t', (), Severity.FAILURE)))\n"
        f"result = [sent.ok, {COUNT}]"
    )
    assert result[0] is True
    assert result[1] <= 6
    [request] = webhook_receiver.wait_for_requests(1)
    assert request.json["title"] == "t"


def test_every_scheme_the_scan_places_is_one_apprise_registers_for_that_module() -> None:
    """The scheme table read from the plugin sources agrees with apprise's own map for every
    scheme it names (checked against apprise fully loaded), so a subset load is never wrong."""
    result = in_fresh_process(
        "from apprise.manager_plugins import NotificationManager\n"
        "from watcher.config.plugins import modules_by_scheme\n"
        "manager = NotificationManager()\n"
        "manager.load_modules()\n"
        "table = modules_by_scheme()\n"
        "result = {s: [m, manager[s].__module__] for s, m in table.items() if s in manager}\n"
        "result['_missing'] = sorted(s for s in table if '/' not in s and s not in manager)"
    )
    missing = result.pop("_missing")
    assert missing == []
    assert len(result) > 200
    wrong = {
        s: pair
        for s, pair in result.items()
        if f"{pair[1]}.".startswith(f"apprise.plugins.{pair[0]}.") is False
    }
    assert wrong == {}


def test_without_a_writable_temporary_directory_every_plugin_loads_and_urls_validate() -> None:
    """The scratch listing cannot be made (no usable TMPDIR): apprise loads all its plugins,
    as it would alone, and the URLs are still checked."""
    result = in_fresh_process(
        "import tempfile\n"
        "tempfile.gettempdir = lambda: '/nonexistent-watcher-tmp'  # what mkdtemp falls back on\n"
        "from watcher.config.urls import unloadable\n"
        f"result = [unloadable(['json://127.0.0.1:9/hook']), {COUNT}]"
    )
    assert result[0] == []
    assert result[1] > 100

"""Take the README's screenshots of the page: `watcher demo` in headless Chromium.

    python docs/screenshots.py [--chromium /usr/bin/chromium] [--wait 25]

Runs `watcher demo` (its page on a free port), waits for its jobs to finish, and writes
docs/page-overview.png, docs/page-knowledge-base.png, docs/page-deliveries.png and
docs/page-watcher.png (1280 px wide, whole pages).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--wait", type=float, default=25.0, help="seconds of demo before")
    args = parser.parse_args()
    watcher = Path(sys.executable).parent / "watcher"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo.out"
        with out.open("w") as sink:
            demo = subprocess.Popen(
                [str(watcher), "demo", "--speed", "2", "--port", "0"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            time.sleep(args.wait)
            base = re.search(r"the page: (http://\S+/)", out.read_text())
            assert base, out.read_text()
            shoot(base[1], args.chromium)
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(30)


def shoot(base: str, chromium: str) -> None:
    with urllib.request.urlopen(base + "api/v1/knowledge_bases?state=problems") as answer:
        problems = json.load(answer)["items"]
    kb = next((k for k in problems if k["state"] == "partial"), problems[0])
    pages = {
        "page-overview.png": "",
        "page-knowledge-base.png": kb["links"]["page"].lstrip("/"),
        "page-deliveries.png": "deliveries?state=sent",
        "page-watcher.png": "watcher",
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        for name, path in pages.items():
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(DOCS / name), full_page=True)
            print(f"wrote docs/{name}")
        browser.close()


if __name__ == "__main__":
    main()

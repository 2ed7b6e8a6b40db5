"""The reference poller: watching indexing jobs with the official `pydo` client, as documented.

DigitalOcean's docs show one way to follow indexing: list a knowledge base's indexing jobs
(`client.genai.list_indexing_jobs_by_knowledge_base(kb_uuid)`, the latest 15) and poll each
job that is still going (`client.genai.get_indexing_job(uuid)`) until it ends. This script
does exactly that for every configured knowledge base, every `--interval` seconds (a fixed
rate: a cycle that overruns is followed at once by the next), and posts a webhook on each
transition it detects, in the JSON shape of apprise's `json://` scheme so that the benchmark's
receiver reads both pollers alike. `--mode account` reads the account-wide job list
(`list_indexing_jobs`, paged) once per cycle instead and filters it by knowledge base.

It is a peer for the benchmark only (pydo is never a dependency of the watcher):

    DIGITALOCEAN_TOKEN=... python bench/reference_pydo.py --base-url http://127.0.0.1:PORT \
        --kbs-file kbs.txt --interval 15 --webhook http://127.0.0.1:PORT/reference

pydo refuses a bearer token over plain http, so each call passes `enforce_https=False`
(loopback only). `--time-scale S` is for a simulator whose clock runs S times faster: the
waits azure-core makes for a 429 (`retry-after`, in simulated seconds) and its backoffs are
divided by S so that they last as long in simulated time as they would for real.
Every cycle ends with one JSON line on stderr (`cycle_finished`, with its
duration and request count); SIGTERM/SIGINT stop it after the request in flight.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from pydo import Client

TERMINAL_STATUS = {
    "INDEX_JOB_STATUS_COMPLETED": "completed",
    "INDEX_JOB_STATUS_NO_CHANGES": "no_changes",
    "INDEX_JOB_STATUS_PARTIAL": "partial",
    "INDEX_JOB_STATUS_FAILED": "failed",
    "INDEX_JOB_STATUS_CANCELLED": "cancelled",
}
TERMINAL_PHASE = {
    "BATCH_JOB_PHASE_SUCCEEDED": "completed",
    "BATCH_JOB_PHASE_FAILED": "failed",
    "BATCH_JOB_PHASE_ERROR": "failed",
    "BATCH_JOB_PHASE_CANCELLED": "cancelled",
}
HEADLINE = {
    "started": "indexing started",
    "completed": "indexing completed",
    "no_changes": "indexing found no changes",
    "partial": "indexing partial (finished with gaps)",
    "failed": "indexing failed",
    "cancelled": "indexing cancelled",
}


def outcome(job: dict[str, Any]) -> str | None:
    """The event a finished job deserves, or None while it is still going."""
    status, phase = job.get("status"), job.get("phase")
    return TERMINAL_STATUS.get(status or "") or TERMINAL_PHASE.get(phase or "")


class Reference:
    """The documented polling loop over one pydo client."""

    def __init__(self, client: Client, kbs: list[str], webhook: str, mode: str) -> None:
        self.client, self.kbs, self.webhook, self.mode = client, kbs, webhook, mode
        self.seen: dict[str, str | None] = {}  # job uuid -> outcome (None: still going)
        self.first = True
        self.requests = 0
        self.errors = 0
        self.stopping = threading.Event()

    def cycle(self) -> None:
        """List each KB's jobs, get each active one, alert what changed since last time."""
        listed = self._list()
        for kb, jobs in listed.items():
            for job in jobs:
                if self.stopping.is_set():
                    return
                uuid = job.get("uuid")
                if not uuid:
                    continue
                if outcome(job) is None:
                    job = self._call(self.client.genai.get_indexing_job, uuid).get("job") or job
                self._observe(kb, uuid, job)
        self.first = False

    def _list(self) -> dict[str, list[dict[str, Any]]]:
        if self.mode == "account":
            return self._list_account()
        found: dict[str, list[dict[str, Any]]] = {}
        for kb in self.kbs:
            if self.stopping.is_set():
                break
            answer = self._call(self.client.genai.list_indexing_jobs_by_knowledge_base, kb)
            found[kb] = list(answer.get("jobs") or [])
        return found

    def _list_account(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {kb: [] for kb in self.kbs}
        page = 1
        while not self.stopping.is_set():
            answer = self._call(self.client.genai.list_indexing_jobs, page=page, per_page=200)
            for job in answer.get("jobs") or []:
                kb = job.get("knowledge_base_uuid")
                if kb in found:
                    found[kb].append(job)
            if not ((answer.get("links") or {}).get("pages") or {}).get("next"):
                break
            page += 1
        return found

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.requests += 1
        try:
            answer = method(*args, enforce_https=False, **kwargs)
        except Exception as exc:  # a reference poller survives a bad answer and goes on
            self.errors += 1
            log("request_failed", error=type(exc).__name__)
            return {}
        return answer if isinstance(answer, dict) else {}

    def _observe(self, kb: str, uuid: str, job: dict[str, Any]) -> None:
        done = outcome(job)
        if uuid not in self.seen:
            self.seen[uuid] = done
            if done is None:
                self._alert(kb, uuid, "started")
            elif not self.first:
                self._alert(kb, uuid, done)  # started and finished between two polls
            return
        if self.seen[uuid] is None and done is not None:
            self.seen[uuid] = done
            self._alert(kb, uuid, done)

    def _alert(self, kb: str, uuid: str, kind: str) -> None:
        payload = {
            "version": "1.0",
            "title": f"{kb}: {HEADLINE[kind]}",
            "message": f"**{HEADLINE[kind]}**\n\n- Knowledge base: `{kb}`\n- Job: `{uuid}`\n",
            "type": "info",
        }
        request = urllib.request.Request(
            self.webhook,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
        except OSError as exc:
            log("alert_failed", error=type(exc).__name__)


def scale_sleeps(scale: float) -> None:
    """Make `time.sleep` (azure-core's retry waits go through it) last 1/scale as long."""
    real_sleep = time.sleep
    time.sleep = lambda seconds: real_sleep(max(0.0, seconds) / scale)


def log(event: str, **fields: Any) -> None:
    """One JSON line on stderr."""
    print(json.dumps({"event": event, **fields}), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--kbs-file", required=True, type=Path, help="one KB uuid per line")
    parser.add_argument("--interval", required=True, type=float, help="seconds between cycles")
    parser.add_argument("--webhook", required=True)
    parser.add_argument("--mode", choices=("per-kb", "account"), default="per-kb")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulator speed factor")
    args = parser.parse_args(argv)
    if args.time_scale != 1.0:
        scale_sleeps(args.time_scale)
    token = os.environ.get("DIGITALOCEAN_TOKEN") or os.environ.get("DIGITALOCEAN_ACCESS_TOKEN")
    if not token:
        print("set DIGITALOCEAN_TOKEN", file=sys.stderr)
        return 2
    kbs = [line.strip() for line in args.kbs_file.read_text().splitlines() if line.strip()]
    poller = Reference(Client(token=token, endpoint=args.base_url), kbs, args.webhook, args.mode)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: poller.stopping.set())
    log("reference_started", kbs=len(kbs), interval=args.interval, mode=args.mode)
    next_at = time.monotonic()
    while not poller.stopping.is_set():
        started, before = time.monotonic(), poller.requests
        poller.cycle()
        log(
            "cycle_finished",
            duration_s=round(time.monotonic() - started, 4),
            requests=poller.requests - before,
            errors=poller.errors,
            active_jobs=sum(1 for done in poller.seen.values() if done is None),
        )
        next_at = max(next_at + args.interval, time.monotonic())
        poller.stopping.wait(next_at - time.monotonic())
    return 0


if __name__ == "__main__":
    sys.exit(main())

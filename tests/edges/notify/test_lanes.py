"""Lanes: one worker per URL at a time, a hard deadline, sockets shut down at the deadline."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from tests.receivers import WebhookReceiver, wait_until
from watcher.edges.notify.lanes import LaneBusy, Lanes, LaneTimeout


async def test_work_runs_on_a_daemon_thread_and_its_value_or_error_comes_back() -> None:
    lanes = Lanes()
    seen: list[threading.Thread] = []

    def work() -> int:
        seen.append(threading.current_thread())
        return 42

    assert await lanes.run("a", work, 5) == 42
    assert seen[0] is not threading.main_thread() and seen[0].daemon

    def broken() -> None:
        raise ValueError("inside the worker")

    with pytest.raises(ValueError, match="inside the worker"):
        await lanes.run("a", broken, 5)


async def test_a_lane_whose_work_still_runs_refuses_more_while_other_lanes_go_on() -> None:
    lanes = Lanes()
    release = threading.Event()
    with pytest.raises(LaneTimeout):
        await lanes.run("stuck", lambda: release.wait(30), 0.2)
    assert lanes.busy("stuck")
    with pytest.raises(LaneBusy):
        await lanes.run("stuck", lambda: "never started", 5)
    assert await lanes.run("other", lambda: "fine", 5) == "fine"
    release.set()
    assert wait_until(lambda: not lanes.busy("stuck"), 3)
    assert await lanes.run("stuck", lambda: "free again", 5) == "free again"


async def test_at_the_deadline_the_workers_connections_are_shut_down(
    webhook_receiver: WebhookReceiver,
) -> None:
    """A blocking read on a socket the worker opened returns as soon as the deadline passes."""
    webhook_receiver.hang(30)
    ended = threading.Event()

    def read_forever() -> bytes:
        with socket.create_connection(("127.0.0.1", webhook_receiver.port)) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            try:
                return sock.recv(10)  # the receiver never answers
            finally:
                ended.set()

    lanes = Lanes()
    with pytest.raises(LaneTimeout):
        await lanes.run("hook", read_forever, 0.3)
    assert await asyncio.to_thread(ended.wait, 3)


async def test_a_cancelled_caller_also_shuts_the_connections(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.hang(30)
    ended = threading.Event()

    def read_forever() -> None:
        with socket.create_connection(("127.0.0.1", webhook_receiver.port)) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            sock.recv(10)
            ended.set()

    task = asyncio.ensure_future(Lanes().run("hook", read_forever, 60))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(ended.wait, 3)

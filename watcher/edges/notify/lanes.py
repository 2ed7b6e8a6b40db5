"""Blocking sends with a hard deadline: one worker thread per lane, never a shared pool.

apprise's plugins block in `requests` or `smtplib`, whose timeouts apply to each socket
operation, not to a whole answer: a receiver that sends its headers and then one byte every
two seconds keeps a send alive for as long as it likes, and in apprise's own process-wide
pool (6 threads on 2 cores) a few such sends starve every other route. So each send runs
here, on its own daemon thread, in the lane of the URL it goes to:

- a lane holds at most one running send: while a stalled one still runs, the next send to
  that URL fails at once with `LaneBusy` (nothing is sent twice into a stalled receiver)
  and other lanes (other URLs, other routes) are untouched;
- at the deadline the caller gets `LaneTimeout`, and every socket the worker opened is shut
  down (found through the `socket.connect` audit event, PEP 578, and kept as a duplicate
  descriptor so a TLS wrapper cannot hide it), so a trickling answer ends in milliseconds
  and the thread with it; the same happens when the caller is cancelled (a stop);
- worker threads are daemons: the process can always exit, whatever a receiver does.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import socket
import sys
import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")
_local = threading.local()
_hook_lock = threading.Lock()
_hook_installed = False


class LaneBusy(Exception):
    """The lane's previous send is still running: nothing was sent."""


class LaneTimeout(Exception):
    """The send did not finish within its deadline; its connections were shut down."""


class _Sockets:
    """Duplicates of the sockets one worker connected, to shut them down from outside."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._aborted = False

    def add(self, sock: socket.socket) -> None:
        try:
            dup = sock.dup()
        except OSError:
            return
        with self._lock:
            self._socks.append(dup)
            aborted = self._aborted
        if aborted:
            _shut(dup)

    def abort(self) -> None:
        """Shut every connection down: the worker's next read or write fails at once."""
        with self._lock:
            self._aborted = True
            socks = list(self._socks)
        for sock in socks:
            _shut(sock)

    def close(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the worker, or never connected
        sock.shutdown(socket.SHUT_RDWR)


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    """Remember sockets connected by a lane worker (a no-op on every other thread)."""
    if event != "socket.connect":
        return
    tracker = getattr(_local, "sockets", None)
    if tracker is not None and isinstance(args[0], socket.socket):
        tracker.add(args[0])


def _install_hook() -> None:
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_on_audit)
            _hook_installed = True


class _Outcome(Generic[_T]):
    __slots__ = ("error", "value")

    def __init__(self, value: _T | None, error: BaseException | None) -> None:
        self.value, self.error = value, error


class Lanes:
    """Runs blocking work on one daemon thread per lane key, each with a hard deadline."""

    def __init__(self, name: str = "watcher-send") -> None:
        _install_hook()
        self._name = name
        self._lock = threading.Lock()
        self._running: dict[Hashable, threading.Thread] = {}
        self._numbers = itertools.count(1)

    def busy(self, key: Hashable) -> bool:
        """Whether a send of lane `key` is still running."""
        with self._lock:
            thread = self._running.get(key)
            return thread is not None and thread.is_alive()

    async def run(self, key: Hashable, work: Callable[[], _T], seconds: float) -> _T:
        """`work()` on a fresh daemon thread of lane `key`, within `seconds`.

        Raises `LaneBusy` (nothing started) when the lane's previous work still runs,
        `LaneTimeout` at the deadline, and whatever `work` raised.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Outcome[_T]] = loop.create_future()
        tracker = _Sockets()
        with self._lock:
            previous = self._running.get(key)
            if previous is not None and previous.is_alive():
                raise LaneBusy(f"lane {key!r} is still sending")
            thread = threading.Thread(
                target=self._work,
                args=(key, contextvars.copy_context(), work, tracker, loop, future),
                name=f"{self._name}-{next(self._numbers)}",
                daemon=True,
            )
            self._running[key] = thread
        thread.start()
        try:
            outcome = await asyncio.wait_for(future, seconds)
        except TimeoutError:
            tracker.abort()
            raise LaneTimeout(f"no answer within {seconds:g} s") from None
        except asyncio.CancelledError:
            tracker.abort()
            raise
        if outcome.error is not None:
            raise outcome.error
        return outcome.value  # type: ignore[return-value]

    def _work(
        self,
        key: Hashable,
        context: contextvars.Context,
        work: Callable[[], _T],
        tracker: _Sockets,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[_Outcome[_T]],
    ) -> None:
        _local.sockets = tracker
        try:
            outcome: _Outcome[_T] = _Outcome(context.run(work), None)  # the caller's log context
        except BaseException as exc:  # handed to the awaiting coroutine, never lost
            outcome = _Outcome(None, exc)
        finally:
            _local.sockets = None
            tracker.close()
            with self._lock:
                if self._running.get(key) is threading.current_thread():
                    del self._running[key]
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, future, outcome)


def _resolve(future: asyncio.Future[_Outcome[_T]], outcome: _Outcome[_T]) -> None:
    if not future.done():
        future.set_result(outcome)

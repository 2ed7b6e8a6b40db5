"""Real notification receivers on 127.0.0.1 for delivery tests: an HTTP webhook and an SMTP server.

`WebhookReceiver` records every POST and can be switched at run time to fail in the ways a
real receiver fails (5xx, 4xx, hang, dropped connection, down, a slow answer, an answer
trickling a byte at a time), enforce a service's size limit on a payload field (Discord's
2,000 characters of `content`, answered as Discord does), and serve over TLS;
`SmtpReceiver` is an aiosmtpd server that records messages and can refuse them, or refuse
the login (535). Both bind port 0 and stop cleanly.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

HOST = "127.0.0.1"


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds passed; return its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return predicate()
        time.sleep(0.01)
    return True


class Behaviour(Enum):
    """How the webhook receiver answers the next requests."""

    ANSWER = "answer"  # answer with `status` (200 by default)
    HANG = "hang"  # read the request, then answer nothing for `hang_seconds`
    DROP = "drop"  # read the request, then close the connection without a word
    SLOW = "slow"  # answer `status` after `hang_seconds`
    TRICKLE = "trickle"  # send the status and headers, then one body byte every `hang_seconds`


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One POST the webhook receiver read, and the status it answered (None if none)."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None
    method: str = "POST"

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Switch:
    behaviour: Behaviour = Behaviour.ANSWER
    status: int = 200
    hang_seconds: float = 10.0
    release: threading.Event = field(default_factory=threading.Event)
    limits: dict[str, int] = field(default_factory=dict)  # JSON field -> most characters


DISCORD_TOO_LONG = b'{"code": 50035, "errors": {"content": ["Must be 2000 or fewer in length."]}}'
TRICKLE_BODY = b'{"ok": true, "padding": "' + b"." * 64 + b'"}'


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        """A GET (a heartbeat ping) is recorded and answered like a POST."""
        self._handle("GET")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        switch = self.server.receiver.switch
        too_long = _over_limit(body, switch.limits)
        answered = None if switch.behaviour in (Behaviour.HANG, Behaviour.DROP) else switch.status
        if too_long:
            answered = 400
        self.server.receiver.record(
            ReceivedRequest(self.path, dict(self.headers.items()), body, answered, method)
        )
        if too_long:
            self._answer(400, DISCORD_TOO_LONG)
        elif switch.behaviour is Behaviour.HANG:
            switch.release.wait(switch.hang_seconds)
            self.close_connection = True
        elif switch.behaviour is Behaviour.DROP:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif switch.behaviour is Behaviour.TRICKLE:
            self._trickle(switch)
        else:
            if switch.behaviour is Behaviour.SLOW:
                switch.release.wait(switch.hang_seconds)
            ok = switch.status < 300
            self._answer(switch.status, b'{"ok": true}' if ok else b'{"error": "receiver says no"}')

    def _answer(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _trickle(self, switch: _Switch) -> None:
        """Headers at once, then the body one byte at a time: a per-read timeout never fires."""
        self.send_response(switch.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(TRICKLE_BODY)))
        self.end_headers()
        try:
            for byte in TRICKLE_BODY:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if switch.release.wait(switch.hang_seconds):
                    break
        except OSError:
            pass  # the client gave up and closed the connection
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the test output is not the place for an access log."""


def _over_limit(body: bytes, limits: dict[str, int]) -> bool:
    """Whether a JSON payload field is longer than the receiver's limit for it."""
    if not limits:
        return False
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return any(len(str(payload.get(key) or "")) > most for key, most in limits.items())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        super().__init__((HOST, port), _Handler)
        if receiver.tls is not None:
            self.socket = receiver.tls.wrap_socket(self.socket, server_side=True)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records POSTs (and GETs) and answers as it is told."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.requests: list[ReceivedRequest] = []
        self.switch = _Switch()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # life cycle -------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        """Listen on the port used before (or one the OS picks the first time)."""
        assert self._server is None, "receiver already listening"
        self._server = _Server(self.port, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and release any request left hanging; the port stays known."""
        self.switch.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    def go_down(self) -> None:
        """Stop listening: clients now meet a refused connection."""
        self.stop()

    def come_up(self) -> None:
        """Listen again on the same port as before."""
        self.switch.release = threading.Event()
        self.start()

    @property
    def listening(self) -> bool:
        return self._server is not None

    # behaviour switches ------------------------------------------------------------------
    def answer(self, status: int = 200) -> None:
        """Answer every next POST with `status`."""
        self.switch.behaviour, self.switch.status = Behaviour.ANSWER, status

    def hang(self, seconds: float = 10.0) -> None:
        """Read every next POST and then say nothing for `seconds` (or until stopped)."""
        self.switch.behaviour, self.switch.hang_seconds = Behaviour.HANG, seconds

    def drop(self) -> None:
        """Read every next POST and then close the connection without answering."""
        self.switch.behaviour = Behaviour.DROP

    def slow(self, seconds: float, status: int = 200) -> None:
        """Answer every next POST with `status`, `seconds` after reading it."""
        self.switch.behaviour, self.switch.hang_seconds = Behaviour.SLOW, seconds
        self.switch.status = status

    def trickle(self, every: float = 2.0) -> None:
        """Answer 200 and headers at once, then one body byte every `every` seconds."""
        self.switch.behaviour, self.switch.hang_seconds = Behaviour.TRICKLE, every
        self.switch.status = 200

    def limit(self, field_name: str, chars: int) -> None:
        """Refuse (400, Discord's answer) a JSON payload whose `field_name` is over `chars`."""
        self.switch.limits[field_name] = chars

    # what was received -------------------------------------------------------------------
    def record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def wait_for_requests(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Wait until at least `count` requests arrived and return them all."""
        wait_until(lambda: len(self.requests) >= count, timeout)
        with self._lock:
            return list(self.requests)

    # apprise URLs ------------------------------------------------------------------------
    def url_json(self, path: str = "/alerts") -> str:
        """An apprise json:// URL posting to `path` on this receiver."""
        return f"json://{HOST}:{self.port}{path}"

    @property
    def url_discord(self) -> str:
        """An apprise discord:// URL; point the plugin here with `discord_base` (tests patch
        `NotifyDiscord.notify_url`, which is https://discord.com/api/webhooks)."""
        return f"discord://{self.discord_webhook[0]}/{self.discord_webhook[1]}"

    @property
    def discord_base(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{HOST}:{self.port}/api/webhooks"

    discord_webhook = ("417429632418316298", "dsc0rdT0kenForWatcherTests")

    @property
    def url_mattermost(self) -> str:
        """An apprise mmost:// URL; apprise posts `{"text": ...}` to /hooks/<token>."""
        return f"mmost://{HOST}:{self.port}/{self.mattermost_token}"

    mattermost_token = "hooktoken4watchertests"


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message the SMTP receiver accepted."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    subject: str
    text: str
    message: EmailMessage


class _SmtpHandler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusal = self.receiver.refusal
        if refusal is not None:
            self.receiver.refused += 1
            return refusal
        self.receiver.record(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content)
        return "250 Message accepted for delivery"


class _PortZeroController(Controller):
    """aiosmtpd's Controller, taught to learn the port the OS gave it before it self-tests."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = getattr(self.server, "sockets")[0].getsockname()[1]  # noqa: B009
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that records mail or refuses it on demand.

    With `password`, it offers AUTH (without TLS, on loopback) and accepts only that password
    for any user; `refuse_logins()` makes it refuse every login with 535, as a mail provider
    does for a wrong or revoked app password.
    """

    def __init__(self, password: str | None = None) -> None:
        self.mails: list[ReceivedMail] = []
        self.refusal: str | None = None
        self.refused = 0
        self.password = password
        self.logins_refused = 0
        self._lock = threading.Lock()
        auth: dict[str, Any] = {}
        if password is not None:
            auth = {"auth_require_tls": False, "authenticator": self._authenticate}
        self._controller = _PortZeroController(_SmtpHandler(self), hostname=HOST, port=0, **auth)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        given = getattr(auth_data, "password", b"")
        given = given.decode() if isinstance(given, bytes) else str(given)
        if self.password is not None and given == self.password:
            return AuthResult(success=True)
        self.logins_refused += 1
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535 5.7.8

    def refuse_logins(self) -> None:
        """Refuse every next login (535), whatever the password."""
        self.password = None

    def url_with_login(self, user: str, password: str) -> str:
        """A mailto:// URL that logs in as `user` with `password` before sending."""
        return (
            f"mailto://{user}:{password}@{HOST}:{self.port}"
            "?from=watcher@example.com&to=ops@example.com"
        )

    def start(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def url(self) -> str:
        """An apprise mailto:// URL for this plain (non-TLS) server."""
        return f"mailto://{HOST}:{self.port}?from=watcher@example.com&to=ops@example.com"

    def refuse(self, reply: str = "451 4.3.0 Try again later") -> None:
        """Refuse every next message with the SMTP `reply` given."""
        self.refusal = reply

    def accept(self) -> None:
        """Accept every next message."""
        self.refusal = None

    def record(self, mail_from: str, rcpt_to: tuple[str, ...], content: bytes) -> None:
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        mail = ReceivedMail(mail_from, rcpt_to, str(message["Subject"]), text, message)
        with self._lock:
            self.mails.append(mail)

    def wait_for_mails(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMail]:
        """Wait until at least `count` mails arrived and return them all."""
        wait_until(lambda: len(self.mails) >= count, timeout)
        with self._lock:
            return list(self.mails)

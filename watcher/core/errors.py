"""The project's error tree. Library errors are translated into these at the edges.

    WatcherError
    ├── ConfigError              bad or missing configuration (exit 2 / 78); carries every problem
    ├── SourceError              the DigitalOcean API could not be read (`retryable` says if
    │   │                        the next try may work); the cycle counts it towards
    │   │                        `api_unreachable`, one KB's or one job's is logged and survived
    │   ├── RetryableSourceError     connection, timeout, 429, 5xx: the next try may work
    │   ├── MalformedResponse        2xx with a body we cannot read (retryable)
    │   └── ApiStatusError           a non-retryable HTTP answer, with the API's id/message
    │       ├── Unauthorized             401: the token is wrong or revoked
    │       ├── Forbidden                403: the token lacks a scope
    │       └── NotFound                 404
    ├── AckRefused               `watcher ack` named nothing known, or nothing open to ack
    └── StoreError               the state store failed (disk full, read-only, corrupt, any
        │                        sqlite3 or OS error on its file); raised by every store method
        ├── StoreCorrupt             the file is not a usable state store; never wiped silently
        ├── StoreReplaced            the file at state.path is no longer the one opened
        └── StoreHeld                another process holds the store's lease (says which)

A failed delivery is not an exception: the notifier answers every send with a `SendResult`
whose targets say what each URL answered and why it failed (`FailureCause`, of one
`FailureKind`: retryable or permanent), and the outbox retries or dead-letters the rows
(`watcher.core.decide`). A notifier that raises is a bug: the deliver stage logs it
(`delivery_crashed`) and retries the rows later.

Who catches what: the cycle catches `SourceError` (and its deadline's `TimeoutError`); the
daemon catches `StoreError` where a store failure must not stop it (upkeep, readiness, the
final delivery at a stop) and logs what it caught. Only the boundaries catch broad
exceptions and log them with context: a cycle (`cycle_failed`), the upkeep after it
(`cycle_upkeep_failed`), one route's delivery round, and the store's lease keeper. Everything
else raises one of these with `raise ... from exc`. No message here ever contains a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class WatcherError(Exception):
    """Base of every error the watcher raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the configuration: which key, in which source, and why."""

    key: str
    message: str
    source: str

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.message}"


class ConfigError(WatcherError):
    """The configuration cannot be used; `problems` names every offending key."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SourceError(WatcherError):
    """The API could not be read."""

    retryable: bool = False


class RetryableSourceError(SourceError):
    """A failure that the next attempt may not meet (connection, timeout, 429, 5xx)."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class MalformedResponse(SourceError):
    """A 2xx answer whose body is not the JSON shape the spec describes."""

    retryable = True


class ApiStatusError(SourceError):
    """A non-retryable HTTP answer, carrying the API's error `id`, `message` and `request_id`."""

    def __init__(
        self,
        status: int,
        *,
        method: str,
        path: str,
        api_id: str | None = None,
        api_message: str | None = None,
        request_id: str | None = None,
        hint: str = "",
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.api_id = api_id
        self.api_message = api_message
        self.request_id = request_id
        self.hint = hint
        parts = [f"{method} {path} answered HTTP {status}"]
        if api_id:
            parts.append(f"id={api_id}")
        if api_message:
            parts.append(f"message={api_message!r}")
        if request_id:
            parts.append(f"request_id={request_id}")
        text = " ".join(parts)
        super().__init__(f"{text}. {hint}" if hint else text)


class Unauthorized(ApiStatusError):
    """401: the token was refused."""


class Forbidden(ApiStatusError):
    """403: the token lacks a scope (genai:read for every GET)."""


class NotFound(ApiStatusError):
    """404: the knowledge base or job does not exist (any more)."""


class AckRefused(WatcherError):
    """`watcher ack` named no known knowledge base or job, several, or one with no open
    incident; the message says which and what to do."""


class StoreError(WatcherError):
    """The state store failed."""


class StoreCorrupt(StoreError):
    """The state file is not a usable store; it is left in place for the operator."""


class StoreReplaced(StoreError):
    """The file at the state path was deleted, moved or replaced while the store was open.

    The store stops writing (nothing is split between two files) and never starts a new one
    on its own; the message says what was found and where the contents were saved.
    """


class StoreHeld(StoreError):
    """Another process holds the store's lease: this one may not poll nor write what it saw.

    Raised when a lease cannot be taken (`watcher once` beside a daemon) and by fencing, when a
    write finds that the lease passed to someone else. The message names the holder.
    """

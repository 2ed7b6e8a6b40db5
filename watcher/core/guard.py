"""The store and alert boundaries: every known secret is masked on the way out, in one place.

`GuardedStore` wraps the state store: each change, settlement and small value is redacted
before it is written (an API error that echoed the `Authorization` header, an apprise log line
quoting a URL), so the file never holds a secret and neither does anything later read from
it (`status`, alerts rendered from stored events). The rows claimed for delivery are redacted
once more on their way to the renderer (a store written by an older version may hold secrets,
and an alert's text is clipped after rendering: a clipped secret would no longer match).
Reads for the cycle's own bookkeeping (`load`, `get_meta`) pass through unchanged.

`GuardedNotifier` wraps the notifier: each message is redacted and made inert (no control or
bidi character) just before it is sent, and what the notifier reports back (errors, target
details) is redacted before the cycle logs or stores it.

Both use the process-wide `watcher.core.redact.SECRETS` unless given another registry; identity
fields (uuids, event ids, route names) are never touched (`watcher.core.redact.IDENTITY_FIELDS`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from watcher.core.inert import inert
from watcher.core.outbox import Budget, EventBody, Message, OutboxItem, SendResult, Settlement
from watcher.core.ports import Notifier
from watcher.core.redact import SECRETS, SecretRegistry
from watcher.core.state import Change, WatchState


class Store(Protocol):
    """What the cycle needs of a store: `StateStore`, `Outbox` and `MetaStore` in one."""

    async def load(self, job_uuids: Collection[str]) -> WatchState: ...

    async def record(
        self, change: Change, *, meta: Mapping[str, str | None] | None = None
    ) -> None: ...

    async def claim_due(
        self, now: datetime, limit: int, longest_wait: timedelta | None = None
    ) -> list[OutboxItem]: ...

    async def settle(self, settlements: Sequence[Settlement]) -> None: ...

    async def release_held(self, ends: Mapping[str, datetime], now: datetime) -> int: ...

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


class GuardedStore:
    """A store that redacts every known secret from what it is asked to write."""

    def __init__(self, inner: Store, secrets: SecretRegistry = SECRETS) -> None:
        self._inner = inner
        self._secrets = secrets

    async def load(self, job_uuids: Collection[str]) -> WatchState:
        return await self._inner.load(job_uuids)

    async def record(self, change: Change, *, meta: Mapping[str, str | None] | None = None) -> None:
        clean_meta = {k: self.clean_meta(v) for k, v in meta.items()} if meta else meta
        await self._inner.record(self._secrets.scrub(change), meta=clean_meta)

    async def claim_due(
        self, now: datetime, limit: int, longest_wait: timedelta | None = None
    ) -> list[OutboxItem]:
        items = await self._inner.claim_due(now, limit, longest_wait)
        return [self._secrets.scrub(item) for item in items]

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        await self._inner.settle([self._secrets.scrub(s) for s in settlements])

    async def release_held(self, ends: Mapping[str, datetime], now: datetime) -> int:
        return await self._inner.release_held(ends, now)

    async def get_meta(self, key: str) -> str | None:
        return await self._inner.get_meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        await self._inner.set_meta(key, self.clean_meta(value) or "")

    def clean_meta(self, value: str | None) -> str | None:
        """A small stored value redacted; JSON is redacted value by value and written again
        (a secret holding a quote or a backslash is escaped inside JSON text)."""
        if value is None:
            return None
        try:
            data = json.loads(value)
        except ValueError:
            data = None
        if not isinstance(data, dict | list):  # text, or a JSON scalar ("Infinity" is one)
            return self._secrets.redact(value)
        cleaned = self._secrets.scrub(data)
        return self._secrets.redact(value if cleaned is data else json.dumps(cleaned))


class GuardedNotifier:
    """A notifier that sends only redacted, inert messages and reports only redacted results."""

    def __init__(self, inner: Notifier, secrets: SecretRegistry = SECRETS) -> None:
        self._inner = inner
        self._secrets = secrets

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return self._inner.budgets(route)

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        cleaned = {index: self.clean(m) for index, m in fitted.items()} if fitted else fitted
        result = await self._inner.send(route, self.clean(message), skip, cleaned)
        return self._secrets.scrub(result)

    def clean(self, message: Message) -> Message:
        """`message` with every known secret masked and every control character neutralised:
        the title on one line, the bodies keeping their own line breaks."""
        redact = self._secrets.redact

        def body(text: str) -> str:
            return inert(redact(text), newlines=True)

        document = message.document
        if document is not None:  # ASCII-only JSON: masking a secret keeps it valid JSON
            document = EventBody(document.webhook_id, redact(document.text))
        return Message(
            title=inert(redact(message.title)),
            body=body(message.body),
            severity=message.severity,
            text=body(message.text),
            html=body(message.html),
            document=document,
        )

"""The store and alert guards with hand-written fakes: what they change, and what they keep."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from watcher.core.guard import GuardedNotifier, GuardedStore
from watcher.core.model import Severity
from watcher.core.outbox import Budget, Message, SendResult
from watcher.core.redact import MASK, SecretRegistry

SECRET = "Infinity-9x"  # also a JSON scalar's prefix: a trap for a JSON-aware cleaner
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def registry() -> SecretRegistry:
    secrets = SecretRegistry()
    secrets.register(SECRET)
    secrets.register("Infinity")
    return secrets


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (f"plain {SECRET} text", f"plain {MASK} text"),
        # JSON objects are cleaned value by value and written again
        (json.dumps({"last_error": f'"{SECRET}"'}), json.dumps({"last_error": f'"{MASK}"'})),
        # JSON scalars are text: "Infinity" parses as a float and must not slip through
        ("Infinity", MASK),
        ("12345", "12345"),
        # JSON that holds nothing secret is left exactly as it was
        ('{"interval_s": 15.0,"reason": "active"}', '{"interval_s": 15.0,"reason": "active"}'),
    ],
)
def test_small_stored_values_are_redacted_whatever_they_hold(
    value: str | None, expected: str | None
) -> None:
    assert GuardedStore(None, registry()).clean_meta(value) == expected  # type: ignore[arg-type]


class Capture:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def budgets(self, route: str) -> tuple[Budget, ...]:
        return ()

    async def send(
        self,
        route: str,
        message: Message,
        skip: frozenset[int] = frozenset(),
        fitted: Mapping[int, Message] | None = None,
    ) -> SendResult:
        self.sent.append(message)
        self.sent.extend((fitted or {}).values())
        return SendResult(ok=False, error=f"receiver said {SECRET}")


async def test_a_message_goes_out_redacted_and_inert_and_its_result_comes_back_redacted() -> None:
    inner = Capture()
    message = Message(
        title=f"t {SECRET}\nforged",
        body=f"**{SECRET}**\n\x1b[2Jx\n",
        severity=Severity.INFO,
        text=f"{SECRET}\r\nline",
        html=f"<p>{SECRET}</p>\u202e",
    )
    result = await GuardedNotifier(inner, registry()).send("ops", message)

    [sent] = inner.sent
    assert sent.title == f"t {MASK} forged"
    assert sent.body == f"**{MASK}**\n\\x1b[2Jx\n"
    assert sent.text == f"{MASK}\nline"
    assert sent.html == f"<p>{MASK}</p>\\u202e"
    assert result.error == f"receiver said {MASK}"

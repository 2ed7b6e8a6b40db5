"""`[[routes]]`: who hears about which events of which knowledge bases, through apprise."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from watcher.config.sections import DurationOrZero, Section
from watcher.config.urls import ENCODE_HINT, ambiguity, quoted, scheme_hint, unloadable
from watcher.core.model import EventKind

DEFAULT_EVENTS = (
    EventKind.FAILED,
    EventKind.PARTIAL,
    EventKind.CANCELLED,
    EventKind.STALLED,
    EventKind.RECOVERED,
    EventKind.CORRECTED,
    EventKind.API_UNREACHABLE,
    EventKind.API_RECOVERED,
    EventKind.KNOWLEDGE_BASE_MISSING,
    EventKind.KNOWLEDGE_BASE_FOUND,
    EventKind.DELIVERY_FAILING,
    EventKind.DELIVERY_RECOVERED,
)
ALL_KBS = "*"


def _events(value: object) -> object:
    """Check every word (all unknown ones are reported, each at its index), then expand "*"."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return value
    words = [item.strip().lower() if isinstance(item, str) else item for item in value]
    known = [kind.value for kind in EventKind]
    errors = [
        InitErrorDetails(
            type=PydanticCustomError("event_word", "{why}", {"why": _unknown_event(item, known)}),
            loc=(index,),
            input=item,
        )
        for index, item in enumerate(words)
        if item != "*" and item not in known
    ]
    if errors:
        raise ValidationError.from_exception_data("events", errors)
    if "*" in words:
        return tuple(EventKind)
    return tuple(dict.fromkeys(words))


def _unknown_event(word: object, known: list[str]) -> str:
    if not isinstance(word, str):
        return 'must be an event word in quotes, e.g. "failed"'
    close = difflib.get_close_matches(word, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}, or *"
    return f"{quoted(word)} is not an event; {hint}"


def _not_empty(value: tuple[Any, ...]) -> tuple[Any, ...]:
    if not value:
        raise ValueError("must not be empty")
    return value


class RouteConfig(Section):
    """`[[routes]]`: who hears about which events of which knowledge bases, through apprise."""

    name: str
    urls: Annotated[tuple[SecretStr, ...], AfterValidator(_not_empty)]
    events: Annotated[
        tuple[EventKind, ...], BeforeValidator(_events), AfterValidator(_not_empty)
    ] = DEFAULT_EVENTS
    knowledge_bases: Annotated[tuple[str, ...], AfterValidator(_not_empty)] = (ALL_KBS,)
    send_interval: DurationOrZero | None = None  # overrides delivery.send_interval

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not value.strip() or len(value) > 64 or not value.isprintable():
            raise ValueError("must be 1 to 64 printable characters")
        return value.strip()

    @field_validator("knowledge_bases")
    @classmethod
    def _check_kbs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not ref.strip() for ref in value):
            raise ValueError("must not contain an empty name")
        return tuple(ref.strip() for ref in value)

    @field_validator("urls")
    @classmethod
    def _check_urls(
        cls, value: tuple[SecretStr, ...], info: ValidationInfo
    ) -> tuple[SecretStr, ...]:
        """Refuse empty URLs and, unless the context says check_urls=False, URLs apprise would
        read otherwise than meant (a raw `@`, `#`, `/` or `?` in a password) or cannot load."""
        texts = [url.get_secret_value().strip() for url in value]
        if not all(texts):
            raise ValueError("must not contain an empty URL")
        checking = (info.context or {}).get("check_urls", True)
        misread = [(i, why) for i, url in enumerate(texts) if (why := ambiguity(url))]
        if checking and misread:
            reasons = "; ".join(f"URL #{i + 1} {why}" for i, why in misread)
            raise ValueError(f"{reasons}; {ENCODE_HINT}")
        if checking and (bad := unloadable(texts)):
            which = ", ".join(f"URL #{i + 1} ({scheme_hint(texts[i])})" for i in bad)
            name = info.data.get("name", "?")
            raise ValueError(
                f"apprise cannot load {which} of route {name!r}; check the scheme and the parts "
                "it needs: https://github.com/caronc/apprise/wiki"
            )
        return tuple(SecretStr(text) for text in texts)

    @property
    def event_kinds(self) -> frozenset[EventKind]:
        """The events this route asked for."""
        return frozenset(self.events)

    @property
    def all_kbs(self) -> bool:
        return ALL_KBS in self.knowledge_bases

"""`[[routes]]`: who hears about which events of which knowledge bases, through apprise."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, SecretStr, ValidationInfo, field_validator

from watcher.config.sections import Section
from watcher.config.urls import quoted, scheme_hint, unloadable
from watcher.model import EventKind

DEFAULT_EVENTS = (
    EventKind.FAILED,
    EventKind.PARTIAL,
    EventKind.CANCELLED,
    EventKind.STALLED,
    EventKind.RECOVERED,
    EventKind.API_UNREACHABLE,
    EventKind.API_RECOVERED,
)
ALL_KBS = "*"


def _events(value: object) -> object:
    """Expand "*" to every event, and name unknown events with the closest known one."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return value
    if any(item == "*" for item in value):
        return tuple(EventKind)
    known = [kind.value for kind in EventKind]
    for item in value:
        if isinstance(item, str) and item.strip().lower() not in known:
            close = difflib.get_close_matches(item.strip().lower(), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}, or *"
            raise ValueError(f"{quoted(item)} is not an event; {hint}")
    return tuple(item.strip().lower() if isinstance(item, str) else item for item in value)


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
        """Refuse empty URLs and, unless the context says check_urls=False, ones apprise refuses."""
        texts = [url.get_secret_value().strip() for url in value]
        if not all(texts):
            raise ValueError("must not contain an empty URL")
        if (info.context or {}).get("check_urls", True) and (bad := unloadable(texts)):
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

    def applies_to(self, kb_uuid: str | None, kb_names: Collection[str] = ()) -> bool:
        """Whether an event about this KB (known by uuid and any names) goes to this route.

        Events about no KB (the API's own) always do. `Config.routes_for` supplies the
        configured name as well as the API's, so both kinds of reference match.
        """
        if kb_uuid is None or self.all_kbs:
            return True
        refs = set(self.knowledge_bases)
        return kb_uuid.lower() in {ref.lower() for ref in refs} or not refs.isdisjoint(kb_names)

"""`[[routes]]`: who hears about which events of which knowledge bases, through apprise."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from watcher.config.intervals import digest_schedule
from watcher.config.sections import Duration, DurationOrZero, Section
from watcher.config.urls import ENCODE_HINT, ambiguity, quoted, scheme_hint, unloadable
from watcher.config.webhooks import event_url, read_signing_keys
from watcher.core.digest import DigestSchedule
from watcher.core.model import INCIDENT_EVENTS, EventKind
from watcher.core.present import RouteFormat, TemplateFailed
from watcher.core.reminders import IncidentRule
from watcher.core.signing import MAKE_SECRET

if TYPE_CHECKING:  # jinja2 and the sample events load only for a route with a template
    from watcher.config.templates import Compiled

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
    EventKind.DATABASE_UNHEALTHY,
    EventKind.DATABASE_RECOVERED,
    EventKind.SCHEDULE_MISSED,
    EventKind.SCHEDULE_DISABLED,
    EventKind.STALE,
    EventKind.FRESH,
)
ALL_KBS = "*"


def _events(value: object) -> object:
    """Check every word (all unknown ones are reported, each at its index), then expand "*"."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return value
    words = [item.strip().lower() if isinstance(item, str) else item for item in value]
    known = [kind.value for kind in ASKABLE]
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
        return ASKABLE
    return tuple(dict.fromkeys(words))


# A digest comes by its route's schedule (`digest = ...`), a `reminder` and an `escalated` by
# its `repeat_after` and `escalate_to`: none is asked for by `events =` ("*" is the rest).
ASKABLE = tuple(
    kind for kind in EventKind if kind is not EventKind.DIGEST and kind not in INCIDENT_EVENTS
)


def _unknown_event(word: object, known: list[str]) -> str:
    if not isinstance(word, str):
        return 'must be an event word in quotes, e.g. "failed"'
    if word in (EventKind.REMINDER, EventKind.ESCALATED):
        key = "repeat_after" if word == EventKind.REMINDER else "escalate_after and escalate_to"
        return f"{quoted(word)} is not chosen in events: set this route's {key}"
    if word == EventKind.DIGEST.value:
        return 'a digest is not asked for in events: set digest = "daily 09:00 UTC" on the route'
    close = difflib.get_close_matches(word, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}, or *"
    return f"{quoted(word)} is not an event; {hint}"


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _template_error(route: object, failed: TemplateFailed) -> str:
    where = f"line {failed.line}: " if failed.line is not None else ""
    return f"route {route!r}: {where}{failed.reason}"


def _not_empty(value: tuple[Any, ...]) -> tuple[Any, ...]:
    if not value:
        raise ValueError("must not be empty")
    return value


class RouteConfig(Section):
    """`[[routes]]`: who hears about which events of which knowledge bases, through apprise,
    or as signed JSON events (`format = "event"`, with `secret_file`); `title_template` and
    `body_template` replace the built-in alert text (`watcher.config.templates`)."""

    name: str
    format: Annotated[RouteFormat, BeforeValidator(_lower)] = RouteFormat.ALERT
    urls: Annotated[tuple[SecretStr, ...], AfterValidator(_not_empty)]
    events: Annotated[
        tuple[EventKind, ...], BeforeValidator(_events), AfterValidator(_not_empty)
    ] = DEFAULT_EVENTS
    knowledge_bases: Annotated[tuple[str, ...], AfterValidator(_not_empty)] = (ALL_KBS,)
    # names of [[accounts]] whose events this route hears; empty: every account's
    accounts: tuple[str, ...] = ()
    send_interval: DurationOrZero | None = None  # overrides delivery.send_interval
    # cost_spike for this route: only a job costing more than this many times its KB's median
    # (overrides [cost] spike_factor for this route; either one turns cost_spike on)
    cost_spike_factor: float | None = Field(default=None, gt=1.0, le=1000.0)
    secret_file: Path | None = None  # format = "event": the whsec_ signing secret(s)
    title_template: str | None = None
    body_template: str | None = None
    repeat_after: Duration | None = None  # remind of an open, unacknowledged incident
    escalate_after: Duration | None = None  # an incident not acknowledged this long ...
    escalate_to: str | None = None  # ... goes on to this route, once
    mute_during: tuple[str, ...] = ()  # names of [[time_intervals]]: alerts wait out the quiet
    digest: str | None = None  # "daily 09:00 Europe/Berlin" / "weekly monday 09:00 UTC"
    _signing_keys: tuple[bytes, ...] = PrivateAttr(default=())
    _templates: tuple[Compiled | None, Compiled | None] = PrivateAttr(default=(None, None))

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

    @field_validator("accounts")
    @classmethod
    def _check_accounts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not name.strip() for name in value):
            raise ValueError("must not contain an empty name")
        return tuple(dict.fromkeys(name.strip() for name in value))

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
        if info.data.get("format") is RouteFormat.EVENT:
            return tuple(SecretStr(event_url(text, i)) for i, text in enumerate(texts))
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

    @field_validator("digest")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            digest_schedule(value)
        return value

    @property
    def digest_schedule(self) -> DigestSchedule | None:
        """The route's digest schedule, if it has one."""
        return digest_schedule(self.digest) if self.digest is not None else None

    @field_validator("title_template", "body_template")
    @classmethod
    def _compiles(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A template that parses; a syntax error names the route and the line."""
        if value is None:
            return None
        if not value.strip():
            raise ValueError("must not be empty (leave it out for the built-in text)")
        from watcher.config.templates import compile_template

        try:
            compile_template(value)
        except TemplateFailed as failed:
            raise ValueError(_template_error(info.data.get("name"), failed)) from None
        return value

    @model_validator(mode="after")
    def _format_and_its_keys(self, info: ValidationInfo) -> RouteConfig:
        """An event route has a signing secret and no templates; an alert route no secret;
        each template renders for every event the route receives; the secrets are read."""
        event = self.format is RouteFormat.EVENT
        if event and self.secret_file is None:
            raise ValueError(
                'format = "event" signs every webhook: set secret_file to a file holding a '
                f"whsec_ secret (make one: {MAKE_SECRET})"
            )
        if not event and self.secret_file is not None:
            raise ValueError('secret_file is for format = "event" routes only')
        if (self.escalate_after is None) != (self.escalate_to is None):
            given, missing = (
                ("escalate_to", "escalate_after")
                if self.escalate_after is None
                else ("escalate_after", "escalate_to")
            )
            raise ValueError(
                f'route {self.name!r}: {given} needs {missing} too (escalate_after = "30m", '
                'escalate_to = "<another route\'s name>")'
            )
        if event and (self.title_template or self.body_template):
            raise ValueError('templates are for alerts: a format = "event" route sends JSON')
        self._templates = (self._checked("title_template"), self._checked("body_template"))
        if self.secret_file is not None:
            env = (info.context or {}).get("env")
            self._signing_keys = read_signing_keys(self.secret_file, env)
        return self

    def _checked(self, key: str) -> Compiled | None:
        source = getattr(self, key)
        if source is None:
            return None
        from watcher.config.templates import check_template, compile_template

        template = compile_template(source)
        failed = check_template(template, self.events)
        if failed is not None:
            raise ValueError(f"{key}: {_template_error(self.name, failed)}")
        return template

    @property
    def signing_keys(self) -> tuple[bytes, ...]:
        """The keys of `secret_file`, read when the configuration was loaded."""
        return self._signing_keys

    @property
    def templates(self) -> tuple[Compiled | None, Compiled | None]:
        """The compiled title and body templates (None where the built-in text is used)."""
        return self._templates

    @property
    def event_kinds(self) -> frozenset[EventKind]:
        """The events this route asked for."""
        return frozenset(self.events)

    def incident_rule(self) -> IncidentRule:
        """This route's reminders and escalation, for the core."""
        return IncidentRule(self.name, self.repeat_after, self.escalate_after, self.escalate_to)

    @property
    def all_kbs(self) -> bool:
        return ALL_KBS in self.knowledge_bases

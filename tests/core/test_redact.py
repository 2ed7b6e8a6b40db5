"""Redaction: registered secrets and secret shapes are masked in text and in nested values."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from watcher.core import redact as redact_module
from watcher.core.redact import MASK, SecretRegistry, redact, redact_value, secret_forms

DO_TOKEN = "dop_v1_" + "0123456789abcdef" * 4
NOW = datetime(2026, 11, 28, tzinfo=UTC)
SLACK_URL = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#indexing"


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        # An explicitly registered token anywhere in the text.
        ("using token s3cr3t-value now", ["s3cr3t-value"], f"using token {MASK} now"),
        # A whole apprise URL is masked as one piece, not part by part.
        (f"route ops: {SLACK_URL}", [SLACK_URL], f"route ops: {MASK}"),
        # DigitalOcean personal, OAuth and refresh token shapes, registered or not.
        (f"auth {DO_TOKEN}.", [], f"auth dop_v1_{MASK}."),
        ("doo_v1_abcdef0123 and dor_v1_99ff", [], f"doo_v1_{MASK} and dor_v1_{MASK}"),
        # Bearer credentials in free text.
        ("sent Bearer abc.def-ghi to api", [], f"sent Bearer {MASK} to api"),
        # Authorization header values, as a header line and inside a dict repr.
        ("Authorization: Basic dXNlcjpwYXNz\nnext", [], f"Authorization: Basic {MASK}\nnext"),
        (
            "{'authorization': 'Token xyz', 'a': 1}",
            [],
            f"{{'authorization': 'Token {MASK}', 'a': 1}}",
        ),
        # the credential goes, the rest of the line stays (test-notify's result, a log's fields)
        (
            "JSON json://h/x?+Authorization=Bearer%20s3cr3t-t0k3n ok",
            [],
            f"JSON json://h/x?+Authorization={MASK} ok",
        ),
        (
            "authorization: Bearer abc.def-ghi status=200",
            [],
            f"authorization: Bearer {MASK} status=200",
        ),
        # user:pass@ in any URL scheme.
        ("mailto://me:hunter22@example.com", [], f"mailto://{MASK}@example.com"),
        ("https://u:p@host/path", [], f"https://{MASK}@host/path"),
        # Secret-named query parameters; harmless ones stay.
        (
            "json://h/p?token=abc&to=a@example.com&pass=xyz",
            [],
            f"json://h/p?token={MASK}&to=a@example.com&pass={MASK}",
        ),
        (
            "https://h/?api_key=1&client_secret=2",
            [],
            f"https://h/?api_key={MASK}&client_secret={MASK}",
        ),
        # Nothing secret: unchanged, including ports, emails and plain words.
        ("job 1 on 127.0.0.1:8080 done", [], "job 1 on 127.0.0.1:8080 done"),
        (
            "json://127.0.0.1:8080/hook?to=b@example.com",
            [],
            "json://127.0.0.1:8080/hook?to=b@example.com",
        ),
        # An empty secret in the list is ignored rather than matching everywhere.
        ("plain", [""], "plain"),
    ],
)
def test_redact_masks_registered_secrets_and_secret_shapes(
    text: str, secrets: list[str], expected: str
) -> None:
    assert redact(text, secrets) == expected


def test_longer_secret_is_masked_before_a_shorter_one_inside_it() -> None:
    """A URL containing a registered password is masked whole, leaving no part of it visible."""
    url = "ntfy://someuser:longpassword@ntfy.example.com/topic"
    assert redact(f"x {url} y", ["longpassword", url]) == f"x {MASK} y"


def test_redact_value_walks_dicts_lists_tuples_and_exceptions() -> None:
    value = {
        "token": DO_TOKEN,
        "nested": [("Bearer zzz", 3), {"ok": True, "none": None, "f": 1.5}],
        "error": RuntimeError("bad s3cr3t-value"),
        "tags": {"s3cr3t-value"},
    }
    assert redact_value(value, ["s3cr3t-value"]) == {
        "token": f"dop_v1_{MASK}",
        "nested": [(f"Bearer {MASK}", 3), {"ok": True, "none": None, "f": 1.5}],
        "error": f"bad {MASK}",
        "tags": [MASK],
    }


def test_redact_value_turns_unknown_objects_into_their_redacted_text() -> None:
    class Holder:
        def __str__(self) -> str:
            return f"Holder({DO_TOKEN})"

    assert redact_value(Holder()) == f"Holder(dop_v1_{MASK})"


@pytest.mark.parametrize(
    ("secret", "written"),
    [
        ("p@ss/w rd!", "p%40ss%2Fw%20rd%21"),  # percent-encoded, nothing safe
        ("p@ss/w rd!", "p%40ss/w%20rd%21"),  # percent-encoded, slashes kept
        ("p@ss/w rd!", "p%40ss%2Fw+rd%21"),  # form-encoded
        ('q"uo\\te', 'q\\"uo\\\\te'),  # inside JSON text
        ("snake_case*x", "snake\\_case\\*x"),  # in a markdown body
        ("a<b&c>d", "a&lt;b&amp;c&gt;d"),  # in an HTML body
    ],
)
def test_a_secret_is_masked_in_every_form_it_may_be_written_in(secret: str, written: str) -> None:
    assert written in secret_forms(secret)
    assert redact(f"x {written} y", secret_forms(secret)) == f"x {MASK} y"


def test_registry_ignores_values_shorter_than_six_characters() -> None:
    registry = SecretRegistry()
    registry.register("abc12")
    registry.register("   ")
    assert registry.snapshot() == frozenset()
    assert registry.redact("abc12 stays") == "abc12 stays"


def test_a_lazily_registered_secret_is_classified_only_when_a_text_may_hold_it() -> None:
    """The classifier (apprise, for a URL) runs once, and only for a text with a candidate."""
    registry = SecretRegistry()
    calls: list[str] = []

    def classify() -> list[str]:
        calls.append("classified")
        return ["TIiajkdnlazkcOXrIdevi7FQ", "T1JJ3T3L2"]

    registry.register_lazy("slack", {"T1JJ3T3L2", "TIiajkdnlazkcOXrIdevi7FQ", "indexing"}, classify)
    assert registry.redact("nothing to see") == "nothing to see"
    assert calls == []
    hooks = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    assert registry.redact(hooks) == f"https://hooks.slack.com/services/{MASK}/A1BRTD4JD/{MASK}"
    assert registry.redact("indexing T1JJ3T3L2") == f"indexing {MASK}"
    assert calls == ["classified"]


def test_a_failing_classifier_makes_every_candidate_a_secret() -> None:
    registry = SecretRegistry()

    def broken() -> list[str]:
        raise RuntimeError("apprise is not installed")

    registry.register_lazy("u", {"hooks-token-1", "chan"}, broken)
    assert registry.redact("hooks-token-1 to chan") == f"{MASK} to chan"  # too short to search


def test_a_line_logged_while_classifying_masks_every_candidate() -> None:
    """Apprise may log while it loads: that line cannot wait for the classification."""
    registry = SecretRegistry()
    seen: list[str] = []

    def classify() -> list[str]:
        seen.append(registry.redact("loading, token sekrit-part-1 here"))
        return ["sekrit-part-1"]

    registry.register_lazy("u", {"sekrit-part-1", "another-piece"}, classify)
    assert registry.redact("sekrit-part-1") == MASK
    assert seen == [f"loading, token {MASK} here"]


def test_the_guess_made_while_classifying_never_masks_the_programs_own_names() -> None:
    """Every candidate piece of a URL is masked while apprise classifies it, but a logger name
    (`watcher.service.cycle`) stays whole, as it does when the classifier fails."""
    registry = SecretRegistry()
    registry.reserve(lambda: {"watcher", "Service"})
    seen: list[str] = []

    def classify() -> list[str]:
        seen.append(registry.redact("watcher.service.cycle: posting to Wq7TzXk2pLm9"))
        return ["Wq7TzXk2pLm9"]

    registry.register_lazy("u", {"watcher", "service", "Wq7TzXk2pLm9"}, classify)
    assert registry.redact("watcher says Wq7TzXk2pLm9") == f"watcher says {MASK}"
    assert seen == [f"watcher.service.cycle: posting to {MASK}"]

    def broken() -> list[str]:
        raise RuntimeError("apprise is not installed")

    registry.register_lazy("v", {"watcher", "Zk8pQ3wLx1"}, broken)
    assert registry.redact("watcher sends to Zk8pQ3wLx1") == f"watcher sends to {MASK}"


def test_scrub_redacts_every_string_of_a_frozen_value_but_its_identities() -> None:
    from watcher.core.model import DataSourceJob, EventKind, Job
    from watcher.core.state import Transition

    registry = SecretRegistry()
    registry.register("s3cr3t-value")
    job = Job(uuid="s3cr3t-value", data_source_jobs=(DataSourceJob(error_msg="s3cr3t-value!"),))
    t = Transition("e", EventKind.FAILED, NOW, kb_name="kb s3cr3t-value", job=job, detail="ok")
    clean = registry.scrub(t)
    assert clean.kb_name == f"kb {MASK}"
    assert clean.job is not None and clean.job.data_source_jobs[0].error_msg == f"{MASK}!"
    assert clean.job.uuid == "s3cr3t-value"  # an identity: never rewritten
    assert clean.kind is EventKind.FAILED and clean.detail == "ok"
    assert registry.scrub(Transition("e", EventKind.FAILED, NOW, detail="ok")) is not None
    untouched = Transition("e", EventKind.FAILED, NOW, detail="ok")
    assert registry.scrub(untouched) is untouched


def test_registry_masks_the_percent_encoded_form_of_a_secret() -> None:
    registry = SecretRegistry()
    registry.register("p@ss/word!")
    assert registry.redact("GET /x?p=p%40ss%2Fword%21") == f"GET /x?p={MASK}"


def test_registry_clear_forgets_every_secret() -> None:
    registry = SecretRegistry()
    registry.register("s3cr3t-value")
    registry.clear()
    assert registry.redact("s3cr3t-value") == "s3cr3t-value"


def test_registry_keeps_every_secret_registered_from_many_threads() -> None:
    registry = SecretRegistry()
    values = [f"secret-{i:04d}" for i in range(200)]
    threads = [threading.Thread(target=registry.register, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(values) <= registry.snapshot()


def test_registry_masks_a_whole_registered_url() -> None:
    registry = SecretRegistry()
    registry.register(SLACK_URL)
    assert registry.redact(f"posting to {SLACK_URL}") == f"posting to {MASK}"


@pytest.mark.parametrize(
    "text",
    [
        # Each shape written with the letters `re` folds onto ASCII ones under IGNORECASE:
        # dotted and dotless i, the long s and the Kelvin sign. Skipping a scan because the
        # text lacks a shape's letters must never skip one of these.
        "AUTHORİZATİON: Basic xyz",
        "authorızatıon: Basic xyz",
        "BEARER abc.def",
        "https://h/?paſs=xyz&api_\u212aey=1",
        "see https://me:pw@host/ and dop_v1_abcdef",
    ],
)
def test_shapes_are_masked_however_their_letters_are_folded(text: str) -> None:
    def unfiltered(value: str) -> str:
        for shape, mask in zip(redact_module._SHAPES, redact_module._SHAPE_MASKS, strict=True):
            value = shape.sub(mask, value)
        return value

    assert redact(text) == unfiltered(text) != text

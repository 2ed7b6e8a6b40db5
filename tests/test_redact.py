"""Redaction: registered secrets and secret shapes are masked in text and in nested values."""

from __future__ import annotations

import threading

import pytest

from watcher.redact import MASK, SecretRegistry, redact, redact_value, secret_forms

DO_TOKEN = "dop_v1_" + "0123456789abcdef" * 4
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
        ("Authorization: Basic dXNlcjpwYXNz\nnext", [], f"Authorization: {MASK}\nnext"),
        ("{'authorization': 'Token xyz', 'a': 1}", [], f"{{'authorization': '{MASK}', 'a': 1}}"),
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
    ("url", "expected_parts", "not_parts"),
    [
        # Slack's three tokens are credential-like; the channel and the scheme are not.
        (SLACK_URL, {"T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ"}, {"indexing", "slack"}),
        # User and password of an email URL; the host and the addresses stay readable.
        (
            "mailtos://alerts:pa55word@smtp.example.com",
            {"alerts", "pa55word"},
            {"smtp.example.com"},
        ),
        # A token-like query value is a credential; a loopback host is not.
        ("json://127.0.0.1:9000/hook?key=abcd1234efgh", {"abcd1234efgh"}, {"127.0.0.1", "hook"}),
    ],
)
def test_secret_forms_of_a_url_include_its_credential_parts_only(
    url: str, expected_parts: set[str], not_parts: set[str]
) -> None:
    forms = secret_forms(url)
    assert url in forms
    assert expected_parts <= forms
    assert not (not_parts & forms)


def test_registry_ignores_values_shorter_than_six_characters() -> None:
    registry = SecretRegistry()
    registry.register("abc12")
    registry.register("   ")
    assert registry.snapshot() == frozenset()
    assert registry.redact("abc12 stays") == "abc12 stays"


def test_registry_masks_a_registered_url_and_its_token_parts_seen_separately() -> None:
    registry = SecretRegistry()
    registry.register(SLACK_URL)
    assert registry.redact(f"posting to {SLACK_URL}") == f"posting to {MASK}"
    hooks = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    assert registry.redact(hooks) == f"https://hooks.slack.com/services/{MASK}/{MASK}/{MASK}"


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


def test_registry_masks_a_bot_token_that_sits_in_the_url_host() -> None:
    registry = SecretRegistry()
    registry.register("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123")
    assert registry.redact("bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw failed") == (
        f"bot {MASK} failed"
    )

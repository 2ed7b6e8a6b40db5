"""Standard Webhooks signatures: the specification's test vector, rotation, bad secrets."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from watcher.core.signing import parse_secret, signature, signature_header, webhook_headers

# The test vector of the Standard Webhooks reference libraries (libraries/*/tests: the same
# secret, id, timestamp, payload and expected signature in every language).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_PAYLOAD = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_the_signature_matches_the_specifications_test_vector() -> None:
    key = parse_secret(VECTOR_SECRET)
    assert signature(key, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_PAYLOAD) == VECTOR_SIGNATURE


def test_the_reference_library_verifies_the_headers_we_send() -> None:
    now = int(datetime.now(UTC).timestamp())
    body = b'{"type":"gradient_watcher.completed"}'
    headers = webhook_headers([parse_secret(VECTOR_SECRET)], VECTOR_ID, now, body)
    assert Webhook(VECTOR_SECRET).verify(body, headers) == {"type": "gradient_watcher.completed"}


def test_two_secrets_give_two_signatures_and_either_verifies_during_a_rotation() -> None:
    now = int(datetime.now(UTC).timestamp())
    keys = [parse_secret(OTHER_SECRET), parse_secret(VECTOR_SECRET)]
    headers = webhook_headers(keys, VECTOR_ID, now, VECTOR_PAYLOAD)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (OTHER_SECRET, VECTOR_SECRET):
        assert Webhook(secret).verify(VECTOR_PAYLOAD, headers) == {"test": 2432232314}


def test_a_changed_body_no_longer_verifies() -> None:
    now = int(datetime.now(UTC).timestamp())
    headers = webhook_headers([parse_secret(VECTOR_SECRET)], VECTOR_ID, now, VECTOR_PAYLOAD)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(VECTOR_SECRET).verify(b'{"test": 2432232315}', headers)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with 'whsec_'"),  # prefix missing
        ("whsec_not base64!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes (this one 5)"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "(this one 65)"),
    ],
)
def test_a_bad_secret_is_refused_with_the_reason_and_never_echoed(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        parse_secret(text)
    assert says in str(caught.value)
    assert text.removeprefix("whsec_") not in str(caught.value)


def test_an_id_with_a_full_stop_is_refused_because_it_delimits_the_signed_content() -> None:
    with pytest.raises(ValueError, match="must not contain"):
        signature_header([parse_secret(VECTOR_SECRET)], "msg.1", 1, b"{}")

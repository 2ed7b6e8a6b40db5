"""The apprise notifier, tested by real delivery to loopback receivers (no mocks of apprise)."""

from __future__ import annotations

import apprise
import pytest
from structlog.testing import capture_logs

from tests.receivers import SmtpReceiver, WebhookReceiver
from watcher.config.urls import unloadable
from watcher.core import render
from watcher.core.markup import Bullets, Item, Para, code, plain, strong
from watcher.core.model import Severity
from watcher.core.outbox import FailureCause, FailureKind, SendResult, TargetResult
from watcher.core.render import message
from watcher.demo.console import plain_text, register_console_scheme
from watcher.edges.notify.apprise import AppriseNotifier, notify_type

TIMEOUT = 1.0
MESSAGE = message(
    "Indexing failed: product-docs",
    (
        Para((plain("Job "), strong("7f1c"), plain(" failed after 12 of 40 files."))),
        Bullets((Item((plain("see "), code("watcher status"))),)),
    ),
    Severity.FAILURE,
)


def notifier(*urls: str, timeout: float = TIMEOUT) -> AppriseNotifier:
    return AppriseNotifier({"ops": list(urls)}, timeout=timeout)


def only_target(result: SendResult) -> TargetResult:
    assert len(result.targets) == 1, result
    return result.targets[0]


# --- delivery ---------------------------------------------------------------------------------


async def test_json_webhook_receives_title_body_and_type(
    webhook_receiver: WebhookReceiver,
) -> None:
    """A json:// target gets one POST with the title, the markdown body and the apprise type."""
    result = await notifier(webhook_receiver.url_json("/alerts")).send("ops", MESSAGE)

    assert result == SendResult(ok=True, targets=result.targets)
    assert only_target(result).ok and only_target(result).name == "JSON"
    [request] = webhook_receiver.wait_for_requests(1)
    assert request.path == "/alerts"
    assert request.json["title"] == MESSAGE.title
    assert request.json["message"] == MESSAGE.body.rstrip()  # apprise trims the end
    assert request.json["type"] == "failure"


async def test_mattermost_hook_receives_the_text_at_hooks_token(
    webhook_receiver: WebhookReceiver,
) -> None:
    """An mmost:// target posts `{"text": title + body}` to /hooks/<token> as gradient-watcher."""
    result = await notifier(webhook_receiver.url_mattermost).send("ops", MESSAGE)

    assert result.ok, result.error
    [request] = webhook_receiver.wait_for_requests(1)
    assert request.path == f"/hooks/{webhook_receiver.mattermost_token}"
    assert MESSAGE.title in request.json["text"]
    assert "12 of 40 files" in request.json["text"]
    assert request.json["username"] == "gradient-watcher"


async def test_smtp_receives_the_mail_with_the_title_as_subject(
    smtp_receiver: SmtpReceiver,
) -> None:
    """A mailto:// target to a plain SMTP server delivers a mail whose subject is the title."""
    result = await notifier(smtp_receiver.url).send("ops", MESSAGE)

    assert result.ok, result.error
    [mail] = smtp_receiver.wait_for_mails(1)
    assert mail.subject == MESSAGE.title
    assert mail.mail_from == "watcher@example.com"
    assert mail.rcpt_to == ("ops@example.com",)
    assert "Job 7f1c failed after 12 of 40 files." in mail.text


async def test_smtp_refusal_is_retryable_and_the_next_send_is_delivered_once_accepted(
    smtp_receiver: SmtpReceiver,
) -> None:
    """A 451 from the mail server fails the send as retryable; after `accept` the mail arrives."""
    smtp_receiver.refuse("451 4.3.0 Try again later")
    refused = await notifier(smtp_receiver.url).send("ops", MESSAGE)
    smtp_receiver.accept()
    accepted = await notifier(smtp_receiver.url).send("ops", MESSAGE)

    assert not refused.ok and refused.failure is FailureKind.RETRYABLE
    assert only_target(refused).name == "E-Mail"
    assert smtp_receiver.refused == 1
    assert accepted.ok, accepted.error
    assert [m.subject for m in smtp_receiver.wait_for_mails(1)] == [MESSAGE.title]


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.FAILURE, apprise.NotifyType.FAILURE),
        (Severity.WARNING, apprise.NotifyType.WARNING),
        (Severity.SUCCESS, apprise.NotifyType.SUCCESS),
        (Severity.INFO, apprise.NotifyType.INFO),
    ],
)
def test_severity_maps_to_the_apprise_notify_type(
    severity: Severity, expected: apprise.NotifyType
) -> None:
    """Each severity is carried by the apprise notify type of the same meaning."""
    assert notify_type(severity) is expected


# --- failures and their classification --------------------------------------------------------


async def test_500_is_a_retryable_failure_with_the_target_recorded(
    webhook_receiver: WebhookReceiver,
) -> None:
    """A 5xx answer fails the send as retryable and names the target and the status."""
    webhook_receiver.answer(500)
    result = await notifier(webhook_receiver.url_json()).send("ops", MESSAGE)

    target = only_target(result)
    assert not result.ok and result.failure is FailureKind.RETRYABLE
    assert not target.ok
    # a webhook path of words (`/alerts`) could be no credential: shown
    assert target.url == f"json://127.0.0.1:{webhook_receiver.port}/alerts"
    assert target.detail.startswith("retryable: server error (HTTP 500)")
    assert result.error is not None and "HTTP 500" in result.error


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        (400, FailureCause.REJECTED),
        (404, FailureCause.REJECTED),
        (401, FailureCause.CREDENTIALS),
        (403, FailureCause.CREDENTIALS),
    ],
)
async def test_4xx_is_a_permanent_failure_and_refused_credentials_say_so(
    webhook_receiver: WebhookReceiver, status: int, cause: FailureCause
) -> None:
    """A 4xx answer means retrying will not help: the send fails as permanent, saying why."""
    webhook_receiver.answer(status)
    result = await notifier(webhook_receiver.url_json()).send("ops", MESSAGE)

    target = only_target(result)
    assert not result.ok and result.failure is FailureKind.PERMANENT
    assert (target.cause, target.status) == (cause, status)
    assert target.detail.startswith(f"permanent: {cause.explanation} (HTTP {status})")
    assert result.error is not None and f"HTTP {status}" in result.error


@pytest.mark.parametrize("status", [408, 429])
async def test_408_and_429_are_retryable(webhook_receiver: WebhookReceiver, status: int) -> None:
    """Request timeout and rate limiting are 4xx answers that a later try may pass."""
    webhook_receiver.answer(status)
    result = await notifier(webhook_receiver.url_mattermost).send("ops", MESSAGE)

    assert not result.ok and result.failure is FailureKind.RETRYABLE
    assert only_target(result).cause is FailureCause.RATE_LIMITED
    assert only_target(result).detail.startswith(f"retryable: rate limited (HTTP {status})")


@pytest.mark.timeout(10)
async def test_a_receiver_that_hangs_past_the_timeout_is_a_retryable_failure(
    webhook_receiver: WebhookReceiver,
) -> None:
    """A receiver that never answers ends the send at the timeout as a retryable failure."""
    webhook_receiver.hang(seconds=30)
    result = await notifier(webhook_receiver.url_json(), timeout=0.5).send("ops", MESSAGE)

    assert not result.ok and result.failure is FailureKind.RETRYABLE
    assert only_target(result).detail.startswith("retryable: timed out")
    assert only_target(result).cause is FailureCause.TIMEOUT
    assert len(webhook_receiver.wait_for_requests(1)) == 1


async def test_a_connection_closed_without_an_answer_is_retryable(
    webhook_receiver: WebhookReceiver,
) -> None:
    """A receiver that reads the request and hangs up fails the send as retryable."""
    webhook_receiver.drop()
    result = await notifier(webhook_receiver.url_json()).send("ops", MESSAGE)

    assert not result.ok and result.failure is FailureKind.RETRYABLE
    assert only_target(result).cause is FailureCause.CONNECTION
    assert "Connection error" in only_target(result).detail
    assert len(webhook_receiver.requests) == 1


async def test_a_refused_connection_is_retryable_and_the_next_send_succeeds_once_back_up(
    webhook_receiver: WebhookReceiver,
) -> None:
    """While the receiver is down the send fails as retryable; on the same port it succeeds."""
    url = webhook_receiver.url_json()
    webhook_receiver.go_down()
    down = await notifier(url).send("ops", MESSAGE)
    webhook_receiver.come_up()
    up = await notifier(url).send("ops", MESSAGE)

    assert not down.ok and down.failure is FailureKind.RETRYABLE
    assert only_target(down).detail.startswith("retryable")
    assert up.ok, up.error
    assert len(webhook_receiver.wait_for_requests(1)) == 1


async def test_apprise_retries_in_the_url_are_ignored_because_the_outbox_owns_retries(
    webhook_receiver: WebhookReceiver,
) -> None:
    """`?retry=3` in a URL does not make apprise post more than once per send."""
    webhook_receiver.answer(503)
    url = webhook_receiver.url_json() + "?retry=3&wait=0"
    result = await notifier(url).send("ops", MESSAGE)

    assert not result.ok and result.failure is FailureKind.RETRYABLE
    assert len(webhook_receiver.wait_for_requests(1, timeout=0.3)) == 1


async def test_one_failing_url_of_two_fails_the_send_and_the_targets_show_which(
    webhook_receiver: WebhookReceiver, smtp_receiver: SmtpReceiver
) -> None:
    """The webhook gets the alert, the mail server refuses it: ok is False, per-target detail."""
    smtp_receiver.refuse("451 4.3.0 Try again later")
    result = await notifier(webhook_receiver.url_json(), smtp_receiver.url).send("ops", MESSAGE)

    by_name = {t.name: t for t in result.targets}
    assert not result.ok and result.failure is FailureKind.RETRYABLE
    assert by_name["JSON"].ok
    assert not by_name["E-Mail"].ok
    assert by_name["E-Mail"].detail.startswith("retryable")
    assert result.error is not None and result.error.startswith("1 of 2 targets failed")
    assert "E-Mail" in result.error and "JSON" not in result.error


@pytest.mark.parametrize(
    "url",
    [
        "notascheme://host/path",  # scheme apprise does not know
        "json://",  # known scheme, no host
        "not a url at all",
    ],
)
async def test_an_unparseable_url_is_a_permanent_failure(url: str) -> None:
    """A URL apprise cannot load fails the send as permanent, named by its scheme only."""
    result = await notifier(url).send("ops", MESSAGE)

    target = only_target(result)
    assert not result.ok and result.failure is FailureKind.PERMANENT
    assert target.detail.startswith("permanent: apprise cannot parse this URL")
    assert "host/path" not in target.url


async def test_a_good_url_still_delivers_beside_an_unparseable_one(
    webhook_receiver: WebhookReceiver,
) -> None:
    """The valid target gets the alert; the send fails as permanent for the broken one."""
    result = await notifier(webhook_receiver.url_json(), "notascheme://x").send("ops", MESSAGE)

    assert not result.ok and result.failure is FailureKind.PERMANENT
    assert [t.ok for t in result.targets] == [True, False]
    assert len(webhook_receiver.wait_for_requests(1)) == 1


async def test_an_unknown_route_is_a_permanent_failure() -> None:
    """Sending to a route the notifier was not given fails as permanent, naming the route."""
    result = await notifier("json://127.0.0.1:9/x").send("night-shift", MESSAGE)

    assert result == SendResult(
        ok=False, failure=FailureKind.PERMANENT, error="route 'night-shift' is not configured"
    )


async def test_secrets_in_urls_never_reach_the_result_or_the_logs(
    webhook_receiver: WebhookReceiver,
) -> None:
    """Passwords and tokens in URLs appear neither in the SendResult nor in the captured logs."""
    webhook_receiver.answer(500)
    port = webhook_receiver.port
    password, token, junk = "hunter2secretpw", "tok3nZ9sekr1t", "s3cretInBadUrl"
    urls = [
        f"json://watcher:{password}@127.0.0.1:{port}/alerts",
        f"mmost://127.0.0.1:{port}/{token}",
        f"notascheme://{junk}@example.com/{junk}",
    ]
    with capture_logs() as logs:
        result = await notifier(*urls).send("ops", MESSAGE)

    assert not result.ok and len(result.targets) == 3
    assert len(logs) == 3
    for secret in (password, token, junk):
        assert secret not in repr(result)
        assert secret not in repr(logs)


async def test_logs_name_the_route_target_and_outcome(webhook_receiver: WebhookReceiver) -> None:
    """Each target's outcome is one log event: alert_delivered or alert_failed with its status."""
    with capture_logs() as logs:
        await notifier(webhook_receiver.url_json()).send("ops", MESSAGE)
        webhook_receiver.answer(404)
        await notifier(webhook_receiver.url_json()).send("ops", MESSAGE)

    assert [(e["event"], e["route"], e.get("status")) for e in logs] == [
        ("alert_delivered", "ops", None),
        ("alert_failed", "ops", "permanent"),
    ]
    assert all(e["target"].startswith("json://127.0.0.1") for e in logs)


# --- the console scheme -----------------------------------------------------------------------


async def test_console_scheme_prints_a_framed_plain_text_alert(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """console://?color=no prints the severity, title and the body with markdown removed."""
    register_console_scheme()
    register_console_scheme()  # idempotent
    result = await notifier("console://?color=no").send("ops", MESSAGE)

    out = capsys.readouterr().out
    out = out[out.index("┌") : out.index("└")]  # the frame alone, not the log lines after it
    assert result.ok, result.error
    assert only_target(result).name == "Console"
    assert "✖ FAILURE" in out
    assert MESSAGE.title in out
    assert "Job 7f1c failed after 12 of 40 files." in out
    assert "• see watcher status" in out
    assert "**" not in out and "\033[" not in out


async def test_console_scheme_colours_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    """console://?color=yes wraps the frame in ANSI colour, green for a success."""
    register_console_scheme()
    message = render.message("Indexed", (Para((plain("done"),)),), Severity.SUCCESS)
    result = await notifier("console://?color=yes").send("ops", message)

    out = capsys.readouterr().out
    assert result.ok, result.error
    assert "\033[1;32m┌─ ✔ SUCCESS" in out


def test_console_scheme_makes_console_urls_valid() -> None:
    """After registration, console:// validates like any apprise URL."""
    register_console_scheme()
    assert unloadable(["console://", "console://?color=no"]) == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("- one\n  - two", "• one\n  • two"),  # bullets drawn as bullets, nesting kept
        ("a - b\r\nc", "a - b\nc"),  # a dash inside a line stays; CRLF is a line break
        ("evil\x1b[2J\x07 \u202eok", "evil\\x1b[2J\\x07 \\u202eok"),  # escapes shown, inert
    ],
)
def test_the_console_shows_the_text_body_inert_with_bullets(text: str, shown: str) -> None:
    """The console prints the text body as is, but bullets, and nothing that drives a terminal."""
    assert plain_text(text) == shown


async def test_each_target_result_names_its_url_by_index_and_skipped_urls_get_nothing(
    webhook_receiver: WebhookReceiver,
) -> None:
    other = WebhookReceiver().start()
    try:
        notifier = AppriseNotifier(
            {"ops": [webhook_receiver.url_json("/first"), other.url_json("/second")]}, timeout=3
        )
        result = await notifier.send("ops", MESSAGE)
        assert result.ok
        assert sorted(t.index for t in result.targets if t.ok) == [0, 1]

        retry = await notifier.send("ops", MESSAGE, skip=frozenset({0}))
        assert retry.ok
        assert [t.index for t in retry.targets] == [1]
        assert len(webhook_receiver.requests) == 1  # the skipped URL heard it once, not twice
        assert len(other.wait_for_requests(2)) == 2
    finally:
        other.stop()

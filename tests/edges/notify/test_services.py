"""The apprise notifier against receivers that behave like the services: their size limits,
slow and trickling answers, refused logins, a private CA (real plugins, loopback receivers).

Discord is reached through apprise's real Discord plugin: its webhook base URL
(`NotifyDiscord.notify_url`, https://discord.com/api/webhooks) is pointed at the loopback
receiver, in this adapter's own tests only.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from apprise.plugins.discord import NotifyDiscord

from tests.receivers import SmtpReceiver, WebhookReceiver, wait_until
from watcher.core.model import (
    DataSourceJob,
    DataSourceStatus,
    EventKind,
    Job,
    Phase,
    Severity,
    Status,
)
from watcher.core.outbox import BodyFormat, Budget, FailureCause, FailureKind, Message
from watcher.core.render import render
from watcher.core.state import Transition
from watcher.edges.notify.apprise import AppriseNotifier
from watcher.edges.notify.lanes import Lanes

MESSAGE = Message(
    title="Indexing failed: docs",
    body="Job **7f1c** failed.",
    severity=Severity.FAILURE,
    text="Job 7f1c failed.",
    html="<p>Job <b>7f1c</b> failed.</p>",
)


def issue_partial() -> Transition:
    """The issue's case: a partial job with 24 data sources, each with a ~200-character error."""
    sources = tuple(
        DataSourceJob(
            data_source_uuid=f"9f13c044-c5fe-5d5c-9b14-c94977b380{n:02d}",
            status=DataSourceStatus.FAILED,
            error_msg="file_parse_error",
            error_details="some attachments are corrupt PDFs or unsupported formats " * 3,
        )
        for n in range(24)
    )
    job = Job(
        uuid="09565000-6bed-5998-8041-80bc34c8d4bb",
        knowledge_base_uuid="ede81f1b-bc5e-508f-ba62-11978ab75893",
        phase=Phase.SUCCEEDED,
        status=Status.PARTIAL,
        data_source_jobs=sources,
    )
    return Transition(
        "e",
        EventKind.PARTIAL,
        datetime(2026, 11, 28, tzinfo=UTC),
        job.knowledge_base_uuid,
        "support-articles",
        job,
    )


@pytest.fixture
def discord(webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> WebhookReceiver:
    """The loopback receiver as Discord: the real plugin posts to it, content over 2,000 is
    refused with Discord's 400."""
    monkeypatch.setattr(NotifyDiscord, "notify_url", webhook_receiver.discord_base)
    webhook_receiver.limit("content", 2000)
    return webhook_receiver


async def test_discord_knows_its_2000_characters_and_takes_the_fitted_alert_whole(
    discord: WebhookReceiver,
) -> None:
    """The issue's 6,600-character partial alert, fitted to Discord's budget, arrives whole."""
    notifier = AppriseNotifier({"chat": [discord.url_discord]}, timeout=5)
    [budget] = notifier.budgets("chat")
    assert budget == Budget(body=2000, title=250, title_in_body=True, format=BodyFormat.MARKDOWN)
    whole = render(issue_partial())
    fitted = render(issue_partial(), budget=budget)
    assert len(whole.body) > 6000

    result = await notifier.send("chat", whole, fitted={0: fitted})

    assert result.ok, result.error
    [request] = discord.wait_for_requests(1)
    content = request.json["content"]
    assert request.path == "/api/webhooks/{}/{}".format(*discord.discord_webhook)
    assert len(content) <= 2000
    assert "indexing partial (finished with gaps)" in content
    assert "more data sources: " in content  # the list was cut and says so, not truncated
    assert content.rstrip().endswith("failed")


async def test_a_size_refusal_is_read_as_too_large_not_as_a_final_400(
    discord: WebhookReceiver,
) -> None:
    """Sent whole (the URL keeps apprise's `upstream` overflow), Discord's 400 says too long."""
    notifier = AppriseNotifier({"chat": [discord.url_discord + "?overflow=upstream"]}, timeout=5)
    result = await notifier.send("chat", render(issue_partial()))

    [target] = result.targets
    assert not result.ok and result.failure is FailureKind.RETRYABLE
    assert (target.cause, target.status) == (FailureCause.TOO_LARGE, 400)
    assert target.sent_chars is not None and target.sent_chars > 6000


async def test_apprises_truncate_overflow_guards_a_message_that_was_not_fitted(
    discord: WebhookReceiver,
) -> None:
    """The last guard: a message nobody fitted is cut by apprise rather than refused."""
    notifier = AppriseNotifier({"chat": [discord.url_discord]}, timeout=5)
    result = await notifier.send("chat", render(issue_partial()))

    assert result.ok, result.error
    assert len(discord.wait_for_requests(1)[0].json["content"]) <= 2000


@pytest.mark.timeout(30)
async def test_a_receiver_answering_after_6_s_gets_the_alert_once_within_delivery_timeout(
    webhook_receiver: WebhookReceiver,
) -> None:
    """apprise's own 4 s read timeout no longer wins over `delivery.timeout`."""
    webhook_receiver.slow(6.0)
    result = await AppriseNotifier({"ops": [webhook_receiver.url_json()]}, timeout=10).send(
        "ops", MESSAGE
    )

    assert result.ok, result.error
    assert len(webhook_receiver.requests) == 1


@pytest.mark.timeout(30)
async def test_a_trickling_answer_ends_at_the_deadline_and_frees_its_worker_at_once(
    webhook_receiver: WebhookReceiver,
) -> None:
    """Headers, then a byte every 2 s: the send is cut at the deadline, its thread ends."""
    webhook_receiver.trickle(every=2.0)
    lanes = Lanes()
    notifier = AppriseNotifier({"ops": [webhook_receiver.url_json()]}, timeout=1.5, lanes=lanes)
    started = time.monotonic()
    result = await notifier.send("ops", MESSAGE)
    took = time.monotonic() - started

    [target] = result.targets
    assert target.cause is FailureCause.TIMEOUT and result.failure is FailureKind.RETRYABLE
    assert took < 5.0  # bounded by the deadline, not by the receiver (it would take 140 s)
    assert wait_until(lambda: not lanes.busy(("ops", 0)), timeout=3.0)


@pytest.mark.timeout(60)
async def test_a_stalled_route_never_takes_the_capacity_of_the_others(
    webhook_receiver: WebhookReceiver,
) -> None:
    """The issue's case: a trickling webhook took apprise's shared workers and a healthy route
    delivered 17 of 38 alerts. Here 12 stalled sends run while 38 healthy ones go out."""
    stalled = WebhookReceiver().start()
    try:
        stalled.trickle(every=2.0)
        notifier = AppriseNotifier(
            {f"stalled-{n}": [stalled.url_json(f"/s{n}")] for n in range(12)}
            | {"healthy": [webhook_receiver.url_json("/healthy")]},
            timeout=20,
        )
        blockers = [
            asyncio.ensure_future(notifier.send(f"stalled-{n}", MESSAGE)) for n in range(12)
        ]
        await asyncio.sleep(0.5)  # every stalled send holds a connection now
        started = time.monotonic()
        healthy = [await notifier.send("healthy", MESSAGE) for _ in range(38)]
        took = time.monotonic() - started
        for blocker in blockers:
            blocker.cancel()
    finally:
        stalled.stop()

    assert all(r.ok for r in healthy)
    assert len(webhook_receiver.requests) == 38
    assert took < 15.0  # 38 sends on loopback; with a starved pool they waited 20 s each


async def test_a_wrong_smtp_password_is_refused_credentials_and_permanent() -> None:
    """535 from the mail server: not "Connection error, retry for 24 h"."""
    server = SmtpReceiver(password="the-right-one").start()
    try:
        url = server.url_with_login("watcher", "wr0ngAppPassw0rd")
        result = await AppriseNotifier({"mail": [url]}, timeout=5).send("mail", MESSAGE)
    finally:
        server.stop()

    [target] = result.targets
    assert not result.ok and result.failure is FailureKind.PERMANENT
    assert (target.cause, target.status) == (FailureCause.CREDENTIALS, 535)
    assert target.detail.startswith("permanent: credentials refused")
    assert "(SMTP 535)" in target.detail
    assert "wr0ngAppPassw0rd" not in repr(result)
    assert server.logins_refused >= 1 and server.mails == []  # one per AUTH mechanism tried


async def test_the_right_smtp_password_delivers() -> None:
    server = SmtpReceiver(password="the-right-one").start()
    try:
        url = server.url_with_login("watcher", "the-right-one")
        result = await AppriseNotifier({"mail": [url]}, timeout=5).send("mail", MESSAGE)
        assert result.ok, result.error
        assert [m.subject for m in server.wait_for_mails(1)] == [MESSAGE.title]
    finally:
        server.stop()


# --- a private CA -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(private_ca: trustme.CA) -> Iterator[WebhookReceiver]:
    """A webhook receiver serving HTTPS with a certificate from a private CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    private_ca.issue_cert("127.0.0.1").configure_cert(context)
    receiver = WebhookReceiver(tls=context).start()
    try:
        yield receiver
    finally:
        receiver.stop()


async def test_https_targets_trust_the_configured_ca_bundle(
    tls_receiver: WebhookReceiver, private_ca: trustme.CA, tmp_path: Path
) -> None:
    """Without the bundle the private CA is unknown (retryable, nothing delivered); with it the
    alert arrives over HTTPS."""
    bundle = tmp_path / "proxy-ca.pem"
    private_ca.cert_pem.write_to_path(str(bundle))
    url = f"jsons://127.0.0.1:{tls_receiver.port}/alerts"

    untrusted = await AppriseNotifier({"ops": [url]}, timeout=5).send("ops", MESSAGE)
    trusted = await AppriseNotifier({"ops": [url]}, timeout=5, ca_bundle=bundle).send(
        "ops", MESSAGE
    )

    assert not untrusted.ok and untrusted.targets[0].cause is FailureCause.CONNECTION
    assert trusted.ok, trusted.error
    assert len(tls_receiver.wait_for_requests(1)) == 1

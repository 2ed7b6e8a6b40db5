"""Which heartbeat ping a finished cycle sends, and where."""

from __future__ import annotations

import pytest

from watcher.core.pings import MAX_BODY, HeartbeatPlan, PingKind, PingMethod, fail_url_of, ping_for

HC = "https://hc-ping.com/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
KUMA = "https://kuma.example.com/api/push/Xy12Ab34?status=up&msg=OK"


@pytest.mark.parametrize(
    ("url", "fail"),
    [
        # healthchecks.io: /fail after the uuid
        (HC, HC + "/fail"),
        # a trailing slash is not doubled
        (HC + "/", HC + "/fail"),
        # the query and fragment are kept (a run id, a slug's create flag)
        ("https://hc-ping.com/key/slug?create=1", "https://hc-ping.com/key/slug/fail?create=1"),
        # a bare host
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/fail"),
    ],
)
def test_the_failure_url_is_the_ping_url_with_fail_added_to_its_path(url: str, fail: str) -> None:
    assert fail_url_of(url) == fail


@pytest.mark.parametrize(
    ("plan", "ok", "expected"),
    [
        # a successful cycle pings the URL itself
        (HeartbeatPlan(HC), True, (PingKind.SUCCESS, HC)),
        # a failed one pings URL/fail by default
        (HeartbeatPlan(HC), False, (PingKind.FAIL, HC + "/fail")),
        # or the configured failure URL (an Uptime Kuma push monitor says down in its query)
        (
            HeartbeatPlan(KUMA, fail_url=KUMA.replace("status=up", "status=down")),
            False,
            (PingKind.FAIL, KUMA.replace("status=up", "status=down")),
        ),
        # an empty failure URL: a failed cycle pings nothing (the monitor sees the silence)
        (HeartbeatPlan(KUMA, fail_url=""), False, None),
        (HeartbeatPlan(KUMA, fail_url=""), True, (PingKind.SUCCESS, KUMA)),
    ],
)
def test_the_cycles_outcome_chooses_the_ping(
    plan: HeartbeatPlan, ok: bool, expected: tuple[PingKind, str] | None
) -> None:
    ping = ping_for(plan, ok, "summary")
    assert (None if ping is None else (ping.kind, ping.url)) == expected


def test_a_get_ping_has_no_body_and_a_post_carries_the_summary_on_one_clipped_line() -> None:
    get = ping_for(HeartbeatPlan(HC), False, "cycle failed:\nHTTP 503")
    assert get is not None and get.body is None and get.method is PingMethod.GET
    post = ping_for(HeartbeatPlan(HC, method=PingMethod.POST), False, "cycle failed:\nHTTP 503")
    assert post is not None and post.body == "cycle failed: HTTP 503"
    long = ping_for(HeartbeatPlan(HC, method=PingMethod.POST), True, "x" * 5000)
    assert long is not None and long.body is not None and len(long.body) == MAX_BODY

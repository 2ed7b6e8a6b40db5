"""The one health rule: (probe, heartbeat, now) -> verdict, on the monotonic clock only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.clocks import Elapsed
from watcher.core.health import Health, Heartbeat, Probe, health_limit, judge

BOOT = "boot-1"
LIMIT = timedelta(seconds=210)  # interval 60 s + 2 x deadline 60 s + delivery timeout 30 s
NOW = Elapsed(10_000.0, BOOT)
LIVE, READY = Probe.LIVE, Probe.READY


def ago(seconds: float) -> Elapsed:
    return Elapsed(NOW.seconds - seconds, BOOT)


def beat(finished: float, ok: bool = True, last_ok: float | None = None, **kw: object) -> Heartbeat:
    """A heartbeat whose last cycle finished `finished` s ago (its last success `last_ok`)."""
    if last_ok is None and ok:
        last_ok = finished
    good = ago(last_ok) if last_ok is not None else None
    return Heartbeat(ago(finished), ok, LIMIT, good, **kw)  # type: ignore[arg-type]


def test_the_limit_is_one_interval_two_deadlines_and_one_send_timeout() -> None:
    second = timedelta(seconds=1)
    assert health_limit(60 * second, 60 * second, 30 * second) == LIMIT


@pytest.mark.parametrize(
    ("probe", "heartbeat", "expected"),
    [
        # a cycle finished recently and succeeded: live and ready
        (LIVE, beat(5), Health(True, "last cycle finished 5s ago (limit 210s)")),
        (READY, beat(5), Health(True, "last successful cycle 5s ago (limit 210s)")),
        # exactly at the limit is still healthy; a second more is not
        (LIVE, beat(210), Health(True, "last cycle finished 210s ago (limit 210s)")),
        (
            LIVE,
            beat(211),
            Health(False, "stuck: the last cycle finished 211s ago (limit 210s)"),
        ),
        # the last cycle failed (API down) but cycles keep finishing: live, and ready while
        # the last success is within the limit (one failed cycle is tolerated)...
        (
            LIVE,
            beat(5, ok=False, last_ok=70, error="HTTP 503"),
            Health(True, "last cycle finished 5s ago (limit 210s)"),
        ),
        (
            READY,
            beat(5, ok=False, last_ok=70, error="HTTP 503"),
            Health(True, "last successful cycle 70s ago (limit 210s)"),
        ),
        # ...not once the API has failed for longer: readiness says why
        (
            READY,
            beat(
                5,
                ok=False,
                last_ok=300,
                error="the API was not read within the cycle deadline (60s)",
            ),
            Health(
                False,
                "last successful cycle 300s ago (limit 210s); the last cycle failed: "
                "the API was not read within the cycle deadline (60s)",
            ),
        ),
        (
            READY,
            beat(5, ok=False, error="HTTP 401 unauthorized"),
            Health(False, "no successful cycle yet; the last cycle failed: HTTP 401 unauthorized"),
        ),
        # a stuck daemon is not ready either, whatever its last success said
        (READY, beat(400), Health(False, "stuck: the last cycle finished 400s ago (limit 210s)")),
        # nothing recorded: neither
        (LIVE, None, Health(False, "no cycle recorded yet: is the daemon running?")),
        (READY, None, Health(False, "no cycle recorded yet: is the daemon running?")),
    ],
)
def test_the_health_rule(probe: Probe, heartbeat: Heartbeat | None, expected: Health) -> None:
    assert judge(probe, heartbeat, NOW) == expected


def test_a_heartbeat_of_another_boot_or_host_cannot_be_judged_so_it_is_not_healthy() -> None:
    other = Heartbeat(Elapsed(9_999.0, "boot-0"), True, LIMIT, Elapsed(9_999.0, "boot-0"))
    verdict = judge(LIVE, other, NOW)
    assert verdict == Health(
        False, "the last cycle was recorded before this boot (or on another host)"
    )


def test_a_daemon_is_live_for_one_limit_after_start_while_its_first_cycle_runs() -> None:
    assert judge(LIVE, None, NOW, started=ago(30), limit=LIMIT) == Health(
        True, "starting: first cycle under way for 30s"
    )
    assert judge(READY, None, NOW, started=ago(30), limit=LIMIT) == Health(
        False, "no successful cycle yet: the first one is under way"
    )
    assert judge(LIVE, None, NOW, started=ago(300), limit=LIMIT) == Health(
        False, "stuck: no cycle finished 300s after start"
    )


def test_an_unwritable_store_makes_a_live_daemon_not_ready() -> None:
    verdict = judge(READY, beat(5), NOW, store_error="attempt to write a readonly database")
    assert verdict == Health(
        False, "state store not writable: attempt to write a readonly database"
    )
    assert judge(LIVE, beat(5), NOW, store_error="anything").ok


def test_the_daemons_current_limit_overrides_the_recorded_one() -> None:
    """The pace stretched the interval: the limit in force is the daemon's, not the record's."""
    assert judge(LIVE, beat(300), NOW, limit=timedelta(seconds=600)).ok


def test_a_heartbeat_round_trips_through_its_stored_form_and_garbage_reads_as_none() -> None:
    api = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    original = beat(5, ok=False, last_ok=70, error="HTTP 503", api=api)
    assert Heartbeat.decode(original.encode()) == original
    for garbage in (None, "", "{", "[]", '{"finished": [1, 2]}', '{"finished": [1, "b"]}'):
        assert Heartbeat.decode(garbage) is None


def test_another_process_reads_the_apis_clock_on_its_own_monotonic_clock() -> None:
    api = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    recorded = beat(30, api=api)
    assert recorded.api_now(NOW) == api + timedelta(seconds=30)
    assert recorded.api_now(Elapsed(5.0, "another-boot")) is None
    assert beat(30).api_now(NOW) is None


def test_after_a_cycle_the_heartbeat_keeps_the_last_success_until_a_new_one() -> None:
    first = beat(100)
    failed = first.after(False, ago(50), LIMIT, "HTTP 503")
    assert (failed.ok, failed.last_ok, failed.error) == (False, first.last_ok, "HTTP 503")
    good = failed.after(True, ago(1), LIMIT, None)
    assert (good.ok, good.last_ok, good.error) == (True, ago(1), None)


@pytest.mark.parametrize(
    ("probe", "delivering", "expected"),
    [
        # a process standing by on an SQLite file delivers nothing: up, not ready
        (Probe.LIVE, False, True),
        (Probe.READY, False, False),
        # a replica standing by on a shared store delivers: up and ready
        (Probe.LIVE, True, True),
        (Probe.READY, True, True),
    ],
)
def test_a_replica_standing_by_and_delivering_is_ready(
    probe: Probe, delivering: bool, expected: bool
) -> None:
    """The last lease step stands for the last cycle; it was 5 s ago."""
    steps = Heartbeat(ago(5), False, timedelta(minutes=3))
    verdict = judge(probe, steps, NOW, standby="another replica polls", delivering=delivering)
    assert verdict.ok is expected


def test_a_daemon_that_stopped_cleanly_is_not_running_for_a_probe_from_outside() -> None:
    """Its last heartbeat says so: "not running" at once, for both probes, rather than "ok"
    until the limit and "stuck" after it; the next daemon's first cycle clears it."""
    stopped = replace(beat(5), stopped=ago(3))
    for probe in Probe:
        verdict = judge(probe, stopped, NOW)
        assert verdict == Health(
            False,
            "not running: the watcher stopped cleanly 3s ago, and no cycle has finished since",
        )
    assert Heartbeat.decode(stopped.encode()) == stopped
    again = stopped.after(True, NOW, LIMIT, None)
    assert again.stopped is None and judge(Probe.READY, again, NOW).ok

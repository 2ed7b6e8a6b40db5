"""The API's clock, learnt from the `Date` headers of its answers, and the waits judged on it."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from email.utils import formatdate

import httpx
import pytest
from structlog.testing import capture_logs

from watcher.edges.api.client import ApiClient, ApiSettings
from watcher.edges.api.clock import ApiClock

EPOCH = 1_800_000_000.0  # the local wall clock when the local monotonic clock reads 0


class Clocks:
    """A local monotonic clock, a local wall clock that can be stepped, and the API's clock
    `skew` seconds off the true time. Nothing moves unless a test moves it."""

    def __init__(self, skew: float = 0.0) -> None:
        self.mono = 0.0
        self.wall_step = 0.0
        self.skew = skew

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return EPOCH + self.mono + self.wall_step

    def api_true(self) -> float:
        return EPOCH + self.mono + self.skew

    def answer(self, clock: ApiClock, rtt: float = 0.04, at: float = 0.5) -> None:
        """One request: the server stamps its Date `at` of the way through the round trip."""
        sent = self.mono
        self.mono += rtt * at
        date = formatdate(self.api_true(), usegmt=True)
        self.mono += rtt * (1 - at)
        clock.observe(date, sent=sent, received=self.mono)


def make(clocks: Clocks) -> ApiClock:
    return ApiClock(monotonic=clocks.monotonic, wall_clock=clocks.wall)


@pytest.mark.parametrize("skew", [0.0, 1.0, -1.0, 90.0, -90.0, 600.0, -600.0, 0.73, -0.27])
def test_a_few_answers_pin_the_apis_clock_well_below_a_second(skew: float) -> None:
    clocks = Clocks(skew)
    clock = make(clocks)
    for _ in range(12):
        clocks.answer(clock)
        clocks.mono += random.Random(int(skew * 100)).uniform(0.1, 3.0) + 0.37
    assert clock.known
    assert abs(clock.timestamp() - clocks.api_true()) < 0.25


def test_one_answer_bounds_the_apis_clock_to_the_second_of_its_date_header() -> None:
    clocks = Clocks(skew=-90.6)
    clock = make(clocks)
    clocks.answer(clock)
    assert abs(clock.timestamp() - clocks.api_true()) <= 1.0


def test_a_step_of_the_local_wall_clock_does_not_move_the_apis_clock() -> None:
    clocks = Clocks(skew=5.0)
    clock = make(clocks)
    for _ in range(5):
        clocks.answer(clock)
        clocks.mono += 1.3
    before = clock.timestamp() - clocks.api_true()
    clocks.wall_step = -3600.0  # NTP steps the watcher's clock back an hour
    clocks.mono += 10
    assert clock.timestamp() - clocks.api_true() == pytest.approx(before)


def test_when_the_apis_clock_is_stepped_the_estimate_follows_the_new_answers() -> None:
    clocks = Clocks(skew=0.0)
    clock = make(clocks)
    for _ in range(10):
        clocks.answer(clock)
        clocks.mono += 0.7
    clocks.skew = -120.0  # DigitalOcean's clock was fixed by two minutes
    clocks.answer(clock)
    assert abs(clock.timestamp() - clocks.api_true()) <= 1.0


def test_without_any_date_header_the_local_clock_stands_in_and_that_is_logged_once() -> None:
    clocks = Clocks(skew=300.0)
    clock = make(clocks)
    with capture_logs() as logs:
        for _ in range(3):
            clock.observe(None, sent=clocks.mono, received=clocks.mono + 0.01)
    assert not clock.known
    assert clock.timestamp() == clocks.wall()
    assert [e["event"] for e in logs] == ["api_date_header_missing"]
    assert logs[0]["using"] == "the local clock"


@pytest.mark.parametrize(
    "header",
    [
        "yesterday at noon",  # not a date
        "Thu, 01 Jan 1998 00:00:00 GMT",  # absurd: no API answering today is in 1998
        "Fri, 01 Jan 2light 00:00:00 GMT",  # garbled
        "Sat, 01 Jan 2201 00:00:00 GMT",  # absurd: two centuries ahead
    ],
)
def test_an_unusable_date_header_is_ignored_and_logged_once(header: str) -> None:
    clocks = Clocks(skew=30.0)
    clock = make(clocks)
    clocks.answer(clock)
    good = clock.timestamp()
    with capture_logs() as logs:
        clock.observe(header, sent=0.0, received=0.01)
        clock.observe(header, sent=0.0, received=0.01)
    assert clock.timestamp() == good
    assert [e["event"] for e in logs] == ["api_date_header_unusable"]
    assert logs[0]["value"] == header and logs[0]["using"] == "the last good estimate"


def test_a_local_clock_days_off_does_not_make_a_good_date_header_absurd() -> None:
    """The watcher's clock is wrong (booted without a battery clock): the API's is believed."""
    clocks = Clocks(skew=0.0)
    clocks.wall_step = -50 * 365 * 86400.0
    clock = make(clocks)
    clocks.answer(clock)
    assert clock.known
    assert abs(clock.timestamp() - clocks.api_true()) <= 1.0


def test_the_clock_reads_as_an_aware_utc_datetime() -> None:
    clocks = Clocks(skew=-600.0)
    clock = make(clocks)
    clocks.answer(clock)
    now = clock.now()
    assert now.tzinfo is UTC
    assert abs((now - datetime.fromtimestamp(clocks.api_true(), UTC)).total_seconds()) <= 1


# --- the client learns the clock from every answer, and judges the API's times on it ----------


class FakeTime:
    """Monotonic and wall time for the client that move only when it sleeps."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return EPOCH + self.mono

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds
        await asyncio.sleep(0)


@pytest.mark.parametrize("skew", [600.0, -600.0])
async def test_a_429_waits_until_ratelimit_reset_on_the_apis_clock_not_the_local_one(
    skew: float,
) -> None:
    """The reset is 12 s away on DigitalOcean's clock, which is ten minutes off ours."""
    time = FakeTime()
    answers = iter(["429", "ok"])

    def handler(request: httpx.Request) -> httpx.Response:
        api_now = time.wall() + skew
        headers = {"date": formatdate(api_now, usegmt=True)}
        if next(answers) == "429":
            headers |= {"ratelimit-reset": str(int(api_now) + 12), "ratelimit-remaining": "0"}
            return httpx.Response(429, json={"id": "too_many_requests"}, headers=headers)
        return httpx.Response(200, json={"job": {"uuid": "j-1"}}, headers=headers)

    client = ApiClient(
        ApiSettings("https://api.example.test"),
        "dop_v1_" + "a" * 64,
        token_source="test",
        transport=httpx.MockTransport(handler),
        sleep=time.sleep,
        monotonic=time.monotonic,
        wall_clock=time.wall,
        rng=random.Random(1),
    )
    async with client:
        await client.get_job("j-1")
        assert abs((client.api_now().timestamp() - time.wall()) - skew) <= 1.0
    assert len(time.sleeps) == 1
    assert 11.0 <= time.sleeps[0] <= 13.0

"""What a cycle reads from the API: which job lists, for which KBs, and which jobs by themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.core.model import (
    DataSourceJob,
    DataSourceStatus,
    EventKind,
    Job,
    KnowledgeBase,
    WatchedKb,
)
from watcher.core.reads import (
    JobLists,
    has_news,
    job_lists,
    needs_details,
    next_poll_cost,
    owned,
    read_share,
    unseen_followed,
    watched,
)
from watcher.core.state import JobState, KbState, Transition, WatchState, changed

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BASELINE = NOW - timedelta(days=1)


@pytest.mark.parametrize(
    ("with_news", "account_kbs", "per_page", "expected"),
    [
        # no KB has news: no job list at all
        (0, 120, 200, JobLists.NONE),
        # one KB of 120: its own list (1 request) beats the account's (9 pages of 200)
        (1, 120, 200, JobLists.PER_KB),
        # nine of 120: nine requests either way; a tie reads only the KBs that need it
        (9, 120, 200, JobLists.PER_KB),
        # ten of 120: the account-wide list (9 requests) is cheaper than ten
        (10, 120, 200, JobLists.ACCOUNT),
        # a small account fits one page: two KBs with news already make it cheaper
        (1, 10, 200, JobLists.PER_KB),
        (2, 10, 200, JobLists.ACCOUNT),
        # smaller pages make the account-wide list dearer: 10 KBs × 15 jobs / 20 = 8 pages
        (8, 10, 20, JobLists.PER_KB),
        (9, 10, 20, JobLists.ACCOUNT),
        # a thousand KBs: 75 pages, so up to 75 KBs with news read their own lists
        (75, 1000, 200, JobLists.PER_KB),
        (76, 1000, 200, JobLists.ACCOUNT),
    ],
)
def test_one_account_wide_job_list_is_read_only_when_it_takes_fewer_requests(
    with_news: int, account_kbs: int, per_page: int, expected: JobLists
) -> None:
    assert job_lists(with_news, account_kbs, per_page) is expected


def kb(uuid: str, latest: str | None = None, created: datetime | None = None) -> KnowledgeBase:
    job = Job(uuid=latest) if latest else None
    return KnowledgeBase(uuid=uuid, name=uuid, created_at=created, last_indexing_job=job)


def known(*kbs: tuple[str, str | None]) -> WatchState:
    """KBs seen before, each with the latest job we knew."""
    states = {u: KbState(u, u, BASELINE, last_job_uuid=latest) for u, latest in kbs}
    return WatchState(kbs=states, baseline=BASELINE)


@pytest.mark.parametrize(
    ("found", "state", "news"),
    [
        # a KB without jobs has nothing to list
        (kb("a"), known(("a", None)), False),
        # the latest job is the one we knew: nothing new
        (kb("a", "j1"), known(("a", "j1")), False),
        # another latest job: list the KB's jobs (others may have run in between)
        (kb("a", "j2"), known(("a", "j1")), True),
        # a KB we knew without jobs now has one
        (kb("a", "j1"), known(("a", None)), True),
        # first sight of a KB that existed before the first run: history, no list
        (kb("b", "j1", created=BASELINE - timedelta(days=3)), known(), False),
        # first sight of a KB created since the first run: all of its jobs are news
        (kb("b", "j1", created=BASELINE + timedelta(hours=1)), known(), True),
    ],
)
def test_a_kb_has_news_when_its_latest_job_is_not_the_one_we_knew(
    found: KnowledgeBase, state: WatchState, news: bool
) -> None:
    assert has_news(found, state) is news


def test_the_watched_kbs_are_the_configured_ones_in_order_with_their_configured_names() -> None:
    account = [kb("a"), kb("b"), kb("c")]
    wanted = [WatchedKb("c", "Docs"), WatchedKb("a"), WatchedKb("gone")]
    assert [(k.uuid, k.name) for k in watched(account, wanted)] == [("c", "Docs"), ("a", "a")]
    assert watched(account, []) == account  # none configured: every KB of the account


def test_a_job_listed_under_a_kb_belongs_to_it_unless_it_says_otherwise() -> None:
    assert owned(Job(uuid="j"), "a").knowledge_base_uuid == "a"
    assert owned(Job(uuid="j", knowledge_base_uuid="b"), "a").knowledge_base_uuid == "b"


def followed(uuid: str, kb_uuid: str, done: bool = False) -> JobState:
    return JobState(Job(uuid=uuid), kb_uuid, NOW, NOW, done=done)


def test_followed_jobs_no_list_showed_are_asked_for_by_themselves() -> None:
    state = WatchState(
        jobs={
            s.uuid: s
            for s in (
                followed("seen", "a"),  # a list showed it
                followed("pushed-out", "a"),  # out of the 15-job window: ask for it
                followed("finished", "a", done=True),  # done: nothing more to learn
                followed("elsewhere", "z"),  # its KB was not read this cycle
            )
        }
    )
    missing = unseen_followed(state, visible_kbs={"a"}, seen_jobs={"seen"})
    assert [s.uuid for s in missing] == ["pushed-out"]


def outcome(kind: EventKind, errors: bool = False) -> Transition:
    source = DataSourceJob(
        data_source_uuid="ds", status=DataSourceStatus.FAILED, error_msg="x" if errors else None
    )
    job = Job(uuid="j", data_source_jobs=(source,))
    return Transition("j/x", kind, NOW, "a", "a", job)


@pytest.mark.parametrize(
    ("transition", "needed"),
    [
        # a failed or partial job's alert names its data sources' errors: read them
        (outcome(EventKind.FAILED), True),
        (outcome(EventKind.PARTIAL), True),
        # errors already known: no request
        (outcome(EventKind.FAILED, errors=True), False),
        # other outcomes have no errors to tell
        (outcome(EventKind.COMPLETED), False),
        (outcome(EventKind.STALLED), False),
        # an event without a job (the API's, the setup's)
        (Transition("api/x", EventKind.API_UNREACHABLE, NOW), False),
    ],
)
def test_failed_and_partial_jobs_get_their_error_details_once(
    transition: Transition, needed: bool
) -> None:
    assert needs_details(transition) is needed


def test_a_cycle_writes_only_the_kbs_and_jobs_whose_state_changed() -> None:
    before = WatchState(
        kbs={"a": KbState("a", "a", NOW), "b": KbState("b", "b", NOW)},
        jobs={"j": followed("j", "a")},
    )
    moved = KbState("b", "b", NOW, last_job_uuid="j2")
    after = WatchState(
        kbs={"a": before.kbs["a"], "b": moved},
        jobs={"j": before.jobs["j"], "k": followed("k", "b")},
    )
    kbs, jobs = changed(before, after)
    assert kbs == (moved,)
    assert [j.uuid for j in jobs] == ["k"]


@pytest.mark.parametrize(
    ("left", "reads", "reserve", "share"),
    [
        # one read alone gets all that is left after the reserve
        (60.0, 1, 15.0, 45.0),
        # three reads to go: a third each
        (60.0, 3, 15.0, 15.0),
        # no reserve (the details, last of the cycle's reads): all that is left, shared
        (10.0, 4, 0.0, 2.5),
        # the reserve is already spent: nothing left, the read is not started
        (10.0, 2, 15.0, 0.0),
        # the deadline has passed
        (-1.0, 1, 0.0, 0.0),
        # no read to make
        (60.0, 0, 0.0, 0.0),
    ],
)
def test_each_optional_read_gets_an_equal_share_of_what_is_left_after_the_reserve(
    left: float, reads: int, reserve: float, share: float
) -> None:
    assert read_share(left, reads, reserve) == pytest.approx(share)


def run_reads(durations: list[float], left: float, reserve: float) -> list[tuple[float, float]]:
    """Make reads one after another, each cut at its share: (share, time taken) per read.
    `inf` is a read that never ends (a dribbling endpoint)."""
    taken = []
    for n, duration in enumerate(durations):
        share = read_share(left, len(durations) - n, reserve)
        took = min(duration, share)
        taken.append((share, took))
        left -= took
    return taken


NEVER = float("inf")


@pytest.mark.parametrize(
    "durations",
    [
        # the first read never ends: it costs its share, the others still run
        [NEVER, 0.2, 0.2, 0.2],
        # one in the middle
        [0.2, NEVER, 0.2, 0.2],
        # the last
        [0.2, 0.2, 0.2, NEVER],
        # every one of them
        [NEVER, NEVER, NEVER, NEVER],
        # one read alone that never ends
        [NEVER],
        # none hangs: nobody is cut
        [0.2, 0.2, 0.2, 0.2],
    ],
)
def test_reads_that_never_end_cost_their_share_only_and_the_reads_end_before_the_reserve(
    durations: list[float],
) -> None:
    left, reserve = 60.0, 15.0
    taken = run_reads(durations, left, reserve)
    # every read had at least an equal part of what was left before the first
    assert all(share >= (left - reserve) / len(durations) - 1e-9 for share, _ in taken)
    # and the reads, hanging or not, left the reserve for what follows
    assert sum(took for _, took in taken) <= left - reserve + 1e-9
    # a read that answers in time is never cut
    assert all(took == d for (_, took), d in zip(taken, durations, strict=True) if d != NEVER)


@pytest.mark.parametrize(
    ("account", "busy", "cost"),
    [
        (120, 0, 1),  # idle: the KB list's one page
        (1_000, 0, 5),
        (1_000, 133, 80),  # 133 busy KBs: the account-wide list (75 pages) is cheaper
        (1_000, 20, 25),  # 20 busy KBs: their own lists
        (10_000, 1, 51),
        (0, 0, 1),  # an empty account still reads its (empty) first page
    ],
)
def test_the_next_poll_may_cost_the_kb_list_and_a_list_for_each_busy_kb_the_cheaper_way(
    account: int, busy: int, cost: int
) -> None:
    """What the extra reads leave room for: a first run's poll reads the KB list alone
    (the history), and at 1,000 busy KBs the next one took 75 requests more."""
    assert next_poll_cost(account, busy, 200) == cost

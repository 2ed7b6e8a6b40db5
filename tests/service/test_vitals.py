"""The heartbeat's record in the store: a store that refuses it is logged and reported, with a
traceback only for what nobody expected."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from structlog.testing import capture_logs

from tests.stores import open_held
from watcher.core.errors import StoreHeld
from watcher.core.lease import Holder
from watcher.edges.hostclock import monotonic_now
from watcher.edges.store.lease import held_message
from watcher.edges.store.sqlite import SqliteStore
from watcher.service.cycle import CycleReport
from watcher.service.quickhealth import MARK_KEY
from watcher.service.vitals import Vitals

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
THEM = Holder("them", "watcher run", "host-b", 100, "2026-12-02T08:00:00Z")


class RefusingStore:
    """A store whose every write raises `fault`, as a fenced write after a lost lease does."""

    def __init__(self, fault: Exception) -> None:
        self.fault = fault

    async def set_last_cycle_at(self, at: datetime) -> None:
        raise self.fault

    async def set_meta(self, key: str, value: str | None) -> None:
        raise self.fault

    async def set_metas(
        self, values: Mapping[str, str | None], *, last_cycle_at: datetime | None = None
    ) -> None:
        raise self.fault


async def beat_into(fault: Exception) -> tuple[Vitals, list[dict[str, Any]]]:
    vitals = Vitals(monotonic_now, None, {})  # an elapsed reading, as `Heartbeat` encodes
    store = cast(SqliteStore, RefusingStore(fault))
    with capture_logs() as logs:
        await vitals.beat(store, CycleReport("c1", True), NOW, timedelta(minutes=2), NOW)
    return vitals, logs


async def test_a_heartbeat_refused_for_a_lost_lease_is_a_warning_in_words_without_a_traceback() -> (
    None
):
    lost = StoreHeld(held_message(Path("/var/lib/w/watcher.db"), THEM, 4, lost=True))
    vitals, logs = await beat_into(lost)
    [entry] = [e for e in logs if e["event"] == "heartbeat_not_recorded"]
    assert entry["log_level"] == "warning"
    assert "exc_info" not in entry
    assert entry["error"] == str(lost)
    assert vitals.store_error == str(lost)  # readiness still hears of it


async def test_an_unexpected_failure_to_record_the_heartbeat_keeps_its_traceback() -> None:
    vitals, logs = await beat_into(RuntimeError("a bug"))
    [entry] = [e for e in logs if e["event"] == "heartbeat_not_recorded"]
    assert entry["log_level"] == "error" and entry.get("exc_info") is True
    assert vitals.store_error == "a bug"


async def test_the_config_mark_is_stored_at_the_first_beat_and_again_only_when_it_changed(
    tmp_path: Path,
) -> None:
    """`watcher health` trusts the mark of the file the daemon validated: the first beat
    stores it (or clears one an earlier watcher left), a reload's new mark replaces it."""
    store = await open_held(tmp_path / "w.db", NOW)
    try:
        await store.set_meta(MARK_KEY, "left by an earlier once")
        vitals = Vitals(monotonic_now, None, {})
        report = CycleReport("c1", True)
        await vitals.beat(store, report, NOW, timedelta(minutes=2), NOW, None)
        assert await store.get_meta(MARK_KEY) is None
        await vitals.beat(store, report, NOW, timedelta(minutes=2), NOW, "m1")
        assert await store.get_meta(MARK_KEY) == "m1"
        await store.set_meta(MARK_KEY, "tampered")  # shows that an unchanged mark is not written
        await vitals.beat(store, report, NOW, timedelta(minutes=2), NOW, "m1")
        assert await store.get_meta(MARK_KEY) == "tampered"
        await vitals.beat(store, report, NOW, timedelta(minutes=2), NOW, "m2")
        assert await store.get_meta(MARK_KEY) == "m2"
    finally:
        await store.close()

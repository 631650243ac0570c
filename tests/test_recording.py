"""The run's record writer: never blocks target work, keeps order, survives an outage."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from bojdeploy.engine import recording
from bojdeploy.engine.recording import Records
from bojdeploy.errors import DatabaseUnreachable, StoreError


class FlakyStore:
    """Our StateStore seam: writes land in a list, or fail while `down` is set."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.written: list[tuple[Any, ...]] = []

    def _write(self, *row: Any) -> None:
        if self.down.is_set():
            raise DatabaseUnreachable("cannot reach the database at postgresql://db: refused")
        if row[1] == "refuse":
            raise StoreError("deployment 7 does not exist")
        self.written.append(row)

    def add_log(self, dep: int, level: str, message: str, metadata: Any, at: Any) -> None:
        self._write(dep, level, message)

    def update_deployment(self, dep: int, **changes: Any) -> None:
        self._write(dep, "update", changes.get("status"))


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recording, "FIRST_RETRY", 0.01)
    monkeypatch.setattr(recording, "MAX_RETRY", 0.05)
    monkeypatch.setattr(recording, "FINISH_SECONDS", 0.5)


def test_writes_arrive_in_order() -> None:
    store, said = FlakyStore(), []
    records = Records(store, lambda level, msg: said.append(msg))  # type: ignore[arg-type]
    for i in range(20):
        records.log(1, "info", f"line {i}")
    records.update(1, status="completed", completed=True)
    records.settle(1)
    assert store.written == [(1, "info", f"line {i}") for i in range(20)] + [
        (1, "update", "completed")
    ]
    assert records.finish() == {}
    assert said == []


def test_an_outage_is_waited_out_and_said_once() -> None:
    store, said = FlakyStore(), []
    records = Records(store, lambda level, msg: said.append(msg))  # type: ignore[arg-type]
    store.down.set()
    started = time.monotonic()
    records.log(1, "info", "during")
    records.update(1, status="completed")
    records.settle(1)  # returns at once: the database is down
    assert time.monotonic() - started < 1
    threading.Timer(0.2, store.down.clear).start()
    assert records.finish() == {}
    assert store.written == [(1, "info", "during"), (1, "update", "completed")]
    assert said[0].startswith("database unreachable; ")
    assert "reachable again" in said[-1]


def test_records_still_unwritten_at_the_end_are_counted_per_deployment() -> None:
    store = FlakyStore()
    records = Records(store, lambda level, msg: None)  # type: ignore[arg-type]
    store.down.set()
    records.log(1, "info", "a")
    records.log(2, "info", "b")
    records.update(2, status="failed")
    started = time.monotonic()
    assert records.finish() == {1: 1, 2: 2}
    assert time.monotonic() - started < 2  # bounded by FINISH_SECONDS


def test_a_refused_record_is_dropped_with_a_warning() -> None:
    store, said = FlakyStore(), []
    records = Records(store, lambda level, msg: said.append(msg))  # type: ignore[arg-type]
    records.log(7, "refuse", "x")
    records.log(7, "info", "after")
    assert records.finish() == {}
    assert store.written == [(7, "info", "after")]
    assert said == ["a record of deployment #7 was refused: deployment 7 does not exist"]


def test_the_note_for_an_unwritten_record() -> None:
    assert recording.unrecorded_note("container", "web", "update", "completed", 4) == (
        "container web: deployed, but the record of deployment #4 could not be written "
        "(database unreachable); the next run reconciles it"
    )
    assert recording.unrecorded_note("container", "web", "delete", "completed", 5).startswith(
        "container web: deleted, but"
    )

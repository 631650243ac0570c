"""The step log with parallel steps: every resource's `::group::` whole, progress still live."""

from __future__ import annotations

import io
import random
import threading
import time
from typing import Any

from bojdeploy.frontends.action.io import Console, GroupedLog, watch


def groups(text: str) -> list[tuple[str, list[str]]]:
    """The (title, lines) of each group; fails on lines outside groups or nested groups."""
    out: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("::group::"):
            assert current is None, f"group opened inside another: {line}"
            current = []
            out.append((line.removeprefix("::group::"), current))
        elif line == "::endgroup::":
            assert current is not None, "endgroup without a group"
            current = None
        else:
            assert current is not None, f"line outside any group: {line}"
            current.append(line)
    assert current is None, "a group was left open"
    return out


def test_a_sequential_run_streams_each_group() -> None:
    out = io.StringIO()
    log = GroupedLog(Console(out))
    log("container/a", "info", "a1")
    log("container/a", "warn", "a2")
    log("container/b", "info", "b1")  # the same thread moved on: a is done
    log.close()
    assert groups(out.getvalue()) == [
        ("container/a", ["a1", "::warning::a2"]),
        ("container/b", ["b1"]),
    ]


def test_the_live_group_shows_progress_and_the_others_wait_whole() -> None:
    out = io.StringIO()
    log = GroupedLog(Console(out))
    log("container/a", "info", "a: waiting for health ... 1s")
    other = threading.Thread(target=log, args=("container/b", "info", "b: created"))
    other.start()
    other.join()
    log("container/a", "info", "a: waiting for health ... 2s")
    # a is live: its lines are shown as they come; b's line waits for a's group to close
    assert out.getvalue().splitlines() == [
        "::group::container/a",
        "a: waiting for health ... 1s",
        "a: waiting for health ... 2s",
    ]
    log.finished("container/a")
    log("container/a", "info", "a: unchanged")  # logged right after its record: still in a
    time.sleep(GroupedLog.GRACE + 0.3)
    # a's group closed by itself; b became live with the line it held
    assert out.getvalue().splitlines()[3:] == [
        "a: unchanged",
        "::endgroup::",
        "::group::container/b",
        "b: created",
    ]
    log("container/b", "info", "b: running")
    log.close()
    assert groups(out.getvalue())[1] == ("container/b", ["b: created", "b: running"])


def test_lines_about_the_run_are_shown_at_once() -> None:
    out = io.StringIO()
    log = GroupedLog(Console(out))
    log("records", "warn", "database unreachable; 2 records waiting")  # no group open: plain
    log("container/a", "info", "a1")
    other = threading.Thread(target=log, args=("records", "info", "database reachable again"))
    other.start()
    other.join()
    log.close()
    assert out.getvalue().splitlines() == [
        "::warning::database unreachable; 2 records waiting",
        "::group::container/a",
        "a1",
        "database reachable again",
        "::endgroup::",
    ]


class Store:
    """Just enough of a state store for WatchedStore."""

    def __init__(self) -> None:
        self.next = 0
        self.lock = threading.Lock()

    def create_deployment(self, **fields: Any) -> int:
        with self.lock:
            self.next += 1
            return self.next

    def update_deployment(self, deployment_id: int, **fields: Any) -> None:
        pass

    def installation_key(self) -> bytes:
        return b"k"


def test_many_parallel_resources_never_interleave() -> None:
    out = io.StringIO()
    log = GroupedLog(Console(out))
    store = watch(Store(), log)  # type: ignore[arg-type]
    names = [f"container/r{i}" for i in range(8)]
    rng = random.Random(7)
    pauses = {name: [rng.uniform(0, 0.02) for _ in range(6)] for name in names}

    def step(name: str) -> None:
        kind, _, short = name.partition("/")
        dep_id = store.create_deployment(deployment_type=kind, name=short)
        for i, pause in enumerate(pauses[name]):
            log(name, "info", f"{name} line {i}")
            time.sleep(pause)
        store.update_deployment(dep_id, status="completed", completed=True)

    threads = [threading.Thread(target=step, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    shown = groups(out.getvalue())
    assert sorted(title for title, _ in shown) == sorted(names)  # one group each
    for title, lines in shown:
        assert lines == [f"{title} line {i}" for i in range(6)]
    assert store.installation_key() == b"k"  # everything else goes to the store itself

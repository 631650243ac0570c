"""Target locks between real processes, on SQLite (flock) and PostgreSQL (advisory locks)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bojdeploy.errors import LockTimeout
from bojdeploy.store import StateStore

# Runs in another process: take the lock, note it in the events file, hold it, note the release.
HOLDER = """
import sys, time
from bojdeploy.store import open_store
url, name, events, seconds = sys.argv[1:]
with open_store(url) as store, store.lock("production", "container", name, timeout=10):
    with open(events, "a") as f:
        f.write("holder acquired\\n")
    print("locked", flush=True)
    time.sleep(float(seconds))
    with open(events, "a") as f:
        f.write("holder released\\n")
"""
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"

Hold = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def events(tmp_path: Path) -> Path:
    """The file where processes append what they did, in the order they did it."""
    return tmp_path / "events"


@pytest.fixture
def hold(store_url: str, events: Path) -> Iterator[Hold]:
    """Start a process that holds production/container/<name> for some seconds."""
    started: list[subprocess.Popen[str]] = []

    def start(name: str = "web", seconds: float = 120) -> subprocess.Popen[str]:
        args = [sys.executable, "-c", HOLDER, store_url, name, str(events), str(seconds)]
        process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout is not None and process.stdout.readline() == "locked\n"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_second_process_waits_for_the_holder_and_is_told_who(
    store: StateStore, hold: Hold, events: Path
) -> None:
    holder = hold(seconds=2.5)
    told: list[str] = []
    with (
        store.lock("production", "container", "web", timeout=30, on_wait=told.append),
        events.open("a") as f,
    ):
        f.write("waiter acquired\n")
    assert events.read_text().splitlines() == [
        "holder acquired",
        "holder released",
        "waiter acquired",
    ]
    assert holder.wait(timeout=10) == 0
    assert len(told) == 1
    assert re.fullmatch(
        rf"waiting for the lock on production/container/web held by bojdeploy pid {holder.pid}"
        rf" on host {re.escape(socket.gethostname())} since {STAMP}",
        told[0],
    )


def test_other_targets_are_not_blocked(store: StateStore, hold: Hold) -> None:
    hold("web")
    with store.lock("production", "container", "api", timeout=1):
        pass
    with store.lock("production", "service", "web", timeout=1):
        pass
    with store.lock("staging", "container", "web", timeout=1):
        pass


def test_timeout_names_the_holder(store: StateStore, hold: Hold) -> None:
    holder = hold("web")
    with (
        pytest.raises(LockTimeout) as caught,
        store.lock("production", "container", "web", timeout=0.5),
    ):
        pytest.fail("took a lock another process holds")
    assert re.fullmatch(
        rf"production/container/web is locked by bojdeploy pid {holder.pid}"
        rf" on host {re.escape(socket.gethostname())} since {STAMP}; waited 0.5s",
        str(caught.value),
    )


def test_a_killed_holder_releases_the_lock(store: StateStore, hold: Hold) -> None:
    holder = hold("web")
    holder.kill()
    holder.wait()
    with store.lock("production", "container", "web", timeout=5):
        pass


def test_the_same_process_cannot_take_a_held_lock_twice(store: StateStore) -> None:
    with (
        store.lock("production", "vm", "db", holder="deploy of 1a2b3c by alice"),
        pytest.raises(LockTimeout, match="locked by deploy of 1a2b3c by alice since"),
        store.lock("production", "vm", "db", timeout=0.2),
    ):
        pytest.fail("took a lock this process already holds")
    with store.lock("production", "vm", "db", timeout=0):
        pass

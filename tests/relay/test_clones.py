"""The relay's clone cache on one machine: a clone locked by a stuck process is given up on."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bojdeploy.errors import BojdeployError, UsageError
from bojdeploy.frontends.relay.clones import Clones, git_timeout
from tests.relay import Relay, push_payload, wait_for

ZERO = "0" * 40


def test_a_clone_locked_too_long_by_another_process_is_an_error_naming_the_setting(
    tmp_path: Path,
) -> None:
    clones = Clones(tmp_path / "clones", timeout=1)
    url = f"file://{tmp_path}/origin"
    (tmp_path / "clones").mkdir()
    with open(clones.mirror(url).path.with_suffix(".lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # (flock locks are per open file: as another process)
        with pytest.raises(BojdeployError) as caught:
            clones.fetch(url, "1" * 40)
    assert str(caught.value) == (
        f"the clone of {url} stayed locked by another process for 1s "
        "(BOJDEPLOY_RELAY_GIT_TIMEOUT): is a fetch stuck?"
    )


def test_the_git_timeout_setting() -> None:
    assert git_timeout({}) == 300
    assert git_timeout({"BOJDEPLOY_RELAY_GIT_TIMEOUT": "20"}) == 20
    for bad in ("soon", "0"):
        with pytest.raises(UsageError, match="BOJDEPLOY_RELAY_GIT_TIMEOUT must be"):
            git_timeout({"BOJDEPLOY_RELAY_GIT_TIMEOUT": bad})


@pytest.fixture
def stalled() -> Iterator[tuple[str, list[socket.socket]]]:
    """An http base URL whose server takes connections and never answers; the connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    taken: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                taken.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", taken
    server.close()
    for conn in taken:
        conn.close()


@pytest.mark.postgres
def test_jobs_stuck_in_git_leave_the_api_answering(
    tmp_path: Path,
    postgres_database: str,
    relays: list[Relay],
    stalled: tuple[str, list[socket.socket]],
) -> None:
    base, taken = stalled
    stuck = min(32, (os.cpu_count() or 1) + 4)  # the threads asyncio lends by default
    relay = Relay(tmp_path, postgres_database, BOJDEPLOY_RELAY_GIT_TIMEOUT="600")
    relays.append(relay.start(workers=stuck))
    for i in range(stuck):
        relay.push(push_payload(f"infra/r{i}", f"{base}/infra/r{i}.git", ZERO, "1" * 40))
    wait_for("every job to be stuck in git fetch", lambda: len(taken) >= stuck, timeout=60)
    assert relay.get("/api/v1/deployments")["items"] == []


def test_work_trees_of_dead_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(origin)], check=True)
    (origin / "a.txt").write_text("a\n")
    subprocess.run(["git", "-C", str(origin), "add", "-A"], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(origin),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "a",
        ],
        check=True,
    )
    sha = subprocess.run(
        ["git", "-C", str(origin), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    clones = Clones(tmp_path / "clones")
    dead = tmp_path / "clones" / "checkout-dead1234"  # a process killed mid-deploy left it
    with clones.checkout(f"file://{origin}", sha) as live:
        dead.mkdir()
        (dead / "a.txt").write_text("a\n")
        (tmp_path / "clones" / "checkout-dead1234.lock").write_text("")
        assert clones.clean() == 1
        assert not dead.exists() and (live / "a.txt").exists()
    assert not live.exists()
    assert sorted(p.name for p in (tmp_path / "clones").iterdir() if "checkout" in p.name) == []

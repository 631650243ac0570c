"""The relay's clone cache on one machine: a clone locked by a stuck process is given up on."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest

from bojdeploy.errors import BojdeployError, UsageError
from bojdeploy.frontends.relay.clones import Clones, git_timeout
from tests.helpers import GIT, stalling_server
from tests.relay import ZERO, Relay, push_payload, wait_for


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


@pytest.mark.postgres
def test_jobs_stuck_in_git_leave_the_api_answering(
    tmp_path: Path, postgres_database: str, relays: list[Relay]
) -> None:
    stuck = min(32, (os.cpu_count() or 1) + 4)  # the threads asyncio lends by default
    relay = Relay(tmp_path, postgres_database, BOJDEPLOY_RELAY_GIT_TIMEOUT="600")
    relays.append(relay.start(workers=stuck))
    with stalling_server() as (base, taken):
        for i in range(stuck):
            relay.push(push_payload(f"infra/r{i}", f"{base}/infra/r{i}.git", ZERO, "1" * 40))
        wait_for("every job to be stuck in git fetch", lambda: len(taken) >= stuck, timeout=60)
        assert relay.get("/api/v1/deployments")["items"] == []


def test_work_trees_of_dead_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    subprocess.run([*GIT, "init", "-q", "-b", "main", str(origin)], check=True)
    (origin / "a.txt").write_text("a\n")
    subprocess.run([*GIT, "-C", str(origin), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(origin), "commit", "-qm", "a"], check=True)
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

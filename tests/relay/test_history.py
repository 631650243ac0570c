"""The order of the pushes a deploy took, read from a real git history (order.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bojdeploy.engine.gitrepo import Mirror
from bojdeploy.frontends.relay.deliveries import Delivery
from bojdeploy.frontends.relay.order import arrange


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def commit(repo: Path, text: str) -> str:
    (repo / "a.txt").write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", text)
    return git(repo, "rev-parse", "HEAD")


def push(row: int, sha: str) -> Delivery:
    return Delivery(row, None, "o/r", "main", None, sha, "x", None, "production", "deploying",
                    None, 1, 9)  # fmt: skip


def test_pushes_are_ordered_by_history_not_arrival(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    c1 = commit(origin, "1")
    c2 = commit(origin, "2")
    c3 = commit(origin, "3")
    git(origin, "checkout", "-q", "-b", "forced", c1)
    f4 = commit(origin, "forced 4")  # a force push: c1 -> f4, c2 and c3 dropped
    mirror = Mirror(tmp_path / "cache.git", f"file://{origin}")
    mirror.fetch(f4)
    mirror.fetch(c3)

    p3, p1, p2 = push(1, c3), push(2, c1), push(3, c2)  # as received
    order = arrange(mirror, [p3, p1, p2], None)
    assert order.newest == p3 and order.covered == [p1, p2] and not order.replaced

    order = arrange(mirror, [p3, p1, p2], c2)  # c1 and c2 are deployed already
    assert (order.newest, order.covered, order.superseded) == (p3, [], [p1, p2])

    order = arrange(mirror, [p1, p2], c3)  # nothing newer than what is deployed
    assert order.newest is None and order.superseded == [p1, p2]

    p4 = push(4, f4)
    order = arrange(mirror, [p2, p4], c1)  # diverged: the newest received wins
    assert (order.newest, order.covered, order.replaced) == (p4, [], [p2])

    order = arrange(mirror, [p3], "5" * 40)  # a last deployed commit the clone does not have
    assert order.newest == p3 and not order.superseded

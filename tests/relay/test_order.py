"""Pushes deployed in the order of their history, not of their arrival: a late or redelivered
push of an older commit never rolls the environment back (real relay, Docker, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.action import DeployRepo
from tests.relay import ZERO, FakeGitea, Relay, rows, settled, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.postgres]


def image(docker_client: Any, name: str) -> str:
    web = docker_client.containers.get(name)
    assert web.status == "running"
    return str(web.image.tags[0]).rpartition("/")[2]


def overall(gitea: FakeGitea, sha: str) -> dict[str, Any]:
    """The last `bojdeploy/production` status of a commit."""
    found = [s for s in gitea.statuses.get(sha, []) if s["context"] == "bojdeploy/production"]
    return found[-1]


def test_an_older_commit_received_last_never_rolls_back(
    postgres_database: str,
    gitea: FakeGitea,
    start_relay: Callable[..., Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    db = postgres_database
    relay = start_relay(workers=0)  # HTTP only: the worker below runs the jobs
    repo.write("web")
    c1 = repo.commit("web:1")
    repo.write("web", image="web:2")
    c2 = repo.commit("web:2")
    # c2 arrives first, c1 (a push that once got 503, redelivered) after it: one deploy takes both
    relay.push_commits(repo.root, c1, c2)
    relay.push_commits(repo.root, ZERO, c1, delivery="c1-first")
    with relay.running("worker", "--concurrency", "1"):
        assert wait_for("c2 to deploy", lambda: settled(db, c2)) == "deployed"
        assert settled(db, c1) == "deployed"  # covered by c2's deploy
        covered = "SELECT reason FROM relay_deliveries WHERE after_sha = %s"
        assert rows(db, covered, (c1,))[0][0].startswith(f"covered by {c2[:7]}: ")
        name = repo.name("web")
        assert image(docker_client, name) == "web:2"
        assert overall(gitea, c1)["description"].startswith(f"deployed with {c2[:7]}")

        # c1 redelivered once more, after c2 is deployed: superseded, nothing deployed
        before = rows(db, "SELECT count(*) FROM deployments WHERE name = %s", (name,))
        relay.push_commits(repo.root, ZERO, c1, delivery="c1-again")
        assert wait_for("c1 to settle", lambda: settled(db, "c1-again", "delivery")) == "superseded"
        assert rows(db, "SELECT count(*) FROM deployments WHERE name = %s", (name,)) == before
        assert image(docker_client, name) == "web:2"
        last = overall(gitea, c1)
        assert last["status"] == "success"
        assert last["description"] == (
            f"already deployed: {c2[:7]}, which contains it, is deployed"
        )
        (reason,) = rows(db, "SELECT reason FROM relay_deliveries WHERE delivery = 'c1-again'")
        assert reason == (last["description"],)

        # a force push (c3 on top of c1, c2 dropped): the new history is deployed
        repo.git("reset", "-q", "--hard", c1)
        repo.write("web", image="web:1", mode="two")
        c3 = repo.commit("web:1, mode two")
        relay.push_commits(repo.root, c2, c3)
        assert wait_for("c3 to deploy", lambda: settled(db, c3)) == "deployed"
        assert image(docker_client, name) == "web:1"
        assert overall(gitea, c3)["status"] == "success"

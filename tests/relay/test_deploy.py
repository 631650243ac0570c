"""Signed pushes deployed by a real relay process: real Docker, PostgreSQL and the fake Gitea."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store.postgres import PostgresStore
from tests.action import DeployRepo
from tests.relay import FakeGitea, Relay, push_payload, rows, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.postgres]
REPO = "infra/deployments"
ZERO = "0" * 40


@pytest.fixture
def repo(tmp_path: Path, test_images: dict[str, str], docker_cleanup: None) -> DeployRepo:
    """The deployment repository the pushes come from (cloned by the relay over file://)."""
    return DeployRepo(tmp_path / "origin", uuid.uuid4().hex[:8])


def settled(relay: Relay, sha: str) -> str | None:
    """The final status of the push of `sha` (deployed, failed, ignored), once it has one."""
    found = rows(
        relay.database_url, "SELECT status FROM relay_deliveries WHERE after_sha = %s", (sha,)
    )
    final = [s for (s,) in found if s in ("deployed", "failed", "ignored")]
    return final[0] if final else None


def push(relay: Relay, repo: DeployRepo, before: str, after: str) -> dict[str, Any]:
    return relay.push(push_payload(REPO, f"file://{repo.root}", before, after))


def test_signed_push_deploys_the_changed_container(
    tmp_path: Path,
    postgres_database: str,
    gitea: FakeGitea,
    relays: list[Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    relay = Relay(tmp_path, postgres_database, gitea)
    relays.append(relay.start(workers=2))
    repo.write("web")
    repo.write("api")
    first = repo.commit("two containers")
    push(relay, repo, ZERO, first)
    assert wait_for("the first push to deploy", lambda: settled(relay, first)) == "deployed"
    repo.write("web", image="web:2")
    second = repo.commit("web:2")
    answer = push(relay, repo, first, second)
    assert wait_for("the second push to deploy", lambda: settled(relay, second)) == "deployed"

    web = docker_client.containers.get(repo.name("web"))
    assert web.status == "running" and web.image.tags[0].endswith("web:2")
    changed = rows(
        postgres_database,
        "SELECT name, status FROM deployments WHERE git_commit = %s ORDER BY id",
        (second,),
    )
    assert changed == [(repo.name("web"), "completed")]  # api did not change: not touched

    seen: dict[str, list[dict[str, Any]]] = {}
    for status in gitea.statuses[second]:
        seen.setdefault(status["context"], []).append(status)
    overall, own = seen["bojdeploy/production"], seen[f"bojdeploy/production/{repo.name('web')}"]
    assert [s["status"] for s in overall] == ["pending", "success"]
    assert [s["status"] for s in own] == ["pending", "success"]
    assert set(seen) == {"bojdeploy/production", f"bojdeploy/production/{repo.name('web')}"}
    assert gitea.problems == []
    page = own[-1]["target_url"].removeprefix(relay.url)
    assert page.startswith("/deployments/")
    deployment = relay.get(page)
    assert (deployment["name"], deployment["git_commit"]) == (repo.name("web"), second)
    job = relay.get(f"/jobs/{answer['job_id']}")
    assert job["pushes"][0]["after_sha"] == second


def test_pushes_during_a_deploy_make_one_more_deploy_of_the_newest_commit(
    tmp_path: Path,
    postgres_database: str,
    gitea: FakeGitea,
    relays: list[Relay],
    repo: DeployRepo,
) -> None:
    relay = Relay(tmp_path, postgres_database, gitea)
    relays.append(relay.start(workers=3))
    for key in ("a", "b", "c"):
        repo.write(key)
    first = repo.commit("a, b and c")
    store = PostgresStore(postgres_database)
    with store.lock("production", "container", repo.name("a"), holder="the test"):
        push(relay, repo, ZERO, first)  # its deploy waits for container a's lock
        db = postgres_database
        wait_for(
            "the first deploy to run",
            lambda: rows(db, "SELECT 1 FROM relay_deliveries WHERE status = 'deploying'"),
        )
        shas, before = [], first
        for change in ("b", "c", "d", "b2", "readme"):
            if change == "readme":
                (repo.root / "README.md").write_text("docs\n")
            else:
                repo.write(change[0], mode=f"mode-{change}")
            sha = repo.commit(change)
            push(relay, repo, before, sha)
            shas.append(sha)
            before = sha
        wait_for(
            "the five pushes to wait for a deploy",
            lambda: len(rows(db, "SELECT 1 FROM relay_deliveries WHERE status = 'routed'")) == 5,
        )
    store.close()
    for sha in (first, *shas):
        assert wait_for(f"push {sha[:7]} to settle", lambda s=sha: settled(relay, s)) == "deployed"

    deployed = rows(
        postgres_database,
        "SELECT git_commit, name, status FROM deployments ORDER BY git_commit, name",
    )
    newest = shas[-1]
    assert {(c, n) for c, n, _ in deployed} == {
        *((first, repo.name(k)) for k in "abc"),
        *((newest, repo.name(k)) for k in "bcd"),
    }
    assert {s for _, _, s in deployed} == {"completed"}
    jobs = rows(
        postgres_database,
        "SELECT DISTINCT deploy_job_id FROM relay_deliveries WHERE deploy_job_id IS NOT NULL",
    )
    assert len(jobs) == 2
    assert [
        s["status"] for s in gitea.statuses[newest] if s["context"] == "bojdeploy/production"
    ] == [
        "pending",
        "success",
    ]

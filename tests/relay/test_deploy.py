"""Signed pushes deployed by a real relay process: real Docker, PostgreSQL and the fake Gitea."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bojdeploy.store.postgres import PostgresStore
from tests.action import DeployRepo
from tests.relay import ZERO, FakeGitea, Relay, deployed, rows, settled, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.postgres]


def test_signed_push_deploys_the_changed_container(
    postgres_database: str,
    gitea: FakeGitea,
    start_relay: Callable[..., Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    relay = start_relay(workers=2)
    repo.write("web")
    repo.write("api")
    first = repo.commit("two containers")
    deployed(relay, repo.root, ZERO, first)
    repo.write("web", image="web:2")
    second = repo.commit("web:2")
    answer = deployed(relay, repo.root, first, second)

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
    postgres_database: str,
    gitea: FakeGitea,
    start_relay: Callable[..., Relay],
    repo: DeployRepo,
) -> None:
    relay = start_relay(workers=3)
    for key in ("a", "b", "c"):
        repo.write(key)
    first = repo.commit("a, b and c")
    store = PostgresStore(postgres_database)
    with store.lock("production", "container", repo.name("a"), holder="the test"):
        relay.push_commits(repo.root, ZERO, first)  # its deploy waits for container a's lock
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
            relay.push_commits(repo.root, before, sha)
            shas.append(sha)
            before = sha
        wait_for(
            "the five pushes to wait for a deploy",
            lambda: len(rows(db, "SELECT 1 FROM relay_deliveries WHERE status = 'routed'")) == 5,
        )
    store.close()
    for sha in (first, *shas):
        assert wait_for(f"push {sha[:7]} to settle", lambda s=sha: settled(db, s)) == "deployed"

    recorded = rows(
        postgres_database,
        "SELECT git_commit, name, status FROM deployments ORDER BY git_commit, name",
    )
    newest = shas[-1]
    assert {(c, n) for c, n, _ in recorded} == {
        *((first, repo.name(k)) for k in "abc"),
        *((newest, repo.name(k)) for k in "bcd"),
    }
    assert {s for _, _, s in recorded} == {"completed"}
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

"""The relay under faults, as real processes: a worker killed mid-deploy, the database out of
reach (through a TCP proxy that is cut; the database itself keeps running), a push whose
repository cannot be fetched."""

from __future__ import annotations

import json
import threading
import urllib.error
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bojdeploy.frontends.relay.signature import sign
from bojdeploy.store.base import INTERRUPTED
from tests.action import DeployRepo
from tests.faults.harness import Killed, kill_when
from tests.faults.proxy import proxied
from tests.relay import (
    REPO,
    SECRET,
    ZERO,
    FakeGitea,
    Relay,
    deployed,
    push_payload,
    rows,
    settled,
    wait_for,
)


def killed_mid_deploy(tmp_path: Path, relay: Relay, repo: DeployRepo) -> tuple[str, str]:
    """Deploy web:1 with a worker, then push web:2 and kill the worker deploying it; both shas."""
    repo.write("web")
    first = repo.commit("web:1")
    with relay.running("worker"):
        deployed(relay, repo.root, ZERO, first)

    repo.write("web", image="web:2")
    second = repo.commit("web:2")
    killed: list[Killed] = []
    doomed = threading.Thread(
        target=lambda: killed.append(
            kill_when(
                ["worker"],
                r"waiting up to \S+ for \S+ to become healthy",
                cwd=tmp_path,
                env=relay.env,
                delay=0.2,
            )
        )
    )
    doomed.start()
    relay.push_commits(repo.root, first, second)
    doomed.join(timeout=150)
    assert killed and killed[0].killed, killed[0].text if killed else "the worker never started"
    return first, second


@pytest.mark.docker
@pytest.mark.postgres
def test_a_worker_killed_mid_deploy_leaves_the_job_to_another(
    tmp_path: Path,
    postgres_database: str,
    gitea: FakeGitea,
    start_relay: Callable[..., Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    db = postgres_database
    # HTTP only: the workers below run the jobs
    relay = start_relay(workers=0, BOJDEPLOY_RELAY_STALLED_AFTER="3")
    first, second = killed_mid_deploy(tmp_path, relay, repo)
    name = repo.name("web")
    interrupted = rows(
        db, "SELECT id, status FROM deployments WHERE name = %s AND git_commit = %s", (name, second)
    )
    assert [status for _, status in interrupted] == ["running"]

    with relay.running("worker"):
        assert wait_for("web:2 to deploy", lambda: settled(db, second), timeout=90) == "deployed"

    recorded = rows(
        db,
        "SELECT id, status, error_message FROM deployments WHERE name = %s AND git_commit = %s "
        "ORDER BY id",
        (name, second),
    )
    assert recorded[0] == (interrupted[0][0], "failed", INTERRUPTED)
    assert [status for _, status, _ in recorded[1:]] == ["completed"]
    (job,) = rows(db, "SELECT deploy_job_id FROM relay_deliveries WHERE after_sha = %s", (second,))
    events = [t for (t,) in rows(db, _EVENTS, (job[0],))]
    assert events.count("started") == 2  # the same job, run again by the other worker
    assert events[-1] == "succeeded"

    same = docker_client.containers.list(all=True, filters={"name": name})
    assert [c.name for c in same] == [name]  # nothing left half-built (no .previous)
    web = same[0]
    assert web.status == "running" and web.image.tags[0].endswith("web:2")
    statuses = [s for s in gitea.statuses[second] if s["context"] == "bojdeploy/production"]
    assert statuses[-1]["status"] == "success"


@pytest.mark.docker
@pytest.mark.postgres
def test_a_push_waiting_behind_a_killed_deploy_of_its_pair_deploys(
    tmp_path: Path,
    postgres_database: str,
    start_relay: Callable[..., Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    db = postgres_database
    relay = start_relay(workers=0, BOJDEPLOY_RELAY_STALLED_AFTER="3")
    first, second = killed_mid_deploy(tmp_path, relay, repo)
    (killed_job,) = rows(
        db, "SELECT deploy_job_id FROM relay_deliveries WHERE after_sha = %s", (second,)
    )

    repo.write("api")
    third = repo.commit("api")
    relay.push_commits(repo.root, second, third)
    # a worker that recovers nothing routes it: its deploy waits behind the killed one's lock
    with relay.running("worker", env={"BOJDEPLOY_RELAY_STALLED_AFTER": "600"}):
        wait_for("the third push to be routed", lambda: rows(db, _ROUTED, (third,)))

    with relay.running("worker"):
        assert wait_for("api to deploy", lambda: settled(db, third), timeout=90) == "deployed"
    assert settled(db, second) == "deployed"  # taken over by the waiting deploy
    (status,) = rows(db, "SELECT status::text FROM procrastinate_jobs WHERE id = %s", killed_job)
    assert status == ("failed",)
    web = docker_client.containers.get(repo.name("web"))
    assert web.status == "running" and web.image.tags[0].endswith("web:2")
    assert docker_client.containers.get(repo.name("api")).status == "running"
    assert "takes over its pushes" in relay.log.read_text()


_ROUTED = (
    "SELECT 1 FROM relay_deliveries d JOIN procrastinate_jobs j ON j.queueing_lock = "
    "'deploy:' || d.repository || ':' || d.environment AND j.status = 'todo' "
    "WHERE d.after_sha = %s AND d.status = 'routed'"
)


_EVENTS = "SELECT type FROM procrastinate_events WHERE job_id = %s ORDER BY at, id"


@pytest.mark.docker
@pytest.mark.postgres
def test_the_database_out_of_reach_gets_503_and_stores_nothing_then_redelivery_deploys(
    postgres_database: str,
    start_relay: Callable[..., Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    db = postgres_database
    address = urlsplit(db)
    with proxied((address.hostname or "127.0.0.1", address.port or 5432)) as proxy:
        through = address._replace(netloc=f"{address.username}:{address.password}@{proxy.address}")
        relay = start_relay(workers=1, database_url=through.geturl())
        repo.write("web")
        sha = repo.commit("web")
        body = json.dumps(push_payload(REPO, f"file://{repo.root}", ZERO, sha)).encode()
        signature = sign(SECRET.encode(), body)

        proxy.cut()
        for delivery in ("first-try", "second-try"):
            status, answer = relay.post(body, signature=signature, delivery=delivery)
            assert status == 503, answer
        assert rows(db, "SELECT 1 FROM relay_deliveries") == []
        pushes = "SELECT 1 FROM procrastinate_jobs WHERE task_name = 'bojdeploy:route_push'"
        assert rows(db, pushes) == []  # (periodic tasks the worker deferred at start may be there)

        proxy.restore()
        answers = []  # Gitea's "redeliver": until the relay takes it (a pooled connection the
        # cut closed may fail one more delivery)

        def redelivered() -> bool:
            answers.append(relay.post(body, signature=signature, delivery="first-try"))
            return answers[-1][0] == 202

        wait_for("a redelivery to be taken", redelivered, timeout=60)
        assert {status for status, _ in answers} <= {202, 503}
        assert wait_for("the redelivered push to deploy", lambda: settled(db, sha)) == "deployed"

    assert rows(db, "SELECT delivery, status FROM relay_deliveries") == [("first-try", "deployed")]
    assert (
        len(rows(db, "SELECT 1 FROM procrastinate_jobs WHERE task_name = 'bojdeploy:route_push'"))
        == 1
    )
    assert docker_client.containers.get(repo.name("web")).status == "running"


@pytest.mark.postgres
def test_a_push_that_cannot_be_routed_is_recorded_failed_with_an_error_status(
    tmp_path: Path, postgres_database: str, gitea: FakeGitea, start_relay: Callable[..., Relay]
) -> None:
    relay = start_relay(workers=1)
    sha = "5" * 40
    relay.push_commits(tmp_path / "no-such-repository", ZERO, sha)

    failed = wait_for(
        "the push to be given up",
        lambda: rows(
            postgres_database,
            "SELECT status, reason FROM relay_deliveries WHERE status = 'failed'",
        ),
        timeout=90,
    )
    ((status, reason),) = failed
    assert "could not route the push after 4 attempts" in reason
    assert "git fetch" in reason and "no-such-repository" in reason
    wait_for("the error status", lambda: gitea.statuses.get(sha))
    (seen,) = gitea.statuses[sha]
    assert (seen["context"], seen["status"]) == ("bojdeploy", "error")
    assert seen["description"].startswith("not deployed: could not route the push")
    assert seen["target_url"].startswith(f"{relay.url}/jobs/")


@pytest.mark.postgres
def test_a_push_with_an_invalid_config_fails_with_an_error_status_naming_the_line(
    tmp_path: Path, postgres_database: str, gitea: FakeGitea, start_relay: Callable[..., Relay]
) -> None:
    relay = start_relay(workers=1)
    repo = DeployRepo(tmp_path / "origin", uuid.uuid4().hex[:8])
    (repo.root / "bojdeploy.yaml").write_text("environments:\n  production: {branches: 7}\n")
    sha = repo.commit("a broken bojdeploy.yaml")
    relay.push_commits(repo.root, ZERO, sha)

    found = wait_for("the push to fail", lambda: rows(postgres_database, _FAILED), timeout=90)
    ((reason,),) = found
    assert reason.startswith(f"bojdeploy.yaml at {sha[:7]} is invalid: bojdeploy.yaml:2")
    assert "environments.production.branches" in reason
    wait_for("the error status", lambda: gitea.statuses.get(sha))
    (seen,) = gitea.statuses[sha]
    assert (seen["context"], seen["status"]) == ("bojdeploy", "error")
    assert seen["description"].startswith(f"not deployed: bojdeploy.yaml at {sha[:7]} is invalid")


_FAILED = "SELECT reason FROM relay_deliveries WHERE status = 'failed'"


@pytest.mark.postgres
def test_reads_while_the_database_is_out_of_reach_get_503_in_one_line(
    tmp_path: Path, postgres_database: str, relays: list[Relay]
) -> None:
    address = urlsplit(postgres_database)
    with proxied((address.hostname or "127.0.0.1", address.port or 5432)) as proxy:
        through = address._replace(netloc=f"{address.username}:{address.password}@{proxy.address}")
        relay = Relay(tmp_path, through.geturl())
        relays.append(relay.start(workers=0))
        assert relay.get("/api/v1/deployments")["items"] == []
        proxy.cut()
        for path in ("/api/v1/deployments", "/api/v1/deployments/1", "/api/v1/jobs/1"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                relay.get(path)
            answer = (caught.value.code, json.loads(caught.value.read()))
            assert answer == (503, {"detail": "the database is unreachable; try again later"})
    assert "Traceback" not in relay.log.read_text()

"""The relay's drift watch on real processes: real Docker, PostgreSQL and the fake Gitea.

A container stopped by hand (docker SDK) shows as drifted in /metrics and in the store within a
watch period; with `self_heal: true` it runs again, recorded as a "drift" deployment."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import DriftState, open_store
from tests.action import DeployRepo
from tests.relay import FakeGitea, Relay, push_payload, rows, wait_for
from tests.relay.test_metrics import promtool_problems, scrape

pytestmark = [pytest.mark.docker, pytest.mark.postgres]
REPO = "infra/deployments"
ZERO = "0" * 40
INTERVAL = "2s"


@pytest.fixture
def repo(tmp_path: Path, test_images: dict[str, str], docker_cleanup: None) -> DeployRepo:
    """The deployment repository the pushes come from (cloned by the relay over file://)."""
    return DeployRepo(tmp_path / "origin", uuid.uuid4().hex[:8])


def deploy_web(relay: Relay, repo: DeployRepo, config: str = "") -> str:
    """Push a commit with one container; its sha once the relay deployed it."""
    yaml = (repo.root / "bojdeploy.yaml").read_text()
    (repo.root / "bojdeploy.yaml").write_text(yaml + config)
    repo.write("web")
    sha = repo.commit("web")
    relay.push(push_payload(REPO, f"file://{repo.root}", ZERO, sha))
    query = "SELECT status FROM relay_deliveries WHERE after_sha = %s AND status = 'deployed'"
    wait_for("the push to deploy", lambda: rows(relay.database_url, query, (sha,)))
    return sha


def drift_of(url: str, name: str) -> DriftState | None:
    """The stored drift observation of container `name` in production."""
    with open_store(url) as store:
        found = [s for s in store.drift_states("production") if s.name == name]
    return found[0] if found else None


def metric(relay: Relay, name: str) -> str | None:
    """The value of bojdeploy_drift for container `name` on /metrics, if it is there."""
    text = scrape(relay.url)
    series = f'bojdeploy_drift{{environment="production",kind="container",name="{name}"}} '
    found = [line.removeprefix(series) for line in text.splitlines() if line.startswith(series)]
    return found[0] if found else None


def test_a_stopped_container_shows_as_drifted_and_stays_stopped_without_self_heal(
    tmp_path: Path,
    postgres_database: str,
    gitea: FakeGitea,
    relays: list[Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    relay = Relay(
        tmp_path,
        postgres_database,
        gitea,
        BOJDEPLOY_DRIFT_INTERVAL=INTERVAL,
        BOJDEPLOY_DRIFT_STATUS="true",
    )
    relays.append(relay.start(workers=2))
    sha = deploy_web(relay, repo)
    web = repo.name("web")
    wait_for("the watch to see web in sync", lambda: metric(relay, web) == "0.0")

    docker_client.containers.get(web).stop(timeout=1)
    wait_for("/metrics to show web drifted", lambda: metric(relay, web) == "1.0")
    seen = drift_of(postgres_database, web)
    assert seen is not None and seen.drifted and seen.state == "stopped", seen
    assert (seen.kind, seen.repository) == ("container", REPO)
    assert promtool_problems(scrape(relay.url)) == ""

    later = lambda: (s := drift_of(postgres_database, web)) and s.checked_at > seen.checked_at  # noqa: E731
    wait_for("a later check", later)
    assert docker_client.containers.get(web).status == "exited"  # reported, not re-applied
    reasons = rows(postgres_database, "SELECT reason FROM deployments WHERE name = %s", (web,))
    assert not [r for (r,) in reasons if (r or "").startswith("drift")]

    drift = [s for s in gitea.statuses[sha] if s["context"] == "bojdeploy/production:drift"]
    assert [s["status"] for s in drift] == ["success", "failure"]  # set when the drift changed
    assert f"{web} stopped" in drift[-1]["description"]


def test_self_heal_starts_a_stopped_container_again_as_a_drift_deployment(
    tmp_path: Path,
    postgres_database: str,
    gitea: FakeGitea,
    relays: list[Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    relay = Relay(tmp_path, postgres_database, gitea, BOJDEPLOY_DRIFT_INTERVAL=INTERVAL)
    relays.append(relay.start(workers=2))
    deploy_web(relay, repo, config="self_heal: true\n")
    web = repo.name("web")
    wait_for("the watch to see web in sync", lambda: metric(relay, web) == "0.0")
    first = docker_client.containers.get(web)
    first.stop(timeout=1)

    def healed() -> list[tuple[Any, ...]]:
        return rows(
            postgres_database,
            "SELECT status, reason FROM deployments WHERE name = %s AND reason LIKE 'drift%%'"
            " AND status IN ('completed', 'failed')",
            (web,),
        )

    [(status, reason)] = wait_for("the drift deployment", healed)
    assert status == "completed", reason
    assert docker_client.containers.get(web).status == "running"
    wait_for("the watch to see web in sync again", lambda: metric(relay, web) == "0.0")
    seen = drift_of(postgres_database, web)
    assert seen is not None and not seen.drifted and seen.state == "in sync"
    assert gitea.problems == []

"""The relay's drift watch on real processes: real Docker, PostgreSQL and the fake Gitea.

A container stopped by hand (docker SDK) shows as drifted in /metrics and in the store within a
watch period; with `self_heal: true` it runs again, recorded as a "drift" deployment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bojdeploy.store import DriftState, open_store
from tests.action import DeployRepo
from tests.relay import REPO, ZERO, FakeGitea, Relay, deployed, rows, wait_for
from tests.relay.test_metrics import promtool_problems, scrape

pytestmark = [pytest.mark.docker, pytest.mark.postgres]
INTERVAL = "2s"


def deploy_web(relay: Relay, repo: DeployRepo, config: str = "") -> str:
    """Push a commit with one container; its sha once the relay deployed it."""
    yaml = (repo.root / "bojdeploy.yaml").read_text()
    (repo.root / "bojdeploy.yaml").write_text(yaml + config)
    repo.write("web")
    sha = repo.commit("web")
    deployed(relay, repo.root, ZERO, sha)
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
    postgres_database: str,
    gitea: FakeGitea,
    start_relay: Callable[..., Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    relay = start_relay(BOJDEPLOY_DRIFT_INTERVAL=INTERVAL, BOJDEPLOY_DRIFT_STATUS="true")
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
    postgres_database: str,
    gitea: FakeGitea,
    start_relay: Callable[..., Relay],
    repo: DeployRepo,
    docker_client: Any,
) -> None:
    relay = start_relay(BOJDEPLOY_DRIFT_INTERVAL=INTERVAL)
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

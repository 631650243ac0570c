"""`bojdeploy plan`, `apply`, `rollback`, `status` and `--prune` for Swarm services, end to end."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from tests.helpers import git_identity, run_cli

REGISTRY = "127.0.0.1:5000/bojdeploy-test"
SECRET = "swarm-session-secret-77"
NOWHERE = "node.labels.bojdeploy-test-nowhere==true"


class SwarmApp:
    """A deployment repository of Service manifests and the database it records into."""

    def __init__(self, root: Path, db_url: str, docker: Any, prefix: str):
        self.root = root
        self.db_url = db_url
        self.docker = docker
        self.prefix = prefix
        self.name = f"{prefix}-web"
        (root / "deploy").mkdir(parents=True)
        (root / "config").mkdir()
        (root / "bojdeploy.yaml").write_text("environments:\n  test: {branches: ['*']}\n")

    def write(
        self,
        name: str | None = None,
        image: str = "web:1",
        replicas: int = 2,
        env: str = "one",
        config: str = "config one",
        extra: str = "",
        timeout: str = "60s",
    ) -> None:
        """Write deploy/<name>.yml (and its config file) for a service of the test images."""
        name = name or self.name
        (self.root / "config" / f"{name}.txt").write_text(config + "\n")
        (self.root / "deploy" / f"{name}.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Service\n"
            f"metadata: {{name: {name}}}\n"
            "spec:\n"
            f"  image: {REGISTRY}/{image}\n"
            f"  replicas: {replicas}\n"
            f"  env: {{MODE: {env}, SESSION: \"{{{{ secret('APP_SESSION') }}}}\"}}\n"
            f"  configs: [{{source: config/{name}.txt, target: /www/config.txt}}]\n"
            "  update: {order: start-first, monitor: 1s, failure_action: rollback}\n"
            "  rollback: {order: start-first, monitor: 1s}\n"
            "  labels: {io.bojdeploy.test: 'true'}\n"
            "  container_labels: {io.bojdeploy.test: 'true'}\n"
            f"  timeout: {timeout}\n" + extra
        )

    def cli(self, *args: str) -> Any:
        return run_cli("--database-url", self.db_url, *args, env={"APP_SESSION": SECRET})

    def apply(self, *extra: str) -> Any:
        return self.cli("apply", "--env", "test", *extra, str(self.root))

    def spec(self, name: str | None = None) -> dict[str, Any]:
        return self.docker.api.inspect_service(name or self.name)["Spec"]  # type: ignore[no-any-return]

    def tasks(self, name: str | None = None) -> dict[str, str]:
        """Running tasks that should run: task id -> the image they run."""
        filters = {"service": name or self.name, "desired-state": "running"}
        return {
            t["ID"]: t["Spec"]["ContainerSpec"]["Image"]
            for t in self.docker.api.tasks(filters=filters)
            if t["Status"]["State"] == "running"
        }

    def served(self, path: str = "/", name: str | None = None) -> list[str]:
        """What every task that should run serves (asked from inside: no ingress here)."""
        filters = {"service": name or self.name, "desired-state": "running"}
        containers = [
            self.docker.containers.get(t["Status"]["ContainerStatus"]["ContainerID"])
            for t in self.docker.api.tasks(filters=filters)
            if t["Status"]["State"] == "running"
        ]
        command = ["wget", "-qO-", f"http://127.0.0.1{path}"]
        return sorted(c.exec_run(command).output.decode().strip() for c in containers)

    def configs(self, name: str | None = None) -> list[str]:
        """Names of the Swarm configs bojdeploy made for the service."""
        label = f"io.bojdeploy.name={name or self.name}"
        return sorted(c["Spec"]["Name"] for c in self.docker.api.configs(filters={"label": label}))

    def rows(self, name: str | None = None) -> list[Any]:
        with open_store(self.db_url) as store:
            return store.list_deployments(name=name or self.name, limit=100)


def digest_of(docker: Any, image: str) -> str:
    return str(docker.api.inspect_distribution(f"{REGISTRY}/{image}")["Descriptor"]["digest"])


def remove_prefixed(docker: Any, prefix: str) -> None:
    """Remove the services, configs and secrets whose names start with `prefix`."""
    from docker.errors import NotFound

    api = docker.api
    for kind in ("service", "config", "secret"):
        for item in getattr(api, f"{kind}s")(filters={"name": prefix}):
            with contextlib.suppress(NotFound):
                getattr(api, f"remove_{kind}")(item["ID"])


@pytest.fixture
def swarm(docker_client: Any, test_images: Any) -> Any:
    """The docker client of an active Swarm manager with the test images in the registry."""
    if docker_client.info()["Swarm"]["LocalNodeState"] != "active":
        reason = "Docker is not a Swarm manager (run scripts/setup-env.sh)"
        pytest.fail(reason) if os.environ.get("CI") == "true" else pytest.skip(reason)
    return docker_client


def _make_app(request: pytest.FixtureRequest, tmp_path: Path, docker: Any, db: str) -> SwarmApp:
    if db == "postgres":
        db_url = request.getfixturevalue("postgres_database")
    else:
        db_url = f"sqlite:///{tmp_path / 'state.db'}"
    return SwarmApp(tmp_path / "repo", db_url, docker, f"bdsvc-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def app(request: pytest.FixtureRequest, tmp_path: Path, swarm: Any) -> Iterator[SwarmApp]:
    """A repository recording into SQLite; its services, configs and secrets removed after."""
    application = _make_app(request, tmp_path, swarm, "sqlite")
    yield application
    remove_prefixed(swarm, application.prefix)


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_app(request: pytest.FixtureRequest, tmp_path: Path, swarm: Any) -> Iterator[SwarmApp]:
    """The same, once on SQLite and once on PostgreSQL."""
    application = _make_app(request, tmp_path, swarm, request.param)
    yield application
    remove_prefixed(swarm, application.prefix)


def test_create_scale_and_update_the_image(any_db_app: SwarmApp) -> None:
    app = any_db_app
    app.write()
    created = app.apply()
    assert created.code == 0, created.out + created.err
    first = app.tasks()
    assert len(first) == 2
    assert app.served() == ["version 1"] * 2
    assert app.served("/config.txt") == ["config one"] * 2

    app.write(replicas=3)
    assert app.apply().code == 0
    scaled = app.tasks()
    assert len(scaled) == 3 and set(first) < set(scaled)

    app.write(replicas=3, image="web:2")
    plan = app.cli("plan", "--env", "test", str(app.root))
    assert "~ update" in plan.out and "spec.image" in plan.out
    updated = app.apply()
    assert updated.code == 0, updated.out + updated.err
    new = f"{REGISTRY}/web:2@{digest_of(app.docker, 'web:2')}"
    assert set(app.tasks().values()) == {new} and len(app.tasks()) == 3
    assert app.served() == ["version 2"] * 3
    rows = app.rows()
    assert [r.status for r in rows[:3]] == ["completed"] * 3
    assert rows[0].config["deployed"]["image"] == new


def test_an_update_swarm_rolls_back_fails_and_keeps_the_old_config(app: SwarmApp) -> None:
    app.write()
    assert app.apply().code == 0
    old_image = app.spec()["TaskTemplate"]["ContainerSpec"]["Image"]
    old_configs = app.configs()

    app.write(image="crash:1", config="config two")
    result = app.apply()

    assert result.code == 1
    assert "rolled the update of service" in result.out + result.err
    assert app.spec()["TaskTemplate"]["ContainerSpec"]["Image"] == old_image
    assert set(app.tasks().values()) == {old_image}
    assert app.served("/config.txt") == ["config one"] * 2
    row = app.rows()[0]
    assert row.status == "failed"
    assert row.error_message and "rolled" in row.error_message and "back" in row.error_message
    assert "non-zero exit" in row.error_message
    assert app.configs() == old_configs  # the failed update's config is removed again
    assert "removed unused config" in result.out + result.err


def test_configs_left_by_an_interrupted_update_are_removed_by_the_next_apply(
    app: SwarmApp,
) -> None:
    from bojdeploy.drivers.service_spec import owner_labels

    app.write(replicas=1)
    assert app.apply().code == 0
    used, tasks = app.configs(), app.tasks()
    left = f"{app.name}-{app.name}.txt-0123456789"
    app.docker.api.create_config(left, b"config two", labels=owner_labels(app.name, "test"))

    plan = app.cli("plan", "--env", "test", str(app.root))
    assert "~ update" in plan.out and f"config {left} left by an interrupted" in plan.out
    cleaned = app.apply()

    assert cleaned.code == 0, cleaned.out + cleaned.err
    assert f"removed leftover config {left}" in cleaned.out + cleaned.err
    assert app.configs() == used and app.tasks() == tasks
    assert app.rows()[0].status == "completed"
    assert app.apply().code == 0 and app.rows()[0].status == "unchanged"


def test_unchanged_services_keep_their_tasks(app: SwarmApp) -> None:
    other = f"{app.prefix}-other"
    app.write()
    app.write(name=other, replicas=1)
    assert app.apply().code == 0
    tasks, other_tasks = app.tasks(), app.tasks(other)

    again = app.apply()
    assert again.code == 0
    assert app.tasks() == tasks and app.tasks(other) == other_tasks
    assert app.rows()[0].status == "unchanged"

    app.write(name=other, replicas=1, env="two")
    changed = app.apply()
    assert changed.code == 0
    assert app.tasks() == tasks
    assert set(app.tasks(other)).isdisjoint(other_tasks)


def test_a_changed_config_file_replaces_the_config(app: SwarmApp) -> None:
    app.write()
    assert app.apply().code == 0
    (old,) = app.configs()

    app.write(config="config two")
    result = app.apply()

    assert result.code == 0, result.out + result.err
    (new,) = app.configs()
    assert new != old and new.startswith(f"{app.name}-{app.name}.txt-")
    assert app.served("/config.txt") == ["config two"] * 2


def test_a_convergence_that_never_completes_times_out_and_releases_the_lock(
    app: SwarmApp,
) -> None:
    app.write()
    assert app.apply().code == 0
    tasks = app.tasks()

    app.write(env="two", timeout="3s", extra=f"  placement: {{constraints: ['{NOWHERE}']}}\n")
    started = time.monotonic()
    stuck = app.apply()
    assert stuck.code == 1
    assert time.monotonic() - started < 30
    assert "did not converge within 3s" in stuck.out + stuck.err
    assert app.tasks() == tasks  # start-first: the old tasks still serve
    assert app.rows()[0].status == "failed"

    app.write(env="two")
    started = time.monotonic()
    fixed = app.apply()
    assert fixed.code == 0, fixed.out + fixed.err
    assert "waiting:" not in fixed.out + fixed.err
    assert time.monotonic() - started < 30
    assert app.rows()[0].status == "completed"


def test_prune_removes_a_deleted_manifests_service_only(app: SwarmApp, swarm: Any) -> None:
    from docker.types import ContainerSpec, ServiceMode, TaskTemplate

    gone = f"{app.prefix}-gone"
    unmanaged = f"{app.prefix}-unmanaged"
    git_identity(app.root, f"team/{app.prefix}")
    app.write(replicas=1)
    app.write(name=gone, replicas=1)
    template = TaskTemplate(ContainerSpec(f"{REGISTRY}/web:1"))
    swarm.api.create_service(template, name=unmanaged, mode=ServiceMode("replicated", 0))
    assert app.apply().code == 0
    tasks = app.tasks()
    (app.root / "deploy" / f"{gone}.yml").unlink()

    plain = app.apply()
    assert plain.code == 0 and swarm.api.services(filters={"name": gone})
    pruned = app.apply("--prune")

    assert pruned.code == 0, pruned.out + pruned.err
    assert "container" not in pruned.out  # Swarm's task containers are not orphans
    assert swarm.api.services(filters={"name": gone}) == []
    assert app.configs(gone) == []
    assert swarm.api.inspect_service(unmanaged)["Spec"]["Name"] == unmanaged
    assert app.tasks() == tasks
    assert app.rows(gone)[0].status == "completed"


def test_rollback_and_status(app: SwarmApp) -> None:
    app.write(replicas=1)
    assert app.apply().code == 0
    app.write(replicas=1, image="web:2")
    assert app.apply().code == 0

    back = app.cli("rollback", "--name", app.name, "--env", "test", str(app.root))

    assert back.code == 0, back.out + back.err
    assert app.served() == ["version 1"]
    assert app.cli("status", "--env", "test", str(app.root)).code == 0
    subprocess.run(
        # Not detached: waits until Swarm has finished; an update in progress is `unfinished`.
        ["docker", "service", "update", "--quiet", "--image", f"{REGISTRY}/web:2", app.name],
        check=True,
        capture_output=True,
    )
    swapped = app.cli("status", "--env", "test", str(app.root))
    assert swapped.code == 1 and "image differs" in swapped.out
    app.docker.api.remove_service(app.name)
    drift = app.cli("status", "--env", "test", str(app.root))
    assert drift.code == 1 and "missing" in drift.out and app.name in drift.out

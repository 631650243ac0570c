"""Networks made on demand: created once under --parallel; duplicates are a clear error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.repos import REGISTRY, ContainerRepo, remove_containers, running

pytestmark = pytest.mark.usefixtures("test_images", "docker_cleanup")


@pytest.fixture
def prefix(docker_client: Any) -> Iterator[str]:
    """A unique name prefix; its containers, services and networks are removed afterwards."""
    p = f"bdnet-{uuid.uuid4().hex[:6]}"
    yield p
    api = docker_client.api
    if docker_client.info()["Swarm"]["LocalNodeState"] == "active":
        for service in api.services(filters={"name": p}):
            api.remove_service(service["ID"])
    remove_containers(docker_client, p)
    for network in api.networks(names=[p]):
        api.remove_network(network["Id"])


@pytest.fixture
def repo(tmp_path: Path, prefix: str) -> ContainerRepo:
    return ContainerRepo(tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}", f"team/{prefix}")


def named(docker_client: Any, name: str) -> list[dict[str, Any]]:
    return [n for n in docker_client.api.networks(names=[name]) if n["Name"] == name]


def test_parallel_containers_create_a_missing_network_once(
    repo: ContainerRepo, prefix: str, docker_client: Any
) -> None:
    shared = f"{prefix}-shared"
    names = {f"{prefix}-{i}" for i in range(4)}
    for name in names:
        repo.write(name, networks=(shared,))

    result = repo.cli("apply", "--parallel", "4")

    assert result.code == 0, result.out + result.err
    assert len(named(docker_client, shared)) == 1
    assert running(docker_client, prefix) == names
    assert result.err.count(f"created network {shared}") == 1
    again = repo.cli("apply", "--parallel", "4")
    assert again.code == 0 and len(named(docker_client, shared)) == 1


def test_duplicate_networks_are_a_clear_error_naming_the_fix(
    repo: ContainerRepo, prefix: str, docker_client: Any
) -> None:
    shared = f"{prefix}-shared"
    ids = [docker_client.api.create_network(shared, check_duplicate=False)["Id"] for _ in range(2)]
    assert len(named(docker_client, shared)) == 2
    repo.write(f"{prefix}-web", networks=(shared,))

    result = repo.cli("apply")

    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    assert f"network {shared} is ambiguous: 2 networks of that name exist" in result.err
    assert f"docker network rm {ids[1][:12]}" in result.err or (
        f"docker network rm {ids[0][:12]}" in result.err
    )
    assert running(docker_client, prefix) == set()
    assert len(named(docker_client, shared)) == 2  # nothing was created or removed


def _service(repo: ContainerRepo, name: str, network: str) -> None:
    (repo.root / "deploy" / f"{name}.yml").write_text(
        "apiVersion: bojdeploy/v1\nkind: Service\n"
        f"metadata: {{name: {name}}}\n"
        f"spec:\n  image: {REGISTRY}/web:1\n  replicas: 1\n  networks: [{network}]\n"
        "  labels: {io.bojdeploy.test: 'true'}\n  timeout: 60s\n"
    )


def test_parallel_services_create_a_missing_overlay_network_once(
    repo: ContainerRepo, prefix: str, docker_client: Any, swarm: Any
) -> None:
    shared = f"{prefix}-overlay"
    for i in range(3):
        _service(repo, f"{prefix}-s{i}", shared)

    result = repo.cli("apply", "--parallel", "4")

    assert result.code == 0, result.out + result.err
    (network,) = named(docker_client, shared)
    assert (network["Driver"], network["Scope"]) == ("overlay", "swarm")
    assert result.err.count(f"created overlay network {shared}") == 1


def test_a_service_on_a_duplicated_network_name_is_a_clear_error(
    repo: ContainerRepo, prefix: str, docker_client: Any, swarm: Any
) -> None:
    # Swarm refuses a second overlay of one name, but not two local ones beside no overlay.
    shared = f"{prefix}-dup"
    for _ in range(2):
        docker_client.api.create_network(shared, check_duplicate=False)
    _service(repo, f"{prefix}-api", shared)

    result = repo.cli("apply")

    assert result.code == 1, result.out + result.err
    assert f"network {shared} is ambiguous: 2 networks of that name exist" in result.err
    assert "docker network rm" in result.err and "Traceback" not in result.err
    assert docker_client.api.services(filters={"name": prefix}) == []


@pytest.fixture
def swarm(docker_client: Any) -> Any:
    """The docker client of an active Swarm manager."""
    active = docker_client.info()["Swarm"]["LocalNodeState"] == "active"
    require("swarm", active, "Docker is not a Swarm manager")
    return docker_client

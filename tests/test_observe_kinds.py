"""A run contacts only the targets of the kinds it needs: a Xen outage never blocks containers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from tests.repos import ContainerRepo, free_port, remove_containers, running

pytestmark = pytest.mark.usefixtures("test_images", "docker_cleanup")


@pytest.fixture
def prefix(docker_client: Any) -> Iterator[str]:
    p = f"bdkinds-{uuid.uuid4().hex[:6]}"
    yield p
    remove_containers(docker_client, p)


@pytest.fixture
def repo(tmp_path: Path, prefix: str) -> ContainerRepo:
    """A repository whose environment's Xen pool is a dead port, with a VM on record there."""
    repository = f"team/{prefix}"
    repo = ContainerRepo(tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}", repository)
    dead = f"http://127.0.0.1:{free_port()}"
    (repo.root / "bojdeploy.yaml").write_text(
        "environments:\n  test: {branches: ['*']}\n"
        f"targets:\n  test: {{xen_url: '{dead}'}}\n"
        "policy: {allow_vm_destroy: true}\n"
    )
    with open_store(repo.db) as store:
        store.create_deployment(
            deployment_type="vm",
            name=f"{prefix}-vm",
            environment="test",
            status="completed",
            git_repository=repository,
            config={"kind": "VM", "spec": {}},
            config_hash="recorded",
            manifest="deploy/old-vm.yml",
        )
    return repo


def test_containers_deploy_while_the_xen_pool_is_unreachable(
    repo: ContainerRepo, prefix: str, docker_client: Any
) -> None:
    repo.write(f"{prefix}-web")

    applied = repo.cli("apply")

    assert applied.code == 0, applied.out + applied.err
    assert running(docker_client, prefix) == {f"{prefix}-web"}
    planned = repo.cli("plan")  # the recorded VM is still named as left alone
    assert planned.code == 0, planned.out + planned.err
    assert f"vm {prefix}-vm" in planned.out + planned.err


def test_a_prune_that_could_delete_a_vm_asks_the_pool_first(
    repo: ContainerRepo, prefix: str, docker_client: Any
) -> None:
    repo.write(f"{prefix}-web")

    pruned = repo.cli("apply", "--prune")

    assert pruned.code == 3, pruned.out + pruned.err  # nothing changed: the pool is unreachable
    assert "127.0.0.1" in pruned.err
    assert running(docker_client, prefix) == set()

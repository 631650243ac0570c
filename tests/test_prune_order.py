"""Prune deletes run last, only after every change of the run succeeded (real Docker)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.repos import ContainerRepo, free_port, http_get, remove_containers, running

pytestmark = pytest.mark.usefixtures("test_images", "docker_cleanup")


@pytest.fixture
def prefix(docker_client: Any) -> Iterator[str]:
    p = f"bdprune-{uuid.uuid4().hex[:6]}"
    yield p
    remove_containers(docker_client, p)


@pytest.fixture
def repo(tmp_path: Path, prefix: str) -> ContainerRepo:
    return ContainerRepo(tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}", f"team/{prefix}")


def test_a_renamed_container_keeping_its_host_port_is_deployed_in_one_run(
    repo: ContainerRepo, prefix: str, docker_client: Any
) -> None:
    port = free_port()
    old, new = f"{prefix}-old", f"{prefix}-new"
    repo.write(old, ports=(f"127.0.0.1:{port}:80",), file="web")
    assert repo.cli("apply").code == 0
    repo.write(new, image="web:2", ports=(f"127.0.0.1:{port}:80",), file="web")

    result = repo.cli("apply", "--prune", "--parallel", "4")

    assert result.code == 0, result.out + result.err
    assert running(docker_client, prefix) == {new}
    assert http_get(port) == "version 2"
    assert f"stopping container {old} (pruned by this run): it holds 127.0.0.1:{port}/tcp" in (
        result.err
    )
    lines = [line for line in result.out.splitlines() if prefix in line]
    assert [line.split()[:3] for line in lines] == [
        ["ok", "container", new],
        ["ok", "container", old],  # the delete comes last
    ]
    assert repo.rows(old)[0].reason == "manifest deleted"


def test_a_failing_create_blocks_the_prune(
    repo: ContainerRepo, prefix: str, docker_client: Any
) -> None:
    keep, gone, broken = f"{prefix}-keep", f"{prefix}-gone", f"{prefix}-broken"
    repo.write(keep)
    repo.write(gone)
    assert repo.cli("apply").code == 0
    repo.remove(gone)
    repo.write(broken, image="crash:1")

    result = repo.cli("apply", "--prune")

    assert result.code == 1, result.out + result.err
    assert running(docker_client, prefix) == {keep, gone}
    why = f"not deleted: container {broken} failed in this run, so nothing is pruned"
    assert f"SKIPPED container {gone}" in result.out and why in result.out
    assert "1 failed, 1 skipped." in result.out
    row = repo.rows(gone)[0]
    assert (row.status, row.error_message, row.reason) == ("failed", why, "manifest deleted")

    repo.remove(broken)
    again = repo.cli("apply", "--prune")
    assert again.code == 0, again.out + again.err
    assert running(docker_client, prefix) == {keep}


def test_a_failed_rename_gives_the_port_back_to_the_old_container(
    repo: ContainerRepo, prefix: str, docker_client: Any
) -> None:
    port = free_port()
    old, new = f"{prefix}-old", f"{prefix}-new"
    repo.write(old, ports=(f"127.0.0.1:{port}:80",), file="web")
    assert repo.cli("apply").code == 0
    repo.write(new, image="unhealthy:1", ports=(f"127.0.0.1:{port}:80",), health=True, file="web")

    result = repo.cli("apply", "--prune")

    assert result.code == 1, result.out + result.err
    assert running(docker_client, prefix) == {old}
    assert http_get(port) == "version 1"
    assert f"started container {old} again" in result.err
    assert f"SKIPPED container {old}" in result.out

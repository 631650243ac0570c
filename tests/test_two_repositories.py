"""Two repositories sharing a Docker host, an environment name and a database stay apart."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.repos import ContainerRepo, remove_containers, running

pytestmark = pytest.mark.usefixtures("test_images", "docker_cleanup")


@pytest.fixture
def prefix(docker_client: Any) -> Iterator[str]:
    p = f"bdtwo-{uuid.uuid4().hex[:6]}"
    yield p
    remove_containers(docker_client, p)


@pytest.fixture
def pair(tmp_path: Path, prefix: str) -> tuple[ContainerRepo, ContainerRepo]:
    """Repositories team/<prefix>-a and team/<prefix>-b, environment `test`, one database."""
    db = f"sqlite:///{tmp_path / 'state.db'}"
    a = ContainerRepo(tmp_path / "a", db, f"team/{prefix}-a")
    b = ContainerRepo(tmp_path / "b", db, f"team/{prefix}-b")
    return a, b


def orphans(repo: ContainerRepo, *extra: str) -> list[str]:
    """The names a JSON plan of `repo` lists as orphans (resources without a manifest)."""
    result = repo.cli("plan", "--json", *extra)
    assert result.code == 0, result.err
    return [o["name"] for o in json.loads(result.out)["orphans"]]


def test_neither_sees_nor_prunes_the_others_resources(
    pair: tuple[ContainerRepo, ContainerRepo], prefix: str, docker_client: Any
) -> None:
    a, b = pair
    a.write(f"{prefix}-a-web")
    a.write(f"{prefix}-a-old")
    b.write(f"{prefix}-b-web")
    assert a.cli("apply").code == 0
    assert b.cli("apply").code == 0
    a.remove(f"{prefix}-a-old")

    assert orphans(b) == [] and orphans(b, "--offline") == []
    assert orphans(a) == [f"{prefix}-a-old"] == orphans(a, "--offline")
    plain = b.cli("apply")
    assert plain.code == 0 and "no manifest" not in plain.err
    pruned_b = b.cli("apply", "--prune")
    assert pruned_b.code == 0, pruned_b.out + pruned_b.err
    everything = {f"{prefix}-a-web", f"{prefix}-a-old", f"{prefix}-b-web"}
    assert running(docker_client, prefix) == everything

    pruned_a = a.cli("apply", "--prune")
    assert pruned_a.code == 0, pruned_a.out + pruned_a.err
    assert running(docker_client, prefix) == everything - {f"{prefix}-a-old"}
    assert f"{prefix}-b-web" not in pruned_a.out


def test_a_manifest_naming_the_others_resource_is_refused(
    pair: tuple[ContainerRepo, ContainerRepo], prefix: str, docker_client: Any
) -> None:
    a, b = pair
    web = f"{prefix}-web"
    a.write(web)
    assert a.cli("apply").code == 0
    before = docker_client.containers.get(web).id
    b.write(web, image="web:2")

    for command in ("plan", "apply"):
        result = b.cli(command)
        assert result.code == 1, result.out + result.err
        assert (
            f'deploy/{web}.yml: container "{web}" is owned by repository team/{prefix}-a '
            f"(environment test); refusing to replace it from team/{prefix}-b"
        ) in result.err
        assert "Traceback" not in result.err
    assert docker_client.containers.get(web).id == before
    assert {row.git_repository for row in b.rows(web)} == {f"team/{prefix}-a"}  # B recorded none


def test_a_run_that_does_not_know_its_repository_never_prunes(
    tmp_path: Path, prefix: str, docker_client: Any
) -> None:
    local = ContainerRepo(tmp_path / "local", f"sqlite:///{tmp_path / 'state.db'}", None)
    local.write(f"{prefix}-web")
    local.write(f"{prefix}-old")
    assert local.cli("apply").code == 0
    local.remove(f"{prefix}-old")

    result = local.cli("apply", "--prune")

    assert result.code == 0, result.out + result.err
    assert running(docker_client, prefix) == {f"{prefix}-web", f"{prefix}-old"}
    assert (
        "Note: 1 managed resource has no manifest (not deleted: this run's repository is unknown"
    ) in result.err
    assert "add an origin remote to prune" in result.err

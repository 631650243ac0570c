"""Fixtures of the action's tests: the fake Gitea, a deployment repository, a workspace volume."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.action import DeployRepo, fake_gitea
from tests.fakes.fake_gitea import FakeGitea


@pytest.fixture
def gitea() -> Iterator[FakeGitea]:
    """A fake Gitea that checks requests against the swagger spec; none may break it."""
    with fake_gitea() as fake:
        yield fake
    assert fake.problems == []


@pytest.fixture
def repo(tmp_path: Path) -> DeployRepo:
    """A deployment repository in tmp_path/workspace (its containers named bdact-*-unit)."""
    return DeployRepo(tmp_path / "workspace", "unit")


@pytest.fixture
def volume(docker_client: Any) -> Iterator[str]:
    """The name of a Docker volume for the workspace, removed afterwards."""
    name = f"bojdeploy-test-ws-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True, check=False)

"""Slow: build the action image offline, then run docs/gitea-action.md's `docker run` lines.

The image is built by scripts/build-action-image.sh (debootstrapped base, host-built wheels,
`docker build --network none`) and run exactly as the docs show: the workspace in a named
volume, the Docker socket mounted, act_runner's environment set. It must deploy a container and
report its statuses to the (fake) Gitea.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.action import ROOT, TOKEN, DeployRepo, statuses
from tests.action.docs_run import run_docs_command
from tests.conftest import require
from tests.fakes.fake_gitea import default_swagger

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def image(docker_client: Any) -> str:
    """The action image, built offline by scripts/build-action-image.sh for this checkout."""
    require("debootstrap", shutil.which("debootstrap") is not None, "apt-get install debootstrap")
    tag = f"bojdeploy-action:test-{hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]}"
    done = subprocess.run(
        [str(ROOT / "scripts" / "build-action-image.sh"), tag],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return tag


def test_docs_docker_run_deploys_with_the_image(
    image: str, volume: str, tmp_path: Path, test_images: Any, docker_cleanup: None
) -> None:
    swagger = default_swagger()
    require("Gitea's swagger spec", swagger.is_file(), f"{swagger} is missing")
    repo = DeployRepo(tmp_path / "checkout", uuid.uuid4().hex[:8])
    repo.write("web")
    sha = repo.commit("web")
    done, gitea = run_docs_command(image, volume, repo, tmp_path)
    url = f"http://127.0.0.1:{repo.ports['web']}/"
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.read().decode().strip() == "version 1"
    history = statuses(gitea, sha)
    assert [s for s, _ in history[f"bojdeploy/production/{repo.name('web')}"]] == [
        "pending",
        "success",
    ]
    assert history["bojdeploy/production"][-1][0] == "success"
    assert gitea.problems == []
    assert TOKEN not in "\n".join(
        line for line in done.stdout.splitlines() if not line.startswith("::add-mask::")
    )

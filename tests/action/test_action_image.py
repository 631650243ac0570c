"""Slow: build the action image offline, then run docs/gitea-action.md's `docker run` lines.

The image is built by scripts/build-action-image.sh (debootstrapped base, host-built wheels,
`docker build --network none`) and run exactly as the docs show: the workspace in a named
volume, the Docker socket mounted, act_runner's environment set. It must deploy a container and
report its statuses to the (fake) Gitea.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.action import OWNER, REPO, ROOT, TOKEN, DeployRepo, statuses
from tests.conftest import require
from tests.fakes.fake_gitea import FakeGitea, default_swagger

pytestmark = [pytest.mark.docker, pytest.mark.slow]
DOCS = ROOT / "docs" / "gitea-action.md"
BLOCK = re.compile(r"<!-- docker-run: begin.*?-->\n```sh\n(.*?)```\n<!-- docker-run: end -->", re.S)


def docs_command() -> str:
    """The `docker run` block of the docs, verbatim."""
    match = BLOCK.search(DOCS.read_text())
    assert match, f"no docker-run block in {DOCS}"
    return match.group(1)


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


@pytest.fixture
def volume(docker_client: Any) -> Iterator[str]:
    name = f"bojdeploy-test-ws-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True, check=False)


def test_docs_docker_run_deploys_with_the_image(
    image: str, volume: str, tmp_path: Path, test_images: Any, docker_cleanup: None
) -> None:
    swagger = default_swagger()
    require("Gitea's swagger spec", swagger.is_file(), f"{swagger} is missing")
    repo = DeployRepo(tmp_path / "checkout", uuid.uuid4().hex[:8])
    repo.write("web")
    sha = repo.commit("web")
    gitea = FakeGitea(token=TOKEN).start()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "IMAGE": image,
        "VOLUME": volume,
        "REPOSITORY": f"{OWNER}/{REPO}",
        "GITEA_URL": gitea.url,
        "DEPLOY_TOKEN": TOKEN,
        "DATABASE_URL": f"sqlite:////workspace/{OWNER}/{REPO}/.bojdeploy-state.db",
    }
    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", docs_command()],
            cwd=repo.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        gitea.stop()
    assert done.returncode == 0, done.stdout + done.stderr
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

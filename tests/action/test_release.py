"""Slow: scripts/release.sh against the registry on 127.0.0.1:5000, then the released action.

The release's action.yml names the image by digest (`docker://...@sha256:...`); the test pulls
that reference, as act_runner does for such an action, and runs it the way act_runner runs a
Docker action (docs/gitea-action.md's `docker run` block), deploying a container. The version
agrees everywhere (`bojdeploy --version`, the image labels, the new deployment record), a second
build of the same tree installs the same packages, and the script leaves no dangling image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import canonicalize_name

from bojdeploy import __version__
from bojdeploy.store import open_store
from tests.action import ROOT, DeployRepo, statuses
from tests.action.docs_run import WORKSPACE, run_docs_command
from tests.conftest import require

pytestmark = [pytest.mark.docker, pytest.mark.slow]
REGISTRY = "127.0.0.1:5000"
PYTHON = "/opt/bojdeploy/bin/python"
PACKAGES = (  # `pip freeze`, which the image has no pip for
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted((d.name, d.version) for d in m.distributions())))"
)


def docker(*args: str) -> str:
    """Run the docker CLI; its output."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def dangling() -> set[str]:
    """Untagged images the Dockerfile made: its build stage's, or a final one a build replaced."""
    found: set[str] = set()
    for label in ("io.bojdeploy.stage=build", "org.opencontainers.image.title=bojdeploy"):
        query = ("images", "-q", "--no-trunc", "-f", "dangling=true", "-f", f"label={label}")
        found |= set(docker(*query).split())
    return found


@pytest.fixture(scope="module")
def release(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files scripts/release.sh writes for this version, with the tests left out."""
    require("debootstrap", shutil.which("debootstrap") is not None, "apt-get install debootstrap")
    out = tmp_path_factory.mktemp("dist")
    before = dangling()
    done = subprocess.run(
        [
            str(ROOT / "scripts" / "release.sh"),
            "--skip-tests",
            "--out",
            str(out),
            __version__,
            REGISTRY,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert dangling() <= before, "the release left dangling images"
    return out


@pytest.fixture(scope="module")
def image(release: Path) -> str:
    """The image the released action.yml names, pulled by its digest."""
    action = yaml.safe_load((release / "action.yml").read_text())
    ref = action["runs"]["image"]
    assert re.fullmatch(
        rf"docker://{REGISTRY}/bojdeploy:{re.escape(__version__)}@sha256:[0-9a-f]{{64}}", ref
    )
    ref = ref.removeprefix("docker://")
    docker("pull", ref)
    return ref


def test_the_release_files(release: Path) -> None:
    released = yaml.safe_load((release / "action.yml").read_text())
    original = yaml.safe_load((ROOT / "action.yml").read_text())
    assert original["runs"] == {"using": "docker", "image": "Dockerfile"}
    assert {k: v for k, v in released.items() if k != "runs"} == {
        k: v for k, v in original.items() if k != "runs"
    }
    wheel = f"bojdeploy-{__version__}-py3-none-any.whl"
    sdist = f"bojdeploy-{__version__}.tar.gz"
    assert sorted(p.name for p in release.iterdir()) == sorted(
        ["action.yml", wheel, sdist, "SHA256SUMS"]
    )
    sums = dict(line.split()[::-1] for line in (release / "SHA256SUMS").read_text().splitlines())
    for name in ("action.yml", wheel, sdist):
        assert sums[name] == hashlib.sha256((release / name).read_bytes()).hexdigest()


def test_the_released_image_deploys_and_the_version_agrees(
    image: str, volume: str, tmp_path: Path, test_images: Any, docker_cleanup: None
) -> None:
    repo = DeployRepo(tmp_path / "checkout", uuid.uuid4().hex[:8])
    repo.write("web")
    sha = repo.commit("web")
    _, gitea = run_docs_command(image, volume, repo, tmp_path)
    with urllib.request.urlopen(f"http://127.0.0.1:{repo.ports['web']}/", timeout=5) as answer:
        assert answer.read().decode().strip() == "version 1"
    assert statuses(gitea, sha)["bojdeploy/production"][-1][0] == "success"

    shown = docker(
        "run", "--rm", "--entrypoint", "/opt/bojdeploy/bin/bojdeploy", image, "--version"
    )
    assert shown == f"bojdeploy, version {__version__}\n"
    labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", image))
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.version"] == __version__
    assert re.fullmatch(rf"{head}(-dirty)?", labels["org.opencontainers.image.revision"])
    assert labels["org.opencontainers.image.source"]
    copy = tmp_path / "state"
    copy.mkdir()
    docker(
        "run", "--rm", "-v", f"{volume}:{WORKSPACE}", "-v", f"{copy}:/out", "--entrypoint", "sh",
        image, "-c", f"cp -r {WORKSPACE}/.bojdeploy-state.db* /out/",
    )  # fmt: skip
    with open_store(f"sqlite:///{copy / '.bojdeploy-state.db'}") as store:
        [record] = [r for r in store.list_deployments(limit=10) if r.name == repo.name("web")]
    assert record.status == "completed"
    assert record.config is not None
    assert record.config["deployed"]["bojdeploy_version"] == __version__


def test_a_second_build_installs_the_same_packages(image: str) -> None:
    again = f"bojdeploy-action:repro-{uuid.uuid4().hex[:8]}"
    before = dangling()
    done = subprocess.run(
        [str(ROOT / "scripts" / "build-action-image.sh"), again],
        env={**os.environ, "NO_CACHE": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert dangling() <= before
        first = docker("run", "--rm", "--entrypoint", PYTHON, image, "-c", PACKAGES)
        second = docker("run", "--rm", "--entrypoint", PYTHON, again, "-c", PACKAGES)
    finally:
        subprocess.run(["docker", "image", "rm", again], capture_output=True, check=False)
    assert first == second
    lock = (ROOT / "requirements.lock").read_text()
    pinned = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", lock, re.M)
    installed = {canonicalize_name(name): version for name, version in json.loads(first)}
    assert installed == {canonicalize_name(n): v for n, v in pinned} | {"bojdeploy": __version__}

"""docs/gitea-action.md's `docker run` block, run exactly as the docs show it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.action import OWNER, REPO, ROOT, TOKEN, DeployRepo
from tests.fakes.fake_gitea import FakeGitea

DOCS = ROOT / "docs" / "gitea-action.md"
BLOCK = re.compile(r"<!-- docker-run: begin.*?-->\n```sh\n(.*?)```\n<!-- docker-run: end -->", re.S)
WORKSPACE = f"/workspace/{OWNER}/{REPO}"  # where the block mounts the workspace volume


def docs_command() -> str:
    """The `docker run` block of the docs, verbatim."""
    match = BLOCK.search(DOCS.read_text())
    assert match, f"no docker-run block in {DOCS}"
    return match.group(1)


def run_docs_command(
    image: str, volume: str, repo: DeployRepo, home: Path
) -> tuple[subprocess.CompletedProcess[str], FakeGitea]:
    """Run the block in `repo`'s checkout with `image` and `volume`, reporting to a fake Gitea.

    Fails unless the block exits 0; what it printed, and the (stopped) fake with its statuses.
    """
    gitea = FakeGitea(token=TOKEN).start()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "IMAGE": image,
        "VOLUME": volume,
        "REPOSITORY": f"{OWNER}/{REPO}",
        "GITEA_URL": gitea.url,
        "DEPLOY_TOKEN": TOKEN,
        "DATABASE_URL": f"sqlite:///{WORKSPACE}/.bojdeploy-state.db",
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
    return done, gitea

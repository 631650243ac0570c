"""The workspace finds manifests and deleted manifests with the same reading of `manifests:`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bojdeploy.engine.workspace import open_workspace
from tests.helpers import GIT, git_identity

MANIFEST = """\
apiVersion: bojdeploy/v1
kind: Container
metadata: {{name: {name}}}
spec: {{image: "127.0.0.1:5000/bojdeploy-test/web:1"}}
"""


def write(root: Path, rel: str, name: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MANIFEST.format(name=name))


@pytest.mark.parametrize(
    ("pattern", "found", "deleted"),
    [
        ("deploy/**", ["deploy/a/b/web.yml", "deploy/api.yaml"], ["deploy/db.yml"]),
        ("deploy/**/*.yml", ["deploy/a/b/web.yml"], ["deploy/db.yml"]),
        ("deploy/**/*.yaml", ["deploy/api.yaml"], []),
        ("*.yml", ["top.yml"], []),
    ],
)
def test_discovery_and_deletions_agree(
    tmp_path: Path, pattern: str, found: list[str], deleted: list[str]
) -> None:
    root = tmp_path / "repo"
    (root).mkdir()
    (root / "bojdeploy.yaml").write_text(f'manifests: ["{pattern}"]\n')
    for rel, name in [
        ("deploy/a/b/web.yml", "web"),
        ("deploy/api.yaml", "api"),
        ("deploy/db.yml", "db"),
        ("top.yml", "top"),
    ]:
        write(root, rel, name)
    git_identity(root, "team/app")
    (root / "deploy" / "db.yml").unlink()
    subprocess.run([*GIT, "-C", str(root), "commit", "-qam", "drop db"], check=True)

    ws = open_workspace([root])
    assert ws.manifest_files() == found
    result = ws.load("production", {})
    assert result.errors == []
    selection = ws.select(result, "HEAD~1")
    assert list(selection.deleted) == deleted


def test_a_folder_named_on_the_command_line_gives_its_yaml_files(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, "deploy/[x]/web.yml", "web")
    write(root, "deploy/[x]/sub/api.yaml", "api")
    write(root, "deploy/y/db.yml", "db")
    (root / ".git").mkdir()
    ws = open_workspace([root / "deploy" / "[x]"])
    assert ws.explicit == ["deploy/[x]/sub/api.yaml", "deploy/[x]/web.yml"]

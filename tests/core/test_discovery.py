"""One glob engine: discovery of manifest files and deleted manifests read patterns alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from bojdeploy.core.changes import FileChange, select_changed
from bojdeploy.core.discovery import discover, literal_prefix, matches, max_depth
from bojdeploy.core.files import RepoFiles

FILES = [
    "web.yml",
    "notes.txt",
    "deploy/web.yml",
    "deploy/db.yaml",
    "deploy/README.md",
    "deploy/apps/api.yml",
    "deploy/apps/edge/cache.yaml",
    "deploy/apps/edge/deep/er/vm.yml",
    "deploy/.hidden/x.yml",
    "deployments/other.yml",
    "config/deploy/web.yml",
]

# pattern -> the files of FILES it selects, by discovery and as deletions alike.
CASES = {
    "deploy/**": [
        "deploy/.hidden/x.yml",
        "deploy/README.md",
        "deploy/apps/api.yml",
        "deploy/apps/edge/cache.yaml",
        "deploy/apps/edge/deep/er/vm.yml",
        "deploy/db.yaml",
        "deploy/web.yml",
    ],
    "deploy/**/*.yaml": ["deploy/apps/edge/cache.yaml", "deploy/db.yaml"],
    "deploy/**/*.yml": [
        "deploy/.hidden/x.yml",
        "deploy/apps/api.yml",
        "deploy/apps/edge/deep/er/vm.yml",
        "deploy/web.yml",
    ],
    "*.yml": ["web.yml"],
    "deploy/*.yml": ["deploy/web.yml"],
    "deploy/*/*.yml": ["deploy/.hidden/x.yml", "deploy/apps/api.yml"],
    "deploy/apps/**/deep/**/*.yml": ["deploy/apps/edge/deep/er/vm.yml"],
    "deploy/apps/edge/cache.yaml": ["deploy/apps/edge/cache.yaml"],
    "**/web.yml": ["config/deploy/web.yml", "deploy/web.yml", "web.yml"],
    "./deploy/*.yaml": ["deploy/db.yaml"],
    "deploy*/*.yml": ["deploy/web.yml", "deployments/other.yml"],
    "nowhere/**": [],
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for rel in FILES:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "web.yml").write_text("not a manifest\n")
    return tmp_path


@pytest.mark.parametrize("pattern", sorted(CASES))
def test_pattern_against_a_list_of_files(pattern: str) -> None:
    assert discover(FILES, [pattern]) == CASES[pattern]


@pytest.mark.parametrize("pattern", sorted(CASES))
def test_discovery_on_disk(repo: Path, pattern: str) -> None:
    found = discover(RepoFiles(repo).candidates([pattern]), [pattern])
    assert found == CASES[pattern]


@pytest.mark.parametrize("pattern", sorted(CASES))
def test_deletions_read_the_pattern_as_discovery_does(pattern: str) -> None:
    changes = [FileChange("D", f) for f in FILES]
    selection = select_changed([], changes, {}, patterns=[pattern])
    assert list(selection.deleted) == CASES[pattern]


def test_several_patterns_are_a_union(repo: Path) -> None:
    patterns = ["deploy/*.yml", "deploy/**/*.yaml"]
    found = discover(RepoFiles(repo).candidates(patterns), patterns)
    assert found == ["deploy/apps/edge/cache.yaml", "deploy/db.yaml", "deploy/web.yml"]


def test_a_trailing_double_star_is_what_a_folder_holds_not_the_folder() -> None:
    assert matches("deploy/x.yml", "deploy/**")
    assert not matches("deploy", "deploy/**")


def test_symlinked_folders_are_not_entered(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "evil.yml").write_text("x\n")
    (repo / "deploy" / "linked").symlink_to(outside, target_is_directory=True)
    (repo / "deploy" / "loop").symlink_to(repo / "deploy", target_is_directory=True)
    found = discover(RepoFiles(repo).candidates(["deploy/**/*.yml"]), ["deploy/**/*.yml"])
    assert found == CASES["deploy/**/*.yml"]


@pytest.mark.parametrize(
    ("pattern", "prefix", "depth"),
    [
        ("deploy/**/*.yml", ("deploy",), None),
        ("deploy/*.yml", ("deploy",), 1),
        ("*.yml", (), 1),
        ("a/b/*/c.yml", ("a", "b"), 2),
        ("./deploy/x.yml", ("deploy",), 1),
        ("de[p]loy/x.yml", (), 2),
    ],
)
def test_where_a_pattern_can_match(
    pattern: str, prefix: tuple[str, ...], depth: int | None
) -> None:
    assert literal_prefix(pattern) == prefix
    assert max_depth(pattern) == depth

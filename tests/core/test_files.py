"""Repository files: confined to the checkout, regular, bounded and UTF-8, or a clear refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bojdeploy.core.files import MAX_FILE_BYTES, RepoFileError, RepoFiles


@pytest.fixture
def repo(tmp_path: Path) -> RepoFiles:
    root = tmp_path / "repo"
    (root / "deploy" / "sub").mkdir(parents=True)
    (root / "VERSION").write_text("2\n")
    (root / "deploy" / "m.yml").write_text("a: 1\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    (tmp_path / "elsewhere").mkdir()
    os.symlink("../VERSION", root / "deploy" / "version-link")
    os.symlink(tmp_path / "secret.txt", root / "deploy" / "out-link")
    os.symlink(tmp_path / "elsewhere", root / "deploy" / "out-folder")
    os.symlink("loop", root / "deploy" / "loop")
    os.mkfifo(root / "deploy" / "pipe")
    return RepoFiles(root)


def test_files_are_read_and_named_with_folders_and_links_resolved(repo: RepoFiles) -> None:
    assert repo.read("deploy/m.yml") == "a: 1\n"
    assert repo.read("deploy/sub/../m.yml") == "a: 1\n"
    assert repo.read("deploy/version-link") == "2\n"
    assert repo.path_of("deploy/version-link") == "VERSION"
    assert repo.path_of("deploy/sub/../../VERSION") == "VERSION"
    assert repo.path_of("deploy/missing.yml") == "deploy/missing.yml"


@pytest.mark.parametrize(
    ("rel", "message"),
    [
        ("/etc/passwd", "'/etc/passwd': use a path relative to the repository root"),
        ("", "'': use a path relative to the repository root"),
        ("a\0b", "use a path relative to the repository root"),
        ("../secret.txt", "'../secret.txt' escapes the repository"),
        ("deploy/../../secret.txt", "escapes the repository"),
        ("deploy/out-link", "'deploy/out-link' escapes the repository"),
        ("deploy/out-folder/x", "'deploy/out-folder/x' escapes the repository"),
        ("deploy/..", "'deploy/..' is not a regular file"),
        ("deploy/loop", "'deploy/loop' cannot be resolved: a symlink loop or a bad path"),
        ("deploy/loop/x", "cannot be resolved: a symlink loop or a bad path"),
        ("deploy/missing.yml", "'deploy/missing.yml' does not exist in the repository"),
        ("deploy/m.yml/x", "'deploy/m.yml/x' does not exist in the repository"),
        ("deploy/sub", "'deploy/sub' is not a regular file"),
        ("deploy/pipe", "'deploy/pipe' is not a regular file"),
    ],
)
def test_files_that_cannot_be_used_are_refused_with_why(
    repo: RepoFiles, rel: str, message: str
) -> None:
    with pytest.raises(RepoFileError) as refused:
        repo.read(rel)
    assert message in str(refused.value)


def test_size_is_bounded_and_text_is_utf8(repo: RepoFiles) -> None:
    root = Path(repo.root)
    (root / "full.yml").write_bytes(b"#" * (MAX_FILE_BYTES - 1) + b"\n")
    assert len(repo.read("full.yml")) == MAX_FILE_BYTES
    (root / "big.yml").write_bytes(b"a\n" + b"#" * MAX_FILE_BYTES)
    with pytest.raises(RepoFileError, match="is larger than") as big:
        repo.read("big.yml")
    assert big.value.line == 2
    (root / "latin.yml").write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(RepoFileError, match=r"byte 0xe9 at line 2, column 7") as bad:
        repo.read("latin.yml")
    assert bad.value.line == 2

"""Change detection on real git repositories built with the git command line."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from bojdeploy.core.changes import FileChange, Selection
from bojdeploy.engine.gitrepo import ZERO_SHA, GitInfo, GitRepo
from bojdeploy.errors import BojdeployError, UsageError

PATTERNS = ["deploy/**/*.yml", "deploy/**/*.yaml"]
MANIFESTS = ["deploy/web.yml", "deploy/db.yml", "deploy/api.yml", "deploy/cache.yml"]
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's git configuration out of both the tests and bojdeploy."""
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` as a user would, failing the test on error."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str | None], message: str = "change") -> str:
    """Write (or, for None, delete) files, commit everything, and return the new sha."""
    for name, content in files.items():
        path = repo / name
        if content is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def manifests_in(repo: Path) -> list[str]:
    """The manifest files currently in the work tree."""
    return sorted(p.relative_to(repo).as_posix() for p in (repo / "deploy").rglob("*.yml"))


def detect(
    repo: Path,
    before: str | None,
    dependencies: Mapping[str, list[str]] | None = None,
    fallback: Callable[[str, str], list[FileChange] | None] | None = None,
) -> Selection:
    """detect_changes from `before` to HEAD with the work tree's manifests."""
    return GitRepo(repo).detect_changes(
        before, "HEAD", manifests_in(repo), dependencies or {}, patterns=PATTERNS, fallback=fallback
    )


@pytest.fixture()
def origin(tmp_path: Path) -> Path:
    """A repository with four manifests, a config file and a README on branch main."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    files: dict[str, str | None] = {m: f"# {m}\n" for m in MANIFESTS}
    files |= {"config/nginx.conf": "worker_processes 1;\n", "README.md": "hello\n"}
    files["bojdeploy.yaml"] = "prune: false\n"
    commit(repo, files, "initial")
    return repo


def test_seven_commit_push_selects_every_manifest_modified_along_the_way(origin: Path) -> None:
    before = git(origin, "rev-parse", "HEAD")
    commit(origin, {"deploy/web.yml": "image: web:2\n"})
    commit(origin, {"README.md": "more\n"})
    commit(origin, {"deploy/api.yml": "image: api:2\n"})
    commit(origin, {"README.md": "even more\n"})
    commit(origin, {"deploy/new.yml": "image: new:1\n"})
    commit(origin, {"README.md": "and more\n"})
    after = commit(origin, {"deploy/web.yml": "image: web:3\n"})

    selection = GitRepo(origin).detect_changes(
        before, after, manifests_in(origin), {}, patterns=PATTERNS
    )

    span = f"{before[:7]}..{after[:7]}"
    assert {s.path: s.reason for s in selection.selected} == {
        "deploy/api.yml": f"modified in {span}",
        "deploy/new.yml": f"added in {span}",
        "deploy/web.yml": f"modified in {span}",
    }
    assert (selection.full, selection.deleted, selection.note) == (False, (), "")


def test_new_branch_considers_every_manifest(origin: Path) -> None:
    selection = detect(origin, ZERO_SHA)

    assert selection.paths() == sorted(MANIFESTS)
    assert selection.full
    assert "new branch" in selection.note
    assert selection.reason_for("deploy/web.yml") == (
        "all manifests: before is all zeros (new branch)"
    )


def test_force_push_considers_every_manifest(origin: Path) -> None:
    base = git(origin, "rev-parse", "HEAD")
    old_tip = commit(origin, {"deploy/web.yml": "image: web:2\n"})
    git(origin, "reset", "-q", "--hard", base)
    new_tip = commit(origin, {"deploy/db.yml": "image: db:2\n"})

    selection = detect(origin, old_tip)

    assert selection.full
    assert selection.paths() == sorted(MANIFESTS)
    assert selection.note == (
        f"force push: {old_tip[:7]} is not an ancestor of {new_tip[:7]}: considering every manifest"
    )


def shallow_clone(origin: Path, tmp_path: Path) -> Path:
    """A depth-1 clone of `origin`, as CI checkouts make them."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin}", str(clone))
    return clone


def test_shallow_clone_is_deepened_to_find_before(origin: Path, tmp_path: Path) -> None:
    before = git(origin, "rev-parse", "HEAD")
    commit(origin, {"deploy/web.yml": "image: web:2\n"})
    for n in range(5):
        commit(origin, {"README.md": f"{n}\n"})
    clone = shallow_clone(origin, tmp_path)
    repo = GitRepo(clone)
    assert repo.is_shallow() and not repo.has_commit(before)

    selection = detect(clone, before)

    assert selection.paths() == ["deploy/web.yml"]
    assert not selection.full
    assert selection.note == f"deepened the shallow clone to reach {before[:7]}"
    assert repo.has_commit(before)


def test_deepen_unshallows_when_the_rounds_do_not_reach_far_enough(
    origin: Path, tmp_path: Path
) -> None:
    before = git(origin, "rev-parse", "HEAD")
    for n in range(60):
        commit(origin, {}, f"empty {n}")
    repo = GitRepo(shallow_clone(origin, tmp_path))

    assert repo.deepen(before, max_rounds=1)
    assert not repo.is_shallow()


def test_shallow_clone_without_its_remote_falls_back_to_every_manifest(
    origin: Path, tmp_path: Path
) -> None:
    before = git(origin, "rev-parse", "HEAD")
    commit(origin, {"deploy/web.yml": "image: web:2\n"})
    clone = shallow_clone(origin, tmp_path)
    git(clone, "remote", "remove", "origin")

    selection = detect(clone, before)

    assert selection.full
    assert selection.paths() == sorted(MANIFESTS)
    assert selection.note == (
        f"commit {before[:7]} is not in this clone (shallow clone or force push); "
        "fetching history failed: the clone has no remote to fetch from: considering every manifest"
    )


def test_shallow_clone_with_an_unreachable_remote_falls_back_to_every_manifest(
    origin: Path, tmp_path: Path
) -> None:
    before = git(origin, "rev-parse", "HEAD")
    commit(origin, {"deploy/web.yml": "image: web:2\n"})
    clone = shallow_clone(origin, tmp_path)
    shutil.rmtree(origin)

    selection = detect(clone, before)

    assert selection.full
    assert selection.paths() == sorted(MANIFESTS)
    assert selection.note == (
        f"commit {before[:7]} is not in this clone (shallow clone or force push); "
        f"fetching history failed: git fetch --deepen=50: '{origin}' does not appear to be "
        "a git repository: considering every manifest"
    )


def test_forge_fallback_is_asked_when_before_cannot_be_fetched(
    origin: Path, tmp_path: Path
) -> None:
    before = git(origin, "rev-parse", "HEAD")
    after = commit(origin, {"deploy/db.yml": "image: db:2\n"})
    clone = shallow_clone(origin, tmp_path)
    shutil.rmtree(origin)
    asked = []

    def compare(base: str, head: str) -> list[FileChange]:
        asked.append((base, head))
        return [FileChange("M", "deploy/db.yml")]

    selection = detect(clone, before, fallback=compare)

    assert asked == [(before, after)]
    assert selection.paths() == ["deploy/db.yml"]
    assert selection.reason_for("deploy/db.yml") == f"modified in {before[:7]}..{after[:7]}"
    assert selection.note.endswith("compared through the forge")


def test_forge_fallback_without_an_answer_considers_every_manifest(
    origin: Path, tmp_path: Path
) -> None:
    before = git(origin, "rev-parse", "HEAD")
    commit(origin, {"deploy/db.yml": "image: db:2\n"})
    clone = shallow_clone(origin, tmp_path)
    git(clone, "remote", "remove", "origin")

    selection = detect(clone, before, fallback=lambda base, head: None)

    assert selection.full and selection.paths() == sorted(MANIFESTS)


def test_include_only_change_selects_the_manifest_that_reads_it(origin: Path) -> None:
    before = git(origin, "rev-parse", "HEAD")
    commit(origin, {"config/nginx.conf": "worker_processes 4;\n"})

    selection = detect(origin, before, dependencies={"deploy/web.yml": ["config/nginx.conf"]})

    assert selection.paths() == ["deploy/web.yml"]
    assert selection.reason_for("deploy/web.yml") == "includes config/nginx.conf (modified)"


def test_repository_config_change_selects_every_manifest(origin: Path) -> None:
    before = git(origin, "rev-parse", "HEAD")
    commit(origin, {"bojdeploy.yaml": "prune: true\n"})

    selection = detect(origin, before)

    assert selection.full
    assert selection.paths() == sorted(MANIFESTS)
    assert selection.reason_for("deploy/db.yml") == "bojdeploy.yaml changed"


def test_deleted_manifest_is_reported_not_selected(origin: Path) -> None:
    before = git(origin, "rev-parse", "HEAD")
    commit(origin, {"deploy/cache.yml": None})

    selection = detect(origin, before)

    assert selection.deleted == ("deploy/cache.yml",)
    assert selection.selected == ()


def test_rename_counts_as_delete_and_add_even_with_rename_detection_on(origin: Path) -> None:
    git(origin, "config", "diff.renames", "true")
    before = git(origin, "rev-parse", "HEAD")
    git(origin, "mv", "deploy/web.yml", "deploy/frontend.yml")
    after = commit(origin, {})

    selection = detect(origin, before)

    assert selection.deleted == ("deploy/web.yml",)
    assert selection.paths() == ["deploy/frontend.yml"]
    assert selection.reason_for("deploy/frontend.yml") == f"added in {before[:7]}..{after[:7]}"


def test_odd_file_names_survive_the_diff(origin: Path) -> None:
    before = git(origin, "rev-parse", "HEAD")
    commit(origin, {"deploy/my app\tv2.yml": "x\n", "deploy/café.yml": "y\n"})

    selection = detect(origin, before)

    assert selection.paths() == ["deploy/café.yml", "deploy/my app\tv2.yml"]


def test_before_given_as_a_revision_name(origin: Path) -> None:
    commit(origin, {"deploy/api.yml": "image: api:2\n"})
    commit(origin, {"deploy/db.yml": "image: db:2\n"})

    assert detect(origin, "HEAD~1").paths() == ["deploy/db.yml"]
    assert detect(origin, "main~2").paths() == ["deploy/api.yml", "deploy/db.yml"]
    assert detect(origin, "HEAD").selected == ()


def test_unknown_after_commit_is_an_error(origin: Path) -> None:
    with pytest.raises(BojdeployError, match="commit f{40} is not in the clone"):
        GitRepo(origin).detect_changes(ZERO_SHA, "f" * 40, MANIFESTS, {}, patterns=PATTERNS)


def test_info_describes_head(origin: Path) -> None:
    sha = git(origin, "rev-parse", "HEAD")
    git(origin, "remote", "add", "origin", "https://gitea.example/acme/shop.git")

    assert GitRepo(origin).info() == GitInfo(sha, sha[:7], "main", "refs/heads/main", "acme/shop")
    assert GitRepo(origin).info(repository="ops/deploy").repository == "ops/deploy"


@pytest.mark.parametrize(
    ("url", "repository"),
    [
        ("git@gitea.example:acme/shop.git", "acme/shop"),
        ("ssh://git@gitea.example:2222/acme/shop", "acme/shop"),
        ("https://gitea.example/sub/path/acme/shop/", "acme/shop"),
    ],
)
def test_info_reads_owner_and_name_from_any_remote_url(
    origin: Path, url: str, repository: str
) -> None:
    git(origin, "remote", "add", "origin", url)

    assert GitRepo(origin).info().repository == repository


def test_info_on_detached_head_as_in_ci(origin: Path) -> None:
    sha = git(origin, "rev-parse", "HEAD")
    git(origin, "checkout", "-q", "--detach")

    assert GitRepo(origin).info() == GitInfo(sha, sha[:7], "", "", "origin")
    assert GitRepo(origin).info(branch="release/1").ref == "refs/heads/release/1"


def test_find_walks_up_to_the_work_tree(
    origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    plain = tmp_path / "plain"
    plain.mkdir()

    found = GitRepo.find(origin / "deploy" / "web.yml")

    assert found is not None and found.root == origin
    assert GitRepo.find(plain) is None


def test_git_outside_a_repository_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))

    with pytest.raises(UsageError, match="is not in a git repository"):
        GitRepo(tmp_path).info()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the repository to another user")
def test_repository_owned_by_another_user_still_works(origin: Path) -> None:
    subprocess.run(["chown", "-R", "nobody", str(origin)], check=True)

    assert GitRepo(origin).info().branch == "main"

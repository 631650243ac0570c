"""`apply` on a repository of several containers: prune, dry run, changed-since, dependencies."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from tests.helpers import git_identity, run_cli

REGISTRY = "127.0.0.1:5000/bojdeploy-test"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]


class Repo:
    """A git repository of container manifests and its SQLite state."""

    def __init__(self, root: Path, docker: Any):
        self.root, self.docker = root, docker
        self.prefix = f"bdrepo-{uuid.uuid4().hex[:6]}"
        self.db = f"sqlite:///{root.parent / 'state.db'}"
        (root / "deploy").mkdir(parents=True)
        (root / "bojdeploy.yaml").write_text("environments:\n  test: {branches: ['*']}\n")
        subprocess.run([*GIT, "init", "-q", "-b", "main", str(root)], check=True)

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def write(
        self,
        short: str,
        image: str = "web:1",
        env: str = "one",
        depends_on: tuple[str, ...] = (),
        health: bool = False,
    ) -> None:
        deps = f"  depends_on: [{', '.join(self.name(d) for d in depends_on)}]\n"
        check = (
            "  healthcheck: {test: [CMD, wget, -qO-, 'http://127.0.0.1/'], interval: 1s, "
            "timeout: 1s, retries: 2}\n  timeout: 15s\n"
            if health
            else ""
        )
        (self.root / "deploy" / f"{short}.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata:\n  name: {self.name(short)}\n"
            + (deps if depends_on else "")
            + f"spec:\n  image: {REGISTRY}/{image}\n  env: {{MODE: {env}}}\n"
            "  labels: {io.bojdeploy.test: 'true'}\n  stop_timeout: 1s\n" + check
        )

    def commit(self) -> str:
        subprocess.run([*GIT, "-C", str(self.root), "add", "-A"], check=True)
        subprocess.run([*GIT, "-C", str(self.root), "commit", "-qm", "change"], check=True)
        out = subprocess.run(
            ["git", "-C", str(self.root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def apply(self, *extra: str) -> Any:
        return run_cli("--database-url", self.db, "apply", "--env", "test", *extra, str(self.root))

    def running(self) -> set[str]:
        found = self.docker.containers.list(all=True, filters={"name": self.prefix})
        return {c.name for c in found if c.status == "running"}

    def rows(self, short: str) -> list[Any]:
        with open_store(self.db) as store:
            return store.list_deployments(name=self.name(short), limit=50)


@pytest.fixture
def repo(tmp_path: Path, docker_client: Any, test_images: Any) -> Iterator[Repo]:
    r = Repo(tmp_path / "repo", docker_client)
    yield r
    for c in docker_client.containers.list(all=True, filters={"name": r.prefix}):
        c.remove(force=True)


def test_dry_run_changes_nothing(repo: Repo) -> None:
    repo.write("a")
    result = repo.apply("--dry-run")
    assert result.code == 0, result.err
    assert "+ create" in result.out and repo.name("a") in result.out
    assert repo.running() == set()
    assert repo.rows("a") == []


def test_prune_removes_only_managed_containers_whose_manifest_is_gone(repo: Repo) -> None:
    git_identity(repo.root, f"team/{repo.prefix}")
    repo.write("a")
    repo.write("b")
    assert repo.apply().code == 0
    stranger = repo.docker.containers.run(
        f"{REGISTRY}/web:1",
        name=repo.name("stranger"),
        detach=True,
        labels={"io.bojdeploy.test": "true"},
    )
    (repo.root / "deploy" / "b.yml").unlink()

    kept = repo.apply()
    assert kept.code == 0
    assert repo.running() == {repo.name("a"), repo.name("b"), stranger.name}
    assert "use --prune" in kept.err

    pruned = repo.apply("--prune")
    assert pruned.code == 0, pruned.err
    assert repo.running() == {repo.name("a"), stranger.name}
    row = repo.rows("b")[0]
    assert (row.status, row.reason) == ("completed", "manifest deleted")


def test_changed_since_applies_only_what_changed(repo: Repo) -> None:
    repo.write("a")
    repo.write("b")
    first = repo.commit()
    assert repo.apply().code == 0
    repo.write("b", env="two")
    repo.commit()
    result = repo.apply("--changed-since", first)
    assert result.code == 0, result.err
    assert len(repo.rows("a")) == 1  # not considered at all
    assert [r.status for r in repo.rows("b")] == ["completed", "completed"]
    assert "modified in" in (repo.rows("b")[0].reason or "")


def test_a_failed_dependency_blocks_its_dependents(repo: Repo) -> None:
    repo.write("db", image="unhealthy:1", health=True)
    repo.write("app", depends_on=("db",))
    repo.write("web", depends_on=("app",))
    repo.write("other")
    result = repo.apply()
    assert result.code == 1
    assert repo.rows("db")[0].status == "failed"
    app = repo.rows("app")[0]
    assert app.status == "failed" and "dependency" in (app.error_message or "")
    web = repo.rows("web")[0]
    assert web.status == "failed" and "dependency" in (web.error_message or "")
    assert {repo.name("app"), repo.name("web")}.isdisjoint(repo.running())
    assert repo.rows("other")[0].status == "completed"

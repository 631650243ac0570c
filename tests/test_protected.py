"""`protected: true` environments: applies and rollbacks only from their branches, deletes only
with --allow-delete; a refusal says why, exits 2 and changes nothing. Plans still work."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.core.config import RepoConfig
from bojdeploy.core.plan import Action, Plan, Step
from bojdeploy.engine.protection import branch_refusal, delete_refusal, destroys, plan_notes
from bojdeploy.store import open_store
from tests.action import TOKEN, push_event, statuses
from tests.action.test_entrypoint import ZERO, Scenario
from tests.fakes.fake_gitea import FakeGitea
from tests.helpers import run_cli

REGISTRY = "127.0.0.1:5000/bojdeploy-test"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
CONFIG = {
    "environments": {
        "prod": {"branches": ["main", "release/*"], "protected": True},
        "dev": {"branches": ["*"]},
    }
}


def config() -> RepoConfig:
    return RepoConfig.model_validate(CONFIG)


@pytest.mark.parametrize(
    ("environment", "branch", "refused"),
    [
        ("prod", "main", False),
        ("prod", "release/2.0", False),
        ("prod", "feature/x", True),
        ("prod", "Main", True),  # branch patterns are case-sensitive, as for environments
        ("prod", "", True),  # a detached HEAD is no branch of prod
        ("dev", "feature/x", False),
        ("dev", "", False),
    ],
)
def test_which_branches_may_change_a_protected_environment(
    environment: str, branch: str, refused: bool
) -> None:
    why = branch_refusal(config(), environment, branch, "apply")
    assert (why is not None) == refused
    if why:
        assert why.startswith("environment prod is protected: apply is refused from ")
        assert "(main, release/*)" in why and why.endswith("nothing was changed")


def step(action: Action, kind: str, name: str = "x", environment: str = "prod") -> Step:
    return Step(action, kind, name, environment, None, None)


@pytest.mark.parametrize(
    ("action", "kind", "deletes"),
    [
        (Action.DELETE, "container", True),
        (Action.DELETE, "service", True),
        (Action.DELETE, "vm", True),
        (Action.REPLACE, "vm", True),  # on_change: recreate destroys the VM and its disks
        (Action.REPLACE, "container", False),  # the same container, a new version
        (Action.UPDATE, "vm", False),
        (Action.CREATE, "service", False),
    ],
)
def test_what_counts_as_a_delete(action: Action, kind: str, deletes: bool) -> None:
    assert destroys(step(action, kind)) == deletes


def test_deletes_in_a_protected_environment_need_consent() -> None:
    plan = Plan("prod", (step(Action.DELETE, "container", "old"), step(Action.CREATE, "vm", "n")))
    why = delete_refusal(config(), "prod", plan, allow_delete=False)
    assert why is not None and "deleting container/old needs --allow-delete" in why
    assert delete_refusal(config(), "prod", plan, allow_delete=True) is None
    dev = Plan("dev", (step(Action.DELETE, "container", "old", "dev"),))
    assert delete_refusal(config(), "dev", dev, allow_delete=False) is None
    assert plan_notes(config(), "prod", "main", Plan("prod", ())) == []
    assert plan_notes(config(), "prod", "feature", plan) == [
        "environment prod is protected: an apply from branch 'feature' would be refused "
        "(its branches: main, release/*)",
        "environment prod is protected: an apply would delete container/old only with "
        "--allow-delete",
    ]


class Repo:
    """A git repository with a protected `prod` (branch main) and an open `dev`."""

    def __init__(self, root: Path, db: str):
        self.root, self.db = root, db
        self.prefix = f"bdprot-{uuid.uuid4().hex[:6]}"
        (root / "deploy").mkdir(parents=True)
        (root / "bojdeploy.yaml").write_text(
            "environments:\n  prod: {branches: [main], protected: true}\n  dev: {branches: ['*']}\n"
        )
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", "http://gitea.example/team/protected.git")

    def git(self, *args: str) -> None:
        subprocess.run([*GIT, "-C", str(self.root), *args], check=True, capture_output=True)

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def write(self, short: str, image: str = "web:1") -> None:
        (self.root / "deploy" / f"{short}.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: {self.name(short)}}}\n"
            f"spec:\n  image: {REGISTRY}/{image}\n"
            "  labels: {io.bojdeploy.test: 'true'}\n  stop_timeout: 1s\n"
        )

    def commit(self) -> None:
        self.git("add", "-A")
        self.git("commit", "-qm", "change")

    def cli(self, *args: str) -> Any:
        return run_cli("--database-url", self.db, *args, str(self.root))

    def rows(self) -> list[Any]:
        with open_store(self.db) as store:
            return store.list_deployments(limit=100)

    def containers(self, docker: Any) -> dict[str, str]:
        found = docker.containers.list(all=True, filters={"name": self.prefix})
        return {c.name: c.id for c in found}


@pytest.fixture
def repo(tmp_path: Path, test_images: Any, docker_cleanup: None) -> Iterator[Repo]:
    yield Repo(tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}")


def test_a_protected_environment_changes_only_from_its_branches(
    repo: Repo, docker_client: Any
) -> None:
    repo.write("web")
    repo.commit()
    repo.git("checkout", "-q", "-b", "feature")

    refused = repo.cli("apply", "--env", "prod")
    assert refused.code == 2
    assert refused.err.strip().splitlines() == [
        "error: environment prod is protected: apply is refused from branch 'feature'; "
        "only from its branches in bojdeploy.yaml (main); nothing was changed"
    ]
    assert repo.containers(docker_client) == {} and repo.rows() == []

    plan = repo.cli("plan", "--env", "prod")
    assert plan.code == 0 and "+ create" in plan.out
    assert "note: environment prod is protected: an apply from branch 'feature'" in plan.err
    dry = repo.cli("apply", "--env", "prod", "--dry-run")
    assert dry.code == 0 and "would be refused" in dry.err
    assert repo.cli("apply", "--env", "dev").code == 0  # dev is not protected (the same name)
    for container in docker_client.containers.list(all=True, filters={"name": repo.prefix}):
        container.remove(force=True)

    repo.git("checkout", "-q", "main")
    assert repo.cli("apply", "--env", "prod").code == 0
    repo.write("web", image="web:2")
    repo.commit()
    assert repo.cli("apply", "--env", "prod").code == 0
    running, rows = repo.containers(docker_client), len(repo.rows())
    first = next(r for r in reversed(repo.rows()) if r.environment == "prod")

    repo.git("checkout", "-q", "feature")
    back = repo.cli("rollback", str(first.id))
    assert back.code == 2
    assert "environment prod is protected: rollback is refused from branch 'feature'" in back.err
    assert repo.containers(docker_client) == running and len(repo.rows()) == rows
    repo.git("checkout", "-q", "main")
    assert repo.cli("rollback", str(first.id)).code == 0


def test_prune_in_a_protected_environment_needs_allow_delete(
    repo: Repo, docker_client: Any
) -> None:
    repo.write("web")
    repo.write("old")
    repo.commit()
    assert repo.cli("apply", "--env", "prod").code == 0
    (repo.root / "deploy" / "old.yml").unlink()
    repo.write("web", image="web:2")  # a change beside the delete: it must not go through either
    repo.commit()
    running, rows = repo.containers(docker_client), len(repo.rows())

    refused = repo.cli("apply", "--env", "prod", "--prune")
    assert refused.code == 2
    assert (
        f"environment prod is protected: deleting container/{repo.name('old')} needs "
        "--allow-delete" in refused.err
    )
    assert repo.containers(docker_client) == running and len(repo.rows()) == rows

    allowed = repo.cli("apply", "--env", "prod", "--prune", "--allow-delete")
    assert allowed.code == 0, allowed.err
    assert set(repo.containers(docker_client)) == {repo.name("web")}


@pytest.fixture
def gitea() -> Iterator[FakeGitea]:
    fake = FakeGitea(token=TOKEN).start()
    yield fake
    fake.stop()


@pytest.mark.usefixtures("test_images", "docker_cleanup")
def test_the_action_needs_allow_delete_to_prune_a_protected_environment(
    tmp_path: Path, gitea: FakeGitea, docker_client: Any
) -> None:
    scenario = Scenario(tmp_path, gitea, docker_client)
    repo = scenario.repo
    (repo.root / "bojdeploy.yaml").write_text(
        "environments:\n  production: {branches: [main], protected: true}\n"
        "  staging: {branches: [staging]}\n"
    )
    repo.write("web")
    repo.write("old")
    first = repo.commit("two containers")
    created = scenario.push(ZERO, first)
    assert created.code == 0 and scenario.exists("old"), created.out
    (repo.root / "deploy" / "old.yml").unlink()
    second = repo.commit("old is gone")

    event = push_event(first, second)
    wrong = scenario.run(
        "push", event, sha=second, ref="refs/heads/staging", environment="production"
    )
    assert wrong.code == 2 and "apply is refused from branch 'staging'" in wrong.out
    refused = scenario.push(first, second, prune="true")
    assert refused.code == 2, refused.out
    overall = statuses(gitea, second)["bojdeploy/production"][-1]
    assert overall[0] == "error" and "needs --allow-delete" in overall[1]
    assert scenario.exists("old")

    allowed = scenario.push(first, second, prune="true", allow_delete="true")
    assert allowed.code == 0, allowed.out
    assert not scenario.exists("old") and scenario.exists("web")

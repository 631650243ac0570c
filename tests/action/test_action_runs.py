"""What the action leaves behind without deploying: run links, skipped branches, file owners."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.frontends.action.run import main
from tests.action import (
    OWNER,
    REPO,
    DeployRepo,
    act_environment,
    dispatch_event,
    pull_request_event,
    push_event,
    read_outputs,
)
from tests.fakes.fake_gitea import FakeGitea

ZERO = "0" * 40
VERSION_PATH = "/version"
UNREACHABLE_DOCKER = {"DOCKER_HOST": "tcp://127.0.0.1:1"}  # these runs must not need Docker


def run(
    root: Path,
    gitea: FakeGitea,
    event_name: str,
    event: dict[str, Any],
    sha: str,
    ref: str = "refs/heads/main",
    **inputs: str,
) -> tuple[int, str, dict[str, str], str]:
    runner = root.parent / "runner"
    values = {
        "database-url": f"sqlite:///{runner / 'state.db'}",
        **{k.replace("_", "-"): v for k, v in inputs.items()},
    }
    env = act_environment(root, runner, gitea, event_name, event, sha=sha, ref=ref, inputs=values)
    env.update(UNREACHABLE_DOCKER)
    out = io.StringIO()
    code = main(env, out)
    summary = runner / "SUMMARY.md"
    text = summary.read_text() if summary.exists() else ""
    return code, out.getvalue(), read_outputs(runner / "outputcmd.txt"), text


def broken_push(repo: DeployRepo) -> str:
    """A commit whose manifest is invalid: the run sets statuses and stops before Docker."""
    repo.write("web")
    path = repo.root / "deploy" / "web.yml"
    path.write_text(path.read_text().replace("  stop_timeout:", "  stop_timout:"))
    return repo.commit("a typo")


def target_urls(gitea: FakeGitea, sha: str) -> set[str]:
    return {s["target_url"] for s in gitea.statuses[sha]}


@pytest.mark.parametrize(
    ("version", "run"),
    [
        ("1.25.4", "runs/7"),  # GITHUB_RUN_NUMBER: Gitea up to 1.25 addresses runs by number
        ("1.26.0", "runs/42"),  # GITHUB_RUN_ID: from 1.26 on, by id
        ("11.0.1+gitea-1.22.0", "runs/7"),  # Forgejo
    ],
)
def test_statuses_link_the_run_as_gitea_addresses_it(
    repo: DeployRepo, gitea: FakeGitea, version: str, run: str
) -> None:
    gitea.version = version
    sha = broken_push(repo)
    code, out, _, _ = run_push(repo, gitea, sha)
    assert code == 2, out
    assert target_urls(gitea, sha) == {f"{gitea.url}/{OWNER}/{REPO}/actions/{run}"}
    assert [c.path for c in gitea.calls].count(f"/api/v1{VERSION_PATH}") == 1  # once per run


def test_without_gitea_s_version_statuses_link_the_actions_page(
    repo: DeployRepo, gitea: FakeGitea
) -> None:
    gitea.fail("GET", VERSION_PATH, 500)
    sha = broken_push(repo)
    code, out, _, _ = run_push(repo, gitea, sha)
    assert code == 2, out
    assert target_urls(gitea, sha) == {f"{gitea.url}/{OWNER}/{REPO}/actions"}
    assert "cannot tell Gitea's version" in out and "status links lead to" in out


def run_push(repo: DeployRepo, gitea: FakeGitea, sha: str) -> tuple[int, str, dict[str, str], str]:
    return run(repo.root, gitea, "push", push_event(ZERO, sha), sha)


def test_a_push_to_a_branch_without_environment_is_a_notice(
    repo: DeployRepo, gitea: FakeGitea
) -> None:
    sha = broken_push(repo)  # never even loaded
    code, out, outputs, summary = run(
        repo.root, gitea, "push", push_event(ZERO, sha), sha, ref="refs/heads/feature/x"
    )
    assert code == 0, out
    assert "::notice::branch 'feature/x' maps to no environment in bojdeploy.yaml" in out
    assert "::error::" not in out
    assert gitea.statuses == {}
    assert outputs == {"result": "unchanged", "deployments": "[]"}
    assert "maps to no environment" in summary


def test_a_pull_request_into_a_branch_without_environment_is_a_notice(
    repo: DeployRepo, gitea: FakeGitea
) -> None:
    sha = broken_push(repo)
    event = pull_request_event(sha, sha)
    event["pull_request"]["base"].update(ref="experiments", label="experiments")
    code, out, outputs, _ = run(
        repo.root, gitea, "pull_request", event, sha, ref="refs/pull/9/head"
    )
    assert code == 0, out
    assert "::notice::branch 'experiments' maps to no environment" in out
    assert gitea.statuses == {} and outputs["result"] == "unchanged"


def test_a_manual_run_on_a_branch_without_environment_still_fails(
    repo: DeployRepo, gitea: FakeGitea
) -> None:
    sha = broken_push(repo)
    code, out, _, _ = run(
        repo.root, gitea, "workflow_dispatch", dispatch_event(), sha, ref="refs/heads/feature/x"
    )
    assert code == 2
    assert "::error::branch 'feature/x' maps to no environment" in out


def owned_by_root(root: Path) -> list[str]:
    found = [root] if root.lstat().st_uid == 0 else []
    for folder, dirs, files in os.walk(root):
        found += [Path(folder, n) for n in (*dirs, *files) if Path(folder, n).lstat().st_uid == 0]
    return [str(p.relative_to(root.parent)) for p in found]


def test_a_host_folder_workspace_is_left_to_its_owner(tmp_path: Path, gitea: FakeGitea) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, as the action container runs (to make root-owned files)")
    origin = DeployRepo(tmp_path / "origin", "own")
    origin.write("web")
    first = origin.commit("web")
    for n in range(3):
        (origin.root / "README.md").write_text(f"notes {n}\n")
        last = origin.commit(f"notes {n}")
    workspace = tmp_path / "workspace"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{origin.root}", str(workspace)], check=True
    )
    subprocess.run(["chown", "-R", "1000:1000", str(workspace)], check=True)
    database = f"sqlite:///{workspace / '.bojdeploy-state.db'}"  # written in the workspace too

    code, out, _, _ = run(
        workspace, gitea, "push", push_event(first, last), last, database_url=database
    )

    assert code == 0, out
    assert "deepened the shallow clone" in out  # git fetched history as root
    assert (workspace / ".bojdeploy-state.db").exists()
    assert owned_by_root(workspace) == []
    assert {(p.stat().st_uid, p.stat().st_gid) for p in workspace.rglob("*")} == {(1000, 1000)}


def test_outside_act_runner_the_token_default_is_no_token(
    repo: DeployRepo, gitea: FakeGitea
) -> None:
    sha = broken_push(repo)
    runner = repo.root.parent / "runner"
    env = act_environment(
        repo.root,
        runner,
        gitea,
        "push",
        push_event(ZERO, sha),
        sha=sha,
        ref="refs/heads/main",
        inputs={},
    )
    del env["INPUT_TOKEN"]  # act_runner would have set it to the run's token
    out = io.StringIO()
    assert main(env, out) == 2
    assert "::warning::no token input" in out.getvalue() and gitea.calls == []

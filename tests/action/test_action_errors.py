"""The action's exits without deploying: bad inputs, invalid manifests, no token (no Docker)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bojdeploy.frontends.action.run import main
from tests.action import (
    TOKEN,
    DeployRepo,
    act_environment,
    dispatch_event,
    pull_request_event,
    push_event,
    read_outputs,
    statuses,
)
from tests.fakes.fake_gitea import FakeGitea

ZERO = "0" * 40


def environment(
    repo: DeployRepo, gitea: FakeGitea, event_name: str, event: dict, sha: str, **inputs: str
) -> dict[str, str]:
    """act_runner's environment for `event`, the runner's folder and database beside the repo."""
    runner = repo.root.parent / "runner"
    values = {"database-url": f"sqlite:///{runner / 'state.db'}", **inputs}
    ref = "refs/pull/9/head" if event_name == "pull_request" else "refs/heads/main"
    return act_environment(
        repo.root, runner, gitea, event_name, event, sha=sha, ref=ref, inputs=values
    )


def run(
    repo: DeployRepo, gitea: FakeGitea, event_name: str, event: dict, sha: str, **inputs: str
) -> tuple[int, str, dict[str, str]]:
    env = environment(repo, gitea, event_name, event, sha, **inputs)
    out = io.StringIO()
    code = main(env, out)
    return code, out.getvalue(), read_outputs(repo.root.parent / "runner" / "outputcmd.txt")


def broken_manifest(repo: DeployRepo) -> str:
    repo.write("web")
    path = repo.root / "deploy" / "web.yml"
    path.write_text(path.read_text().replace("  stop_timeout:", "  stop_timout:"))
    return repo.commit("a typo")


def test_invalid_manifest_on_push_is_an_error_status_and_exit_2(
    repo: DeployRepo, gitea: FakeGitea
) -> None:
    sha = broken_manifest(repo)
    code, out, outputs = run(repo, gitea, "push", push_event(ZERO, sha), sha)
    assert code == 2
    assert "::error::deploy/web.yml:" in out and "stop_timout" in out
    assert statuses(gitea, sha) == {
        "bojdeploy/production": [
            ("pending", "deploying to production"),
            ("error", "1 problem in the manifests; nothing deployed"),
        ]
    }
    assert outputs == {"result": "failure", "deployments": "[]"}


def test_invalid_manifest_in_a_pull_request_fails_the_plan_check(
    repo: DeployRepo, gitea: FakeGitea
) -> None:
    sha = broken_manifest(repo)
    code, _, _ = run(repo, gitea, "pull_request", pull_request_event(sha, sha), sha)
    assert code == 2
    assert statuses(gitea, sha)["bojdeploy/production"][-1][0] == "failure"


def test_a_missing_secret_stops_a_deploy_but_not_a_plan(repo: DeployRepo, gitea: FakeGitea) -> None:
    repo.write("web", secret=True)
    sha = repo.commit("web with a secret")
    env = environment(repo, gitea, "push", push_event(ZERO, sha), sha)
    del env["APP_SESSION"]
    out = io.StringIO()
    assert main(env, out) == 2
    assert "APP_SESSION" in out.getvalue()


@pytest.mark.parametrize(
    ("inputs", "form", "message"),
    [
        ({"mode": "deploy-everything"}, {}, "input mode: expected one of auto, plan, apply"),
        ({"parallel": "0"}, {}, "input parallel"),
        ({}, {"action": "redeploy"}, "redeploy needs the name"),
        ({}, {"action": "destroy"}, "action: expected one of deploy, redeploy, rollback"),
        ({}, {"action": "rollback"}, "rollback needs either deployment-id or name"),
        ({}, {"action": "rollback", "deployment_id": "twelve"}, "deployment-id: expected a number"),
        ({}, {"action": "deploy", "dry_run": "perhaps"}, "dry-run: expected 'true' or 'false'"),
    ],
)
def test_bad_inputs_exit_2(
    repo: DeployRepo, gitea: FakeGitea, inputs: dict[str, str], form: dict[str, str], message: str
) -> None:
    repo.write("web")
    sha = repo.commit("web")
    event_name = "workflow_dispatch" if form else "push"
    event = dispatch_event(**form) if form else push_event(ZERO, sha)
    code, out, outputs = run(repo, gitea, event_name, event, sha, **inputs)
    assert code == 2, out
    assert f"::error::{message}" in out
    assert outputs["result"] == "failure"


def test_without_a_token_nothing_is_sent_to_gitea(repo: DeployRepo, gitea: FakeGitea) -> None:
    sha = broken_manifest(repo)
    code, out, _ = run(repo, gitea, "push", push_event(ZERO, sha), sha, token="")
    assert code == 2
    assert "::warning::no token input" in out
    assert gitea.calls == []


def test_an_unreadable_event_file_is_a_usage_error(repo: DeployRepo, gitea: FakeGitea) -> None:
    sha = broken_manifest(repo)
    runner = repo.root.parent / "runner"
    env = act_environment(
        repo.root, runner, gitea, "push", {}, sha=sha, ref="refs/heads/main", inputs={}
    )
    Path(env["GITHUB_EVENT_PATH"]).write_text("{not json")
    out = io.StringIO()
    assert main(env, out) == 2
    assert "::error::cannot read the event file" in out.getvalue()
    assert read_outputs(runner / "outputcmd.txt")["result"] == "failure"


@pytest.mark.parametrize("debug", [{}, {"RUNNER_DEBUG": "1"}, {"ACTIONS_STEP_DEBUG": "true"}])
def test_an_unexpected_exception_is_one_error_line(
    repo: DeployRepo, gitea: FakeGitea, monkeypatch: pytest.MonkeyPatch, debug: dict[str, str]
) -> None:
    from bojdeploy import engine

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug\nacross two lines")

    monkeypatch.setattr(engine, "prepare", broken)
    repo.write("web")
    sha = repo.commit("web")
    env = environment(repo, gitea, "push", push_event(ZERO, sha), sha)
    out = io.StringIO()
    assert main({**env, **debug}, out) == 1
    text = out.getvalue()
    said = "internal error: RuntimeError: a bug across two lines"
    errors = [line for line in text.splitlines() if line.startswith("::error::")]
    if debug:
        assert errors == [f"::error::{said}"]
        assert "Traceback (most recent call last):" in text
    else:
        hint = "re-run with debug logging (RUNNER_DEBUG=1) for the traceback"
        assert errors == [f"::error::{said}; {hint}"]
        assert "Traceback" not in text
    assert statuses(gitea, sha)["bojdeploy/production"][-1] == ("failure", said)


def test_debug_logging_shows_the_gitea_calls_and_never_the_token(
    repo: DeployRepo, gitea: FakeGitea
) -> None:
    sha = broken_manifest(repo)
    env = environment(repo, gitea, "push", push_event(ZERO, sha), sha)
    env["RUNNER_DEBUG"] = "1"
    out = io.StringIO()
    assert main(env, out) == 2
    calls = [x for x in out.getvalue().splitlines() if x.startswith("debug: urllib3")]
    assert any('"POST /api/v1/repos/' in x and "/statuses/" in x for x in calls), out.getvalue()
    shown = [x for x in out.getvalue().splitlines() if not x.startswith("::add-mask::")]
    assert not [x for x in shown if TOKEN in x]
    quiet = io.StringIO()
    assert main({**env, "RUNNER_DEBUG": "0"}, quiet) == 2
    assert "debug: urllib3" not in quiet.getvalue()

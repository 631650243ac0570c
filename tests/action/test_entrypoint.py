"""entrypoint.py run as act_runner runs it, against the real Docker Engine and a fake Gitea."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from tests.action import (
    OWNER,
    REPO,
    SECRET,
    STATUS_PATH,
    TOKEN,
    ActionResult,
    DeployRepo,
    act_environment,
    dispatch_event,
    pull_request_event,
    push_event,
    run_entrypoint,
    statuses,
)
from tests.fakes.fake_gitea import FakeGitea

pytestmark = pytest.mark.docker
ZERO = "0" * 40


class Scenario:
    """A deployment repository, its state database, and runs of the action on it."""

    def __init__(self, tmp: Path, gitea: FakeGitea, docker: Any):
        self.repo = DeployRepo(tmp / "workspace", uuid.uuid4().hex[:8])
        self.runner = tmp / "runner"
        self.gitea = gitea
        self.docker = docker
        self.db_url = f"sqlite:///{tmp / 'state.db'}"
        self.extra: dict[str, str] = {}

    def run(
        self,
        event_name: str,
        event: dict[str, Any],
        *,
        sha: str,
        ref: str = "refs/heads/main",
        **inputs: str,
    ) -> ActionResult:
        values = {
            "database-url": self.db_url,
            **{k.replace("_", "-"): v for k, v in inputs.items()},
        }
        env = act_environment(
            self.repo.root,
            self.runner,
            self.gitea,
            event_name,
            event,
            sha=sha,
            ref=ref,
            inputs=values,
        )
        env.update(self.extra)
        result = run_entrypoint(env, self.runner)
        assert self.gitea.problems == []
        assert result.leaks(TOKEN, SECRET) == []
        return result

    def push(self, before: str, after: str, **inputs: str) -> ActionResult:
        return self.run("push", push_event(before, after), sha=after, **inputs)

    def dispatch(self, sha: str, **form: str) -> ActionResult:
        return self.run("workflow_dispatch", dispatch_event(**form), sha=sha)

    def container(self, key: str) -> Any:
        return self.docker.containers.get(self.repo.name(key))

    def exists(self, key: str) -> bool:
        return bool(self.docker.containers.list(all=True, filters={"name": self.repo.name(key)}))

    def page(self, key: str) -> str:
        url = f"http://127.0.0.1:{self.repo.ports[key]}/"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return str(answer.read().decode().strip())

    def rows(self, key: str) -> list[Any]:
        with open_store(self.db_url) as store:
            return store.list_deployments(name=self.repo.name(key), limit=50)


@pytest.fixture
def scenario(
    tmp_path: Path, gitea: FakeGitea, docker_client: Any, test_images: Any, docker_cleanup: None
) -> Iterator[Scenario]:
    yield Scenario(tmp_path, gitea, docker_client)


def test_push_deploys_only_changed_manifests(scenario: Scenario) -> None:
    repo = scenario.repo
    repo.write("a")
    repo.write("b", secret=True)
    first = repo.commit("two web containers")
    repo.write("b", mode="two", secret=True)
    second = repo.commit("change b")

    result = scenario.push(first, second)

    assert result.code == 0, result.out
    assert not scenario.exists("a")
    assert scenario.page("b") == "version 1"
    assert f"SESSION={SECRET}" in scenario.container("b").attrs["Config"]["Env"]
    history = statuses(scenario.gitea, second)
    b, overall = f"bojdeploy/production/{repo.name('b')}", "bojdeploy/production"
    assert set(history) == {b, overall}
    assert [s for s, _ in history[b]] == ["pending", "success"]
    assert [s for s, _ in history[overall]] == ["pending", "success"]
    assert history[b][1][1].startswith(f"created container {repo.name('b')}")
    assert history[overall][1][1].startswith("1 deployed in ")
    urls = {s["target_url"] for s in scenario.gitea.statuses[second]}
    assert urls == {f"{scenario.gitea.url}/{OWNER}/{REPO}/actions/runs/7"}  # Gitea 1.25: number
    assert result.outputs["result"] == "success"
    [deployment] = json.loads(result.outputs["deployments"])
    assert deployment == {
        "id": scenario.rows("b")[0].id,
        "name": repo.name("b"),
        "kind": "container",
        "action": "create",
        "status": "completed",
    }
    assert f"::group::container/{repo.name('b')}" in result.out
    assert f"| completed | container | {repo.name('b')} |" in result.summary
    assert f"::add-mask::{SECRET}" in result.out and f"::add-mask::{TOKEN}" in result.out


def test_failing_deployment_sets_failure_statuses(scenario: Scenario) -> None:
    repo = scenario.repo
    repo.write("bad", image="unhealthy:1")
    sha = repo.commit("a container that never gets healthy")

    result = scenario.push(ZERO, sha)  # a new branch: every manifest

    assert result.code == 1, result.out
    history = statuses(scenario.gitea, sha)
    state, description = history[f"bojdeploy/production/{repo.name('bad')}"][-1]
    assert state == "failure"
    assert description.startswith("failed: ") and "health" in description
    overall = history["bojdeploy/production"][-1]
    assert overall[0] == "failure" and repo.name("bad") in overall[1]
    assert result.outputs["result"] == "failure"
    assert "before is all zeros" in result.out


def test_unreachable_docker_sets_error_statuses(scenario: Scenario) -> None:
    repo = scenario.repo
    repo.write("web")
    sha = repo.commit("web")
    scenario.extra = {"DOCKER_HOST": "tcp://127.0.0.1:1"}

    result = scenario.push(ZERO, sha)

    assert result.code == 3, result.out
    history = statuses(scenario.gitea, sha)
    for context in (f"bojdeploy/production/{repo.name('web')}", "bojdeploy/production"):
        assert [s for s, _ in history[context]] == ["pending", "error"]
        assert "cannot reach Docker" in history[context][-1][1]
    assert result.outputs == {"result": "failure", "deployments": "[]"}


def test_pull_request_plans_and_keeps_one_comment(scenario: Scenario) -> None:
    repo = scenario.repo
    repo.write("web")
    base = repo.commit("web")
    repo.write("api")
    head = repo.commit("add api")

    first = scenario.run(
        "pull_request",
        pull_request_event(base, head),
        sha=head,
        ref="refs/pull/9/head",
        comment="true",
    )
    repo.write("api", mode="two")
    head2 = repo.commit("tune api")
    second = scenario.run(
        "pull_request",
        pull_request_event(base, head2),
        sha=head2,
        ref="refs/pull/9/head",
        comment="true",
    )

    assert (first.code, second.code) == (0, 0), first.out + second.out
    assert not scenario.exists("web") and not scenario.exists("api")
    for sha in (head, head2):
        [(state, description)] = statuses(scenario.gitea, sha)["bojdeploy/production"][1:]
        assert (state, description) == ("success", "2 to create")
    [comment] = scenario.gitea.comments[9]
    assert (
        "bojdeploy plan for `production`" in comment["body"] and repo.name("api") in comment["body"]
    )
    assert head2[:7] in comment["body"]
    methods = [c.method for c in scenario.gitea.calls if "comments" in c.path]
    assert methods == ["GET", "POST", "GET", "PATCH"]
    assert first.outputs["result"] == "success"


def test_dispatch_redeploy_and_rollback(scenario: Scenario) -> None:
    repo = scenario.repo
    repo.write("web")
    first = repo.commit("web 1")
    assert scenario.push(ZERO, first).code == 0
    repo.write("web", image="web:2")
    second = repo.commit("web 2")
    assert scenario.push(first, second).code == 0
    assert scenario.page("web") == "version 2"
    name = repo.name("web")
    created = scenario.container("web").id

    dry = scenario.dispatch(second, action="redeploy", name=name, dry_run="true")
    assert dry.code == 0 and scenario.container("web").id == created, dry.out
    redeploy = scenario.dispatch(second, action="redeploy", name=name, dry_run="false")
    assert redeploy.code == 0, redeploy.out
    assert scenario.container("web").id != created
    assert json.loads(redeploy.outputs["deployments"])[0]["status"] == "completed"

    by_name = scenario.dispatch(second, action="rollback", name=name, environment="production")
    assert by_name.code == 0, by_name.out
    assert scenario.page("web") == "version 1"
    rows = scenario.rows("web")
    assert rows[0].rollback_from == rows[-1].id
    by_id = scenario.dispatch(second, action="rollback", deployment_id=str(rows[1].id))
    assert by_id.code == 0, by_id.out
    assert scenario.page("web") == "version 2"
    last = statuses(scenario.gitea, second)[f"bojdeploy/production/{name}"][-1]
    assert last[0] == "success" and "replaced container" in last[1]


def test_failing_status_calls_never_fail_a_deployment(scenario: Scenario) -> None:
    repo = scenario.repo
    repo.write("web", secret=True)
    sha = repo.commit("web")
    scenario.gitea.fail("POST", STATUS_PATH, 500)

    result = scenario.push(ZERO, sha)

    assert result.code == 0, result.out
    assert scenario.page("web") == "version 1"
    assert "::warning::could not set commit status bojdeploy/production" in result.out
    posts = [c for c in scenario.gitea.calls if c.template == STATUS_PATH]
    assert len(posts) == 4 * 3 and {c.status for c in posts} == {500}  # 4 statuses, 3 tries each
    assert result.outputs["result"] == "success"


def test_unknown_before_asks_the_compare_api(scenario: Scenario) -> None:
    repo = scenario.repo
    repo.write("a")
    repo.write("b")
    sha = repo.commit("a and b")
    gone = "1234567" * 5 + "89abc"  # a force-pushed-away commit this clone never had
    files = [{"filename": "deploy/b.yml", "status": "modified"}]
    scenario.gitea.compare_answers[f"{gone}...{sha}"] = {
        "total_commits": 1,
        "commits": [{"sha": sha, "files": files}],
    }

    result = scenario.push(gone, sha)

    assert result.code == 0, result.out
    assert scenario.exists("b") and not scenario.exists("a")
    assert "compared through the forge" in result.out


def test_a_deleted_manifest_without_prune_is_reported_as_left_running(scenario: Scenario) -> None:
    repo = scenario.repo
    repo.write("a")
    repo.write("b")
    first = repo.commit("a and b")
    assert scenario.push(ZERO, first).code == 0
    (repo.root / "deploy" / "b.yml").unlink()
    second = repo.commit("retire b")

    kept = scenario.push(first, second)

    assert kept.code == 0, kept.out
    assert scenario.exists("b")
    note = f"1 manifest deleted; not pruned (prune is off): container {repo.name('b')} still runs"
    assert statuses(scenario.gitea, second)["bojdeploy/production"][-1] == ("success", note)
    assert f"::warning::{note}" in kept.out
    assert note in kept.summary and "no manifest changed" not in kept.summary
    assert kept.outputs["result"] == "unchanged"

    pruned = scenario.push(first, second, prune="true")  # the same push, run again with prune

    assert pruned.code == 0, pruned.out
    assert not scenario.exists("b")
    state, description = statuses(scenario.gitea, second)["bojdeploy/production"][-1]
    assert state == "success" and description.startswith("1 deleted in ")
    assert "deployed" not in description
    [deleted] = json.loads(pruned.outputs["deployments"])
    assert (deleted["action"], deleted["status"]) == ("delete", "completed")
    assert f"| deleted | container | {repo.name('b')} |" in pruned.summary


def test_parallel_steps_keep_each_group_whole(scenario: Scenario) -> None:
    repo = scenario.repo
    keys = ["p1", "p2", "p3"]
    for key in keys:
        repo.write(key)
    sha = repo.commit("three at once")

    result = scenario.push(ZERO, sha, parallel="4")

    assert result.code == 0, result.out
    names = [repo.name(k) for k in keys]
    seen: dict[str, list[str]] = {}
    current = None
    for line in result.out.splitlines():
        if line.startswith("::group::"):
            assert current is None, f"group opened inside another: {line}"
            current = line.removeprefix("::group::")
            assert current not in seen, f"{current} shown in two groups"
            seen[current] = []
        elif line == "::endgroup::":
            current = None
        elif current is not None:
            seen[current].append(line)
    assert sorted(seen) == sorted(f"container/{n}" for n in names)
    for title, lines in seen.items():
        others = [n for n in names if n not in title]
        assert lines and not [line for line in lines if any(o in line for o in others)], lines


def test_a_run_writes_and_pushes_its_metrics(scenario: Scenario, tmp_path: Path) -> None:
    from tests.observability import get, promtool_problems, pushgateway, samples

    repo = scenario.repo
    repo.write("web")
    sha = repo.commit("web")
    textfile = tmp_path / "bojdeploy.prom"
    with pushgateway(tmp_path) as gateway:
        scenario.extra = {
            "BOJDEPLOY_METRICS_FILE": str(textfile),
            "BOJDEPLOY_PUSHGATEWAY_URL": gateway,
        }
        result = scenario.push(ZERO, sha)
        assert result.code == 0, result.out
        pushed = get(f"{gateway}/metrics")
    written = textfile.read_text()
    assert promtool_problems(written) == "" and promtool_problems(pushed) == ""
    done = (("status", "completed"), ("type", "container"))
    assert samples(written)[("deployments_total", done)] == 1
    group = {"environment": "production", "instance": "", "job": "bojdeploy"}
    key = tuple(sorted({**group, "repository": f"{OWNER}/{REPO}", **dict(done)}.items()))
    assert samples(pushed)[("deployments_total", key)] == 1

"""`bojdeploy apply`, `rollback` and `status` end to end on the real Docker Engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from tests.helpers import run_cli
from tests.repos import free_port, http_get

REGISTRY = "127.0.0.1:5000/bojdeploy-test"
SECRET = "very-secret-session-value-42"


class App:
    """A one-manifest deployment repository and the database it records into."""

    def __init__(self, root: Path, db_url: str, docker: Any, suffix: str):
        self.root = root
        self.db_url = db_url
        self.docker = docker
        self.name = f"bdtest-{suffix}"
        self.port = free_port()
        (root / "deploy").mkdir(parents=True)
        (root / "bojdeploy.yaml").write_text("environments:\n  test: {branches: ['*']}\n")
        self.write()

    def write(
        self, image: str = "web:1", env: str = "one", health: bool = True, timeout: str = "30s"
    ) -> None:
        check = (
            "  healthcheck: {test: [CMD, wget, -qO-, 'http://127.0.0.1/'], interval: 1s, "
            "timeout: 1s, retries: 2, start_period: 1s}\n"
            if health
            else ""
        )
        (self.root / "deploy" / "app.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: {self.name}}}\n"
            "spec:\n"
            f"  image: {REGISTRY}/{image}\n"
            f"  env: {{MODE: {env}, SESSION: \"{{{{ secret('APP_SESSION') }}}}\"}}\n"
            f"  ports: ['127.0.0.1:{self.port}:80']\n"
            f"  labels: {{io.bojdeploy.test: 'true'}}\n"
            f"  timeout: {timeout}\n"
            "  stop_timeout: 1s\n" + check
        )

    def cli(self, *args: str) -> Any:
        return run_cli("--database-url", self.db_url, *args, env={"APP_SESSION": SECRET})

    def apply(self, *extra: str) -> Any:
        return self.cli("apply", "--env", "test", *extra, str(self.root))

    def container(self) -> Any:
        return self.docker.containers.get(self.name)

    def rows(self) -> list[Any]:
        with open_store(self.db_url) as store:
            return store.list_deployments(name=self.name, limit=100)

    def logs(self, deployment_id: int) -> list[str]:
        with open_store(self.db_url) as store:
            return [e.message for e in store.get_logs(deployment_id)]


@pytest.fixture(params=["sqlite", "postgres"])
def app(
    request: pytest.FixtureRequest, tmp_path: Path, docker_client: Any, test_images: Any
) -> Iterator[App]:
    if request.param == "postgres":
        db_url = request.getfixturevalue("postgres_database")
    else:
        db_url = f"sqlite:///{tmp_path / 'state.db'}"
    unique = uuid.uuid4().hex[:6]
    suffix = f"{request.node.name[5:20].strip('_[').replace('_', '-')}-{request.param[:2]}-{unique}"
    application = App(tmp_path / "repo", db_url, docker_client, suffix.lower().strip("-"))
    yield application
    for c in docker_client.containers.list(all=True, filters={"name": application.name}):
        c.remove(force=True)


def test_create_unchanged_and_replace(app: App) -> None:
    first = app.apply()
    assert first.code == 0, first.err
    assert http_get(app.port) == "version 1"
    created = app.container().id

    again = app.apply()
    assert again.code == 0, again.err
    assert app.container().id == created
    assert [r.status for r in app.rows()][:2] == ["unchanged", "completed"]

    app.write(env="two")
    third = app.apply()
    assert third.code == 0, third.err
    replaced = app.container()
    assert replaced.id != created
    assert "MODE=two" in replaced.attrs["Config"]["Env"]
    names = [c.name for c in app.docker.containers.list(all=True, filters={"name": app.name})]
    assert names == [app.name]


def test_failed_health_restores_previous(app: App) -> None:
    assert app.apply().code == 0
    before = app.container().id
    app.write(image="unhealthy:1", timeout="15s")
    result = app.apply()
    assert result.code == 1
    current = app.container()
    assert current.id == before and current.status == "running"
    assert http_get(app.port) == "version 1"
    row = app.rows()[0]
    assert row.status == "failed"
    assert row.error_message and "restored" in row.error_message
    log = "\n".join(app.logs(row.id))
    assert "pull" in log and "previous" in log


@pytest.mark.parametrize("image", ["web:404", "127.0.0.1:5999/nothing:1"])
def test_pull_failure_never_stops_the_running_container(app: App, image: str) -> None:
    assert app.apply().code == 0
    started = app.container().attrs["State"]["StartedAt"]
    app.write(image=image if ":5999" not in image else image.replace("127.0.0.1:5999/", ""))
    if ":5999" in image:
        path = app.root / "deploy" / "app.yml"
        path.write_text(path.read_text().replace(f"{REGISTRY}/nothing:1", image))
    result = app.apply()
    assert result.code == 1
    assert app.container().attrs["State"]["StartedAt"] == started
    assert app.rows()[0].status == "failed"


def test_secret_never_recorded_or_printed(app: App) -> None:
    result = app.apply()
    assert result.code == 0
    container = app.container()
    assert f"SESSION={SECRET}" in container.attrs["Config"]["Env"]
    assert SECRET not in json.dumps(container.labels)
    rows = app.rows()
    assert SECRET not in json.dumps([r.to_dict() for r in rows])
    assert SECRET not in "\n".join(app.logs(rows[0].id))
    assert SECRET not in result.out + result.err


def test_rollback_by_id_and_by_name_and_drift(app: App) -> None:
    assert app.apply().code == 0
    first_id = app.rows()[0].id
    app.write(image="web:2", env="two")
    assert app.apply().code == 0
    assert http_get(app.port) == "version 2"

    by_name = app.cli("rollback", "--name", app.name, "--env", "test", str(app.root))
    assert by_name.code == 0, by_name.err
    assert http_get(app.port) == "version 1"
    assert "MODE=one" in app.container().attrs["Config"]["Env"]
    assert app.rows()[0].rollback_from == first_id

    second_id = app.rows()[1].id
    by_id = app.cli("rollback", str(second_id), str(app.root))
    assert by_id.code == 0, by_id.err
    assert http_get(app.port) == "version 2"

    in_sync = app.cli("status", "--env", "test", str(app.root))
    assert in_sync.code == 0, in_sync.out
    app.container().stop(timeout=1)
    drift = app.cli("status", "--env", "test", str(app.root))
    assert drift.code == 1
    assert "stopped" in drift.out and app.name in drift.out


def _spawn_apply(app: App) -> subprocess.Popen[str]:
    env = {**os.environ, "APP_SESSION": SECRET, "BOJDEPLOY_DATABASE_URL": app.db_url}
    return subprocess.Popen(
        [sys.executable, "-m", "bojdeploy", "apply", "--env", "test", str(app.root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_applies_are_serialized(app: App) -> None:
    procs = [_spawn_apply(app) for _ in range(2)]
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0, 0], [p.stderr.read() for p in procs if p.stderr]
    assert len(app.docker.containers.list(all=True, filters={"name": app.name})) == 1
    assert sorted(r.status for r in app.rows()) == ["completed", "unchanged"]


def test_killed_apply_is_marked_interrupted_and_converges(app: App) -> None:
    app.write(image="unhealthy:1", timeout="60s")  # waits for health long enough to be killed
    proc = _spawn_apply(app)
    deadline = time.monotonic() + 60
    while not [r for r in app.rows() if r.status == "running"]:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    app.write()
    result = app.apply()
    assert result.code == 0, result.err
    rows = app.rows()
    interrupted = [r for r in rows if r.error_message and "interrupted" in r.error_message]
    assert len(interrupted) == 1 and interrupted[0].status == "failed"
    assert rows[0].status == "completed"
    assert http_get(app.port) == "version 1"


def test_status_reports_a_swapped_image_and_a_missing_container(app: App) -> None:
    assert app.apply().code == 0
    labels = app.container().labels
    app.container().remove(force=True)
    app.docker.containers.run(f"{REGISTRY}/web:2", name=app.name, labels=labels, detach=True)
    swapped = app.cli("status", "--env", "test", "--json", str(app.root))
    assert swapped.code == 1
    [item] = [i for i in json.loads(swapped.out) if i["name"] == app.name]
    assert (item["state"], item["drifted"]) == ("image differs", True)

    app.container().remove(force=True)
    missing = app.cli("status", "--env", "test", str(app.root))
    assert missing.code == 1
    assert "missing" in missing.out

    app.docker.containers.run(f"{REGISTRY}/web:2", name=app.name, detach=True)  # not labelled
    held = app.cli("status", "--env", "test", "--json", str(app.root))
    [item] = json.loads(held.out)
    assert (held.code, item["state"]) == (1, "missing")
    assert item["detail"] == "a container of that name that bojdeploy does not manage holds it"


def test_status_of_containers_survives_an_unreachable_pool(app: App) -> None:
    assert app.apply().code == 0
    env = {"APP_SESSION": SECRET, "BOJDEPLOY_XEN_URL": "http://127.0.0.1:9"}
    args = ("--database-url", app.db_url, "status", "--env", "test", "--json", str(app.root))
    result = run_cli(*args, env=env)
    assert result.code == 0, result.err
    items = [(i["kind"], i["name"], i["state"], i["drifted"]) for i in json.loads(result.out)]
    assert items == [("container", app.name, "in sync", False), ("vm", None, "not checked", False)]


def test_a_deploy_killed_after_the_rename_is_finished_by_the_next_run(app: App) -> None:
    assert app.apply().code == 0
    app.container().rename(f"{app.name}.previous")  # as if killed between rename and create
    app.write(env="two")
    result = app.apply()
    assert result.code == 0, result.err
    assert "MODE=two" in app.container().attrs["Config"]["Env"]
    names = [c.name for c in app.docker.containers.list(all=True, filters={"name": app.name})]
    assert names == [app.name]
    with open_store(app.db_url) as store:
        levels = {e.level for e in store.get_logs(app.rows()[0].id)}
    assert "warn" in levels


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def test_an_unfinished_container_outside_the_change_set_is_finished(app: App) -> None:
    other = f"{app.name}-o"
    (app.root / "deploy" / "other.yml").write_text(
        "apiVersion: bojdeploy/v1\nkind: Container\n"
        f"metadata: {{name: {other}}}\n"
        f"spec: {{image: {REGISTRY}/web:1, env: {{MODE: a}}, stop_timeout: 0s,"
        " labels: {io.bojdeploy.test: 'true'}}\n"
    )
    _git(app.root, "init", "-q")
    _git(app.root, "add", ".")
    _git(app.root, "commit", "-qm", "both")
    assert app.apply().code == 0
    aside = f"{app.name}.previous"
    app.container().rename(aside)  # as if killed after setting it aside, before the new one
    app.docker.containers.get(aside).stop(timeout=0)
    assert app.cli("status", "--env", "test", str(app.root)).code == 1

    path = app.root / "deploy" / "other.yml"
    path.write_text(path.read_text().replace("MODE: a", "MODE: b"))
    _git(app.root, "commit", "-qam", "only the other one")
    result = app.apply("--changed-since", "HEAD~1")
    assert result.code == 0, result.err
    assert f"container {app.name} (" in result.out and "unfinished: only" in result.err
    assert http_get(app.port) == "version 1"
    names = [c.name for c in app.docker.containers.list(all=True, filters={"name": app.name})]
    assert sorted(names) == sorted([app.name, other])
    for c in app.docker.containers.list(all=True, filters={"name": other}):
        c.remove(force=True)


def test_a_deployment_recorded_unfinished_is_finished_not_redeployed(app: App) -> None:
    assert app.apply().code == 0
    app.write(env="two")
    assert app.apply().code == 0
    container = app.container().id
    row = app.rows()[0].id
    with open_store(app.db_url) as store:  # as if killed after the swap, before the record
        store.update_deployment(row, status="running")
    plan = app.apply("--dry-run")
    assert "unfinished: deployment" in plan.out and f"#{row} has not finished" in plan.out
    status = app.cli("status", "--env", "test", "--json", str(app.root))
    assert status.code == 1
    assert [i["state"] for i in json.loads(status.out)] == ["unfinished"]

    result = app.apply()
    assert result.code == 0, result.err
    assert f"finished the interrupted deployment #{row}: container {app.name} is healthy" in (
        result.out
    )
    assert app.container().id == container  # waited for, not redeployed
    rows = app.rows()
    assert [r.status for r in rows[:2]] == ["completed", "failed"]
    assert app.cli("status", "--env", "test", str(app.root)).code == 0
    assert app.apply().code == 0 and app.rows()[0].status == "unchanged"

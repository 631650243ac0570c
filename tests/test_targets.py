"""Every command reaches the targets of the repository it works on, and rollback goes where the
deployment was made: `status`/`rollback` from another folder, the recorded target, another
repository's record refused. Real Docker, reached through a TCP relay to prove which way."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.core.config import RepoConfig, TargetConfig
from bojdeploy.drivers import Targets, redact_credentials
from bojdeploy.errors import ConnectError
from bojdeploy.settings import Settings
from bojdeploy.store import open_store
from tests.action import TOKEN
from tests.action.test_entrypoint import ZERO, Scenario
from tests.fakes.fake_gitea import FakeGitea
from tests.helpers import run_cli

REGISTRY = "127.0.0.1:5000/bojdeploy-test"
SOCKET = "/var/run/docker.sock"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]


class DockerRelay:
    """tcp://127.0.0.1:PORT relayed to the local Docker socket; counts the connections it took."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(SOCKET)
            self.open += [client, engine]
            for a, b in ((client, engine), (engine, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        self.listener.close()
        for s in self.open:
            with contextlib.suppress(OSError):
                s.close()


class Repo:
    """A git repository with one container manifest, an origin naming it, and a state database."""

    def __init__(self, root: Path, db: str, origin: str, docker_host: str | None):
        self.root, self.db = root, db
        self.name = f"bdtgt-{uuid.uuid4().hex[:8]}"
        (root / "deploy").mkdir(parents=True)
        subprocess.run([*GIT, "init", "-q", "-b", "main", str(root)], check=True)
        self.git("remote", "add", "origin", f"http://gitea.example/{origin}.git")
        self.configure(docker_host)
        self.write("web:1")
        self.git("add", "-A")
        self.git("commit", "-qm", "web")

    def git(self, *args: str) -> None:
        subprocess.run([*GIT, "-C", str(self.root), *args], check=True, capture_output=True)

    def configure(self, docker_host: str | None) -> None:
        target = f"targets:\n  test: {{docker_host: '{docker_host}'}}\n" if docker_host else ""
        (self.root / "bojdeploy.yaml").write_text(
            "environments:\n  test: {branches: ['*']}\n" + target
        )

    def write(self, image: str) -> None:
        (self.root / "deploy" / "web.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: {self.name}}}\n"
            f"spec:\n  image: {REGISTRY}/{image}\n"
            "  labels: {io.bojdeploy.test: 'true'}\n  stop_timeout: 1s\n"
        )

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return run_cli("--database-url", self.db, *args, env=env)

    def rows(self) -> list[Any]:
        with open_store(self.db) as store:
            return store.list_deployments(name=self.name, limit=50)


@pytest.fixture
def relay() -> Iterator[DockerRelay]:
    r = DockerRelay()
    yield r
    r.close()


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder: another repository whose bojdeploy.yaml points at a dead engine."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "bojdeploy.yaml").write_text(
        "environments:\n  test: {branches: ['*']}\n"
        "targets:\n  test: {docker_host: 'tcp://127.0.0.1:9'}\n"
    )
    monkeypatch.chdir(folder)
    return folder


def image_of(docker: Any, name: str) -> str:
    return str(docker.containers.get(name).attrs["Config"]["Image"])


@pytest.mark.usefixtures("test_images", "docker_cleanup")
def test_status_and_rollback_from_another_folder_use_the_repository_targets(
    tmp_path: Path, docker_client: Any, relay: DockerRelay, elsewhere: Path
) -> None:
    repo = Repo(tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}", "team/app", relay.url)
    assert repo.cli("apply", "--env", "test", str(repo.root)).code == 0
    repo.write("web:2")
    assert repo.cli("apply", "--env", "test", str(repo.root)).code == 0
    first, second = repo.rows()[1], repo.rows()[0]
    assert first.config["target"] == {"docker_host": relay.url}
    assert image_of(docker_client, repo.name).endswith("web:2")

    before = relay.connections
    status = repo.cli("status", "--env", "test", str(repo.root))
    assert status.code == 0, status.err
    assert repo.name in status.out and relay.connections > before

    before = relay.connections
    back = repo.cli("rollback", str(first.id), str(repo.root))
    assert back.code == 0, back.err
    assert relay.connections > before
    assert image_of(docker_client, repo.name).endswith("web:1")
    assert repo.rows()[0].rollback_from == first.id
    assert repo.rows()[0].config["target"] == {"docker_host": relay.url}

    # Without PATH the current folder's repository counts: it deployed nothing, so it has no drift.
    before = relay.connections
    mine = repo.cli("status", "--env", "test")
    assert mine.code == 0 and repo.name not in mine.out and relay.connections == before
    refused = repo.cli("rollback", str(second.id))
    assert refused.code == 2
    assert "was made from repository team/app, not elsewhere" in refused.err


@pytest.mark.usefixtures("test_images", "docker_cleanup")
def test_rollback_reuses_the_recorded_target_and_an_explicit_setting_wins(
    tmp_path: Path, docker_client: Any, relay: DockerRelay
) -> None:
    repo = Repo(tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}", "team/app", relay.url)
    assert repo.cli("apply", "--env", "test", str(repo.root)).code == 0
    repo.write("web:2")
    assert repo.cli("apply", "--env", "test", str(repo.root)).code == 0
    first = repo.rows()[1]

    repo.configure(f"unix://{SOCKET}")  # the same engine, reached another way: status says so
    moved = repo.cli("status", "--env", "test", "--json", str(repo.root))
    [item] = json.loads(moved.out)
    assert (moved.code, item["state"]) == (0, "in sync"), moved.err
    assert item["detail"] == f"deployed to {relay.url}, checked on unix://{SOCKET}"

    repo.configure("tcp://127.0.0.1:9")  # the repository moved to an engine that is not there
    dead = repo.cli("status", "--env", "test", str(repo.root))
    assert dead.code == 3 and "cannot reach Docker at tcp://127.0.0.1:9" in dead.err

    before = relay.connections
    back = repo.cli("rollback", str(first.id), str(repo.root))
    assert back.code == 0, back.err
    assert relay.connections > before  # where deployment #first was made, not where apply goes
    assert "apply would now use docker_host=tcp://127.0.0.1:9" in back.err
    assert image_of(docker_client, repo.name).endswith("web:1")

    before = relay.connections
    explicit = repo.cli(
        "rollback", str(repo.rows()[1].id), str(repo.root), env={"DOCKER_HOST": f"unix://{SOCKET}"}
    )
    assert explicit.code == 0, explicit.err
    assert relay.connections == before
    assert (
        f"was made on docker_host={relay.url}; rolling back on docker_host=unix://" in explicit.err
    )

    relay.close()
    repo.configure(None)  # apply would now use the local socket; the record still names the relay
    gone = repo.cli("rollback", str(first.id), str(repo.root))
    assert gone.code == 3, gone.err
    assert f"cannot reach Docker at {relay.url}" in gone.err


@pytest.mark.usefixtures("test_images", "docker_cleanup")
def test_a_record_of_another_repository_is_refused(tmp_path: Path, docker_client: Any) -> None:
    db = f"sqlite:///{tmp_path / 'state.db'}"
    a = Repo(tmp_path / "a", db, "team/app-a", None)
    b = Repo(tmp_path / "b", db, "team/app-b", None)
    assert a.cli("apply", "--env", "test", str(a.root)).code == 0
    a.write("web:2")
    assert a.cli("apply", "--env", "test", str(a.root)).code == 0
    running = docker_client.containers.get(a.name).id
    rows = len(a.rows())

    by_id = b.cli("rollback", str(a.rows()[1].id), str(b.root))
    assert by_id.code == 2
    assert by_id.err.strip().splitlines() == [
        f"error: deployment #{a.rows()[1].id} was made from repository team/app-a, not "
        "team/app-b: roll it back from a checkout of team/app-a"
    ]
    by_name = b.cli("rollback", "--name", a.name, "--env", "test", str(b.root))
    assert by_name.code == 2 and "from team/app-b" in by_name.err
    assert docker_client.containers.get(a.name).id == running and len(a.rows()) == rows

    status = b.cli("status", "--env", "test", "--json", str(b.root))
    assert status.code == 0 and a.name not in status.out  # B's status is about B's resources


def test_recorded_targets_keep_no_password() -> None:
    config = RepoConfig.model_validate(
        {"environments": {"prod": {}}, "targets": {"prod": {"docker_host": "tcp://ci:pw@h:2376"}}}
    )
    targets = Targets("prod", Settings(), config)
    assert targets.record("container") == {"docker_host": "tcp://ci:***@h:2376"}
    assert redact_credentials("ssh://deploy@prod-1") == "ssh://deploy@prod-1"
    assert redact_credentials("https://root:s3cret@xen:443/") == "https://root:***@xen:443/"

    recorded = {"docker_host": "tcp://ci:***@h:2376"}
    assert Targets("prod", Settings(), config, recorded).docker_host == "tcp://ci:pw@h:2376"
    moved = config.model_copy(update={"targets": {"prod": TargetConfig(docker_host="tcp://x")}})
    with pytest.raises(ConnectError, match="needs its password"):
        Targets("prod", Settings(), moved, recorded)


def test_precedence_explicit_then_recorded_then_bojdeploy_yaml() -> None:
    config = RepoConfig.model_validate(
        {"environments": {"prod": {}}, "targets": {"prod": {"docker_host": "ssh://new"}}}
    )
    recorded = {"docker_host": "ssh://old"}
    assert Targets("prod", Settings(), config).docker_host == "ssh://new"
    assert Targets("prod", Settings(), config, recorded).docker_host == "ssh://old"
    explicit = Settings(docker_host="unix:///run/user.sock")
    assert Targets("prod", explicit, config, recorded).docker_host == "unix:///run/user.sock"
    assert Targets("prod", Settings(), RepoConfig()).record("container") == {
        "docker_host": "unix:///var/run/docker.sock"
    }
    vm = Targets("prod", Settings(xen_url="https://xen"), config).record("vm")
    assert vm == {"xen_url": "https://xen", "xen_username": "root"}


@pytest.fixture
def gitea() -> Iterator[FakeGitea]:
    fake = FakeGitea(token=TOKEN).start()
    yield fake
    fake.stop()


@pytest.mark.usefixtures("test_images", "docker_cleanup")
def test_the_action_rolls_back_on_the_repository_target(
    tmp_path: Path, gitea: FakeGitea, docker_client: Any, relay: DockerRelay
) -> None:
    scenario = Scenario(tmp_path, gitea, docker_client)
    repo = scenario.repo
    (repo.root / "bojdeploy.yaml").write_text(
        "environments:\n  production: {branches: [main]}\n"
        f"targets:\n  production: {{docker_host: '{relay.url}'}}\n"
    )
    repo.write("web")
    first = repo.commit("web 1")
    assert scenario.push(ZERO, first).code == 0
    repo.write("web", image="web:2")
    second = repo.commit("web 2")
    assert scenario.push(first, second).code == 0
    assert scenario.page("web") == "version 2"
    old = scenario.rows("web")[1].id

    before = relay.connections
    back = scenario.dispatch(second, action="rollback", deployment_id=str(old))
    assert back.code == 0, back.out
    assert relay.connections > before and scenario.page("web") == "version 1"

    relay.close()  # the target is gone: the runner's own Docker must not stand in for it
    gone = scenario.dispatch(second, action="rollback", deployment_id=str(old))
    assert gone.code == 3, gone.out
    assert f"cannot reach Docker at {relay.url}" in gone.out

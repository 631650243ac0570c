"""Docker and Xen go away at the worst moments of a run: after the connection is made but before
the observation, and after the plan but before the step's work (its re-check under the lock).
Every time: exit 3 (nothing was changed), one line that names the system, never a traceback."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from bojdeploy.testing.xapi import XapiSimulator
from tests.faults.harness import bojdeploy_command, child_env
from tests.faults.proxy import Proxy, proxied
from tests.helpers import run_cli
from tests.repos import free_port
from tests.test_apply_vm import PASSWORD, USER, Pool, VMRepo

REGISTRY = "127.0.0.1:5000/bojdeploy-test"


def run_child(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        bojdeploy_command(*args),
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], expected: str) -> None:
    """Exit 3; the problem is told once, on one line, and nothing else went wrong."""
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "internal error" not in done.stderr
    said = [line for line in done.stderr.splitlines() if expected in line]
    assert len(said) == 1, done.stderr


class Site:
    """A repository with one container, its SQLite state, and the Docker it deploys to."""

    def __init__(self, root: Path, docker: Any):
        self.root, self.docker = root, docker
        self.db_url = f"sqlite:///{root.parent / 'state.db'}"
        self.name = f"bdgone-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        (root / "deploy").mkdir(parents=True)
        (root / "bojdeploy.yaml").write_text("environments:\n  test: {branches: ['*']}\n")
        self.write("web:1")

    def write(self, image: str) -> None:
        (self.root / "deploy" / "app.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: {self.name}}}\n"
            f"spec:\n  image: {REGISTRY}/{image}\n"
            f"  ports: ['127.0.0.1:{self.port}:80']\n"
            "  labels: {io.bojdeploy.test: 'true'}\n  timeout: 20s\n  stop_timeout: 1s\n"
        )

    def args(self) -> list[str]:
        return ["--database-url", self.db_url, "apply", "--env", "test", str(self.root)]

    def container_ids(self) -> dict[str, str]:
        found = self.docker.containers.list(all=True, filters={"name": self.name})
        return {c.name: c.id for c in found}

    def rows(self) -> list[str]:
        with open_store(self.db_url) as store:
            return [r.status for r in store.list_deployments(name=self.name, limit=100)]


@pytest.fixture
def site(
    tmp_path: Path, docker_client: Any, docker_cleanup: None, test_images: Any
) -> Iterator[Site]:
    made = Site(tmp_path / "repo", docker_client)
    yield made
    for container in docker_client.containers.list(all=True, filters={"name": made.name}):
        container.remove(force=True)


def docker_gone_at(site: Site, request: bytes) -> subprocess.CompletedProcess[str]:
    """Deploy web:2 over web:1 through a proxy to Docker that is cut at `request`."""
    assert run_cli(*site.args()).code == 0
    before = site.container_ids()
    site.write("web:2")
    with proxied("/var/run/docker.sock") as proxy:
        proxy.cut_on(request)
        done = run_child(site.args(), site.root, DOCKER_HOST=f"tcp://{proxy.address}")
        assert proxy.cuts == 1, done.stderr
    assert site.container_ids() == before  # nothing was changed
    assert site.rows() == ["completed"]  # and no row claims otherwise
    return done


def test_docker_gone_between_connect_and_observe(site: Site) -> None:
    done = docker_gone_at(site, rb"GET /v[\d.]+/containers/json")
    assert_one_line(done, "error: cannot list containers: cannot reach Docker: ")


def test_docker_gone_between_observe_and_apply(site: Site) -> None:
    done = docker_gone_at(site, rf"GET /v[\d.]+/containers/{site.name}/json".encode())
    name = site.name
    assert_one_line(done, f"[container/{name}] error: cannot inspect container {name}: cannot ")
    assert "failed" in done.stdout


@pytest.fixture
def xen(tmp_path: Path) -> Iterator[tuple[VMRepo, Proxy, Any]]:
    """A VM repository whose pool (the simulator) is reached through a proxy."""
    with XapiSimulator(username=USER, password=PASSWORD, ip_delay=0.2) as sim:
        host, port = sim.url.removeprefix("http://").rstrip("/").split(":")
        with proxied((host, int(port))) as proxy:
            repo = VMRepo(tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}", sim.url)
            yield repo, proxy, sim


def xen_gone_at(xen: tuple[VMRepo, Proxy, Any], call: bytes) -> subprocess.CompletedProcess[str]:
    """Change the VM through a proxy to the pool that is cut at its first `call`."""
    repo, proxy, sim = xen
    assert repo.apply().code == 0
    repo.write(vcpus=4)
    proxy.cut_on(call)
    args = ["--database-url", repo.db_url, "apply", "--env", "test", str(repo.root)]
    env = {
        "BOJDEPLOY_XEN_URL": f"http://{proxy.address}",
        "BOJDEPLOY_XEN_USERNAME": USER,
        "BOJDEPLOY_XEN_PASSWORD": PASSWORD,
    }
    changes = len(sim.mutating_calls())
    done = run_child(args, repo.root, **env)
    assert proxy.cuts == 1, done.stderr
    assert len(sim.mutating_calls()) == changes  # nothing changed on the pool
    pool = Pool(sim.url)
    assert pool.vm()["VCPUs_at_startup"] == "2"
    pool.session.xenapi.session.logout()
    return done


def test_xen_gone_between_login_and_observe(xen: tuple[VMRepo, Proxy, Any]) -> None:
    done = xen_gone_at(xen, rb"VM\.get_all_records_where")  # the plan's listing
    assert_one_line(done, "error: cannot list the VMs on Xen: cannot reach Xen: ")
    assert [r.status for r in xen[0].rows()] == ["completed"]


def test_xen_gone_between_observe_and_apply(xen: tuple[VMRepo, Proxy, Any]) -> None:
    done = xen_gone_at(
        xen, rb"VM\.get_all_records_where(?s:.)*name__label"
    )  # the re-check under the lock
    assert_one_line(done, "[vm/web] error: cannot look up VM web on Xen: cannot reach Xen: ")
    assert "failed" in done.stdout
    assert [r.status for r in xen[0].rows()] == ["completed"]

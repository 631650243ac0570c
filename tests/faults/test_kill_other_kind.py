"""A container replace killed mid-way is finished by the next push even when that push changes
only a manifest of another kind (here a VM): interrupted work never waits for a run that happens
to include its kind."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from bojdeploy.store.base import INTERRUPTED
from bojdeploy.testing.xapi import XapiSimulator
from tests.faults.harness import kill_when
from tests.helpers import GIT, git_identity, run_cli
from tests.repos import free_port, http_get

REGISTRY = "127.0.0.1:5000/bojdeploy-test"
NETWORK = "Pool-wide network associated with eth0"
XEN_PASSWORD = "xen-pw"

pytestmark = pytest.mark.usefixtures("test_images", "docker_cleanup")


def container(name: str, port: int, image: str) -> str:
    return (
        "apiVersion: bojdeploy/v1\nkind: Container\n"
        f"metadata: {{name: {name}}}\nspec:\n"
        f"  image: {REGISTRY}/{image}\n"
        f"  ports: ['127.0.0.1:{port}:80']\n"
        "  labels: {io.bojdeploy.test: 'true'}\n  timeout: 10s\n  stop_timeout: 0s\n"
    )


VM = (
    "apiVersion: bojdeploy/v1\nkind: VM\nmetadata: {name: db}\nspec:\n"
    "  template: Debian Bookworm 12\n  vcpus: 1\n  memory: 1GiB\n"
    f"  networks: [{{network: {NETWORK}}}]\n  wait: {{start: 30s, ip: 10s}}\n"
)


def commit(root: Path, message: str) -> str:
    """Commit everything (when there is something) and return HEAD."""
    subprocess.run([*GIT, "-C", str(root), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-qm", message, "--allow-empty"], check=True)
    done = subprocess.run(
        [*GIT, "-C", str(root), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def test_a_push_of_another_kind_finishes_an_interrupted_container(
    tmp_path: Path, docker_client: Any
) -> None:
    name, port = f"bdko-{uuid.uuid4().hex[:8]}", free_port()
    root, db = tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}"
    (root / "deploy").mkdir(parents=True)
    with XapiSimulator(username="root", password=XEN_PASSWORD) as sim:
        (root / "bojdeploy.yaml").write_text(
            "environments:\n  test: {branches: ['*']}\n"
            f"targets:\n  test: {{xen_url: '{sim.url}'}}\n"
        )
        (root / "deploy" / "app.yml").write_text(container(name, port, "web:1"))
        git_identity(root, f"team/{name}")
        env = {"BOJDEPLOY_XEN_USERNAME": "root", "BOJDEPLOY_XEN_PASSWORD": XEN_PASSWORD}
        args = ["--database-url", db, "apply", "--env", "test"]
        first = run_cli(*args, str(root), env=env)
        assert first.code == 0, first.out + first.err
        base = commit(root, "deployed")

        (root / "deploy" / "app.yml").write_text(container(name, port, "web:2"))
        replace = commit(root, "web 2")
        killed = kill_when(
            [*args, "--changed-since", base, str(root)],
            r"\] stopped \S+\.previous$",
            cwd=root,
            env=env,
        )
        assert killed.killed, killed.text
        stopped = docker_client.containers.list(all=True, filters={"name": name})
        assert [c.status for c in stopped if c.status == "running"] == []  # the site is down

        (root / "deploy" / "db.yml").write_text(VM)
        commit(root, "a database VM")
        recovery = run_cli(*args, "--changed-since", replace, str(root), env=env)

        assert recovery.code == 0, recovery.out + recovery.err
        assert http_get(port) == "version 2"
        left = docker_client.containers.list(all=True, filters={"name": name})
        assert [c.name for c in left] == [name]
        with open_store(db) as store:
            rows = store.list_deployments(name=name, limit=10)
            vm = store.list_deployments(name="db", limit=10)
        assert rows[0].status == "completed"
        assert any(r.error_message == INTERRUPTED for r in rows)
        assert vm and vm[0].status == "completed"

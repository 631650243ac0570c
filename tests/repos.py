"""A deployment repository of Container manifests for end-to-end tests, with its git identity."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

from bojdeploy.store import open_store
from tests.helpers import CliResult, git_identity, run_cli

REGISTRY = "127.0.0.1:5000/bojdeploy-test"
HEALTHCHECK = (
    "  healthcheck: {test: [CMD, wget, -qO-, 'http://127.0.0.1/'], interval: 1s, "
    "timeout: 1s, retries: 2}\n"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, timeout: float = 10) -> str:
    """The body served on 127.0.0.1:port, retried until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return str(r.read().decode().strip())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class ContainerRepo:
    """A git clone of `repository` (None: no origin remote) holding Container manifests."""

    def __init__(self, root: Path, db: str, repository: str | None, env: str = "test"):
        self.root, self.db, self.env = root, db, env
        (root / "deploy").mkdir(parents=True)
        (root / "bojdeploy.yaml").write_text(f"environments:\n  {env}: {{branches: ['*']}}\n")
        if repository is not None:
            git_identity(root, repository)

    def write(
        self,
        name: str,
        image: str = "web:1",
        ports: tuple[str, ...] = (),
        networks: tuple[str, ...] = (),
        health: bool = False,
        file: str | None = None,
    ) -> None:
        """Write deploy/<file or name>.yml for one container of the test images."""
        (self.root / "deploy" / f"{file or name}.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: {name}}}\n"
            f"spec:\n  image: {REGISTRY}/{image}\n"
            f"  ports: [{', '.join(repr(p) for p in ports)}]\n"
            f"  networks: [{', '.join(networks)}]\n"
            "  labels: {io.bojdeploy.test: 'true'}\n  stop_timeout: 1s\n  timeout: 15s\n"
            + (HEALTHCHECK if health else "")
        )

    def remove(self, file: str) -> None:
        """Delete the manifest file deploy/<file>.yml."""
        (self.root / "deploy" / f"{file}.yml").unlink()

    def cli(self, command: str, *extra: str) -> CliResult:
        """`bojdeploy COMMAND --env ENV EXTRA... ROOT` against this repository's database."""
        return run_cli(
            "--database-url", self.db, command, "--env", self.env, *extra, str(self.root)
        )

    def rows(self, name: str) -> list[Any]:
        """The recorded deployments of `name`, newest first."""
        with open_store(self.db) as store:
            return store.list_deployments(name=name, limit=50)


def running(docker: Any, prefix: str) -> set[str]:
    """The names of the running containers whose names contain `prefix`."""
    found = docker.containers.list(all=True, filters={"name": prefix})
    return {c.name for c in found if c.status == "running"}


def remove_containers(docker: Any, prefix: str) -> None:
    """Remove every container whose name contains `prefix`."""
    for c in docker.containers.list(all=True, filters={"name": prefix}):
        c.remove(force=True)

"""The container list read off the local engine's socket: the same observations as through the
docker SDK, without loading it; anything unusable goes the SDK's way, with its errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.core.config import RepoConfig
from bojdeploy.drivers import Targets
from bojdeploy.drivers.container import ContainerDriver
from bojdeploy.drivers.container_list import (
    DEFAULT_SOCKET,
    list_containers,
    listed_containers,
    local_socket,
)
from bojdeploy.errors import ConnectError
from bojdeploy.settings import Settings

LABELS = {
    "io.bojdeploy.test": "true",
    "io.bojdeploy.managed": "true",
    "io.bojdeploy.name": "web",
    "io.bojdeploy.environment": "test",
    "io.bojdeploy.config-hash": "abc",
    "io.bojdeploy.deployment-id": "7",
}


@pytest.mark.parametrize(
    ("docker_host", "environ", "expected"),
    [
        (None, {}, DEFAULT_SOCKET),
        (None, {"DOCKER_HOST": "unix:///run/other.sock"}, "/run/other.sock"),
        ("unix:///srv/docker.sock", {"DOCKER_HOST": "tcp://h:2375"}, "/srv/docker.sock"),
        ("tcp://127.0.0.1:2375", {}, None),
        (None, {"DOCKER_HOST": "ssh://deploy@edge"}, None),
        ("npipe:////./pipe/docker_engine", {}, None),
    ],
)
def test_only_a_unix_socket_is_listed_directly(
    docker_host: str | None, environ: dict[str, str], expected: str | None
) -> None:
    assert local_socket(docker_host, environ) == expected


def test_a_named_host_is_listed_directly_only_on_a_unix_socket() -> None:
    hosts = {
        "plain": {"docker_host": "unix:///y.sock"},
        "tls": {"docker_host": "tcp://127.0.0.1:2376", "tls_verify": True},
        "xen-only": {"xen_url": "http://127.0.0.1:1"},
    }
    config = RepoConfig.model_validate(
        {"environments": {"prod": {}}, "targets": {"prod": {"hosts": hosts}}}
    )
    settings = Settings.from_env({"DOCKER_HOST": "unix:///default.sock"})
    sockets = {h: Targets("prod", settings, config, host=h).docker_socket() for h in hosts}
    assert sockets == {"plain": "/y.sock", "tls": None, "xen-only": None}


@pytest.fixture
def labelled_container(docker_client: Any, docker_cleanup: None, test_images: Any) -> Iterator[str]:
    """A stopped managed-looking container and its `.previous`; removed afterwards."""
    name = f"bojt-list-{uuid.uuid4().hex[:8]}"
    made = [
        docker_client.api.create_container(test_images["web:1"], name=n, labels=LABELS)["Id"]
        for n in (name, name + ".previous")
    ]
    yield name
    for ident in made:
        docker_client.api.remove_container(ident, force=True)


def test_the_socket_listing_observes_what_the_sdk_does(
    docker_client: Any, labelled_container: str
) -> None:
    direct = listed_containers(DEFAULT_SOCKET)
    through_sdk = ContainerDriver(docker_client, environ={}).observe()
    assert direct is not None
    ours = [o for o in direct if o.resource_name == labelled_container]
    assert ours == [o for o in through_sdk if o.resource_name == labelled_container]
    assert len(ours) == 1 and ours[0].deployment_id == 7
    beside = f"{labelled_container}.previous is still beside it (a swap was not finished)"
    assert ours[0].unfinished == beside


def targets(docker_host: str | None = None) -> Targets:
    """The default target of an environment `test`, with DOCKER_HOST as given."""
    config = RepoConfig.model_validate({"environments": {"test": {}}})
    environ = {"DOCKER_HOST": docker_host} if docker_host else {}
    return Targets("test", Settings.from_env(environ), config)


def test_observing_the_local_engine_loads_no_docker_sdk(docker_client: Any) -> None:
    script = (
        "import sys\n"
        "from bojdeploy.core.config import RepoConfig\n"
        "from bojdeploy.drivers import Targets\n"
        "from bojdeploy.settings import Settings\n"
        "config = RepoConfig.model_validate({'environments': {'test': {}}})\n"
        "found = Targets('test', Settings.from_env({}), config).observe({'container'})\n"
        "print(isinstance(found, list), sorted(m for m in ('docker', 'requests', 'urllib3')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True []"


def test_a_missing_socket_fails_with_the_sdks_error(tmp_path: Path) -> None:
    gone = f"unix://{tmp_path / 'docker.sock'}"
    with pytest.raises(ConnectError, match=f"cannot reach Docker at {gone}"):
        targets(gone).observe({"container"})


@pytest.fixture
def not_docker(tmp_path: Path) -> Iterator[Path]:
    """A unix socket whose server answers every request with an HTTP 500."""
    path = tmp_path / "odd.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def answer() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield path
    server.close()


def test_an_odd_answer_goes_the_sdks_way(not_docker: Path) -> None:
    assert list_containers(str(not_docker), timeout=5) is None
    with pytest.raises(ConnectError, match=f"cannot reach Docker at unix://{not_docker}"):
        targets(f"unix://{not_docker}").observe({"container"})

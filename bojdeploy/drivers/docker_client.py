"""The Docker connection: a client that has answered a ping, or ConnectError."""

from __future__ import annotations

from typing import Any

from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.errors import ConnectError


def connect(docker_host: str | None = None, timeout: int = 60) -> Any:
    """A docker SDK client for `docker_host` (default: DOCKER_HOST or the local socket)."""
    import docker

    where = docker_host or "the local Docker socket (DOCKER_HOST unset)"
    reach = f"cannot reach Docker at {where}"
    with docker_errors(reach, refused=ConnectError, unreachable=reach):
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    return client

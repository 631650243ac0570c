"""The Docker connection: one place that turns connection failures into ConnectError."""

from __future__ import annotations

from typing import Any

from bojdeploy.errors import ConnectError


def connect(docker_host: str | None = None, timeout: int = 60) -> Any:
    """A docker SDK client for `docker_host` (default: DOCKER_HOST or the local socket)."""
    import docker
    from docker.errors import DockerException

    try:
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, OSError) as e:
        where = docker_host or "the local Docker socket (DOCKER_HOST unset)"
        raise ConnectError(f"cannot reach Docker at {where}: {e}") from e
    return client

"""The Docker connection: one place that turns connection failures into ConnectError."""

from __future__ import annotations

import re
from typing import Any

from bojdeploy.errors import ConnectError

OS_ERROR_TEXT = (r"\[Errno -?\d+\] ([^'\")]+)", r"\w+Error\(-?\d+, '([^']+)'\)")


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
        raise ConnectError(f"cannot reach Docker at {where}: {short_cause(e)}") from e
    return client


def short_cause(error: BaseException) -> str:
    """The root of a requests/urllib3 connection error in a few words ('Connection refused')."""
    seen = {id(error)}
    while True:
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException) and error.args:
            inner = error.args[-1]
        if not isinstance(inner, BaseException) or id(inner) in seen:
            break
        seen.add(id(inner))
        error = inner
    text = str(error) or type(error).__name__
    for pattern in OS_ERROR_TEXT:  # the OS's words, when a message only quotes the error
        found = re.search(pattern, text)
        if found:
            return found.group(1).strip()
    return re.sub(r"^HTTP\w*Connection\w*\(.*?\): ", "", text)

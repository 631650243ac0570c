"""The Docker connection: a client that has answered a ping, or ConnectError."""

from __future__ import annotations

import shutil
from typing import Any

from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.errors import ConnectError


def connect(
    docker_host: str | None = None,
    timeout: int = 60,
    *,
    tls_verify: bool = False,
    cert_path: str | None = None,
    host: str = "",
) -> Any:
    """A docker SDK client for `docker_host` (default: DOCKER_HOST or the local socket).

    ssh:// runs the ssh client, as the docker CLI does: ~/.ssh/config, keys and known_hosts
    apply. tls_verify: a tcp:// endpoint with client certificates from `cert_path` (default
    DOCKER_CERT_PATH or ~/.docker). `host`: the named host, for messages.
    """
    import docker

    where = docker_host or "the local Docker socket (DOCKER_HOST unset)"
    reach = f"cannot reach Docker at {where}" + (f" (host {host})" if host else "")
    if docker_host and docker_host.startswith("ssh://") and not shutil.which("ssh"):
        raise ConnectError(
            f"{reach}: ssh:// needs the `ssh` client (openssh-client) on PATH and there is none "
            "(the action image has none: use tcp:// with TLS there)"
        )
    with docker_errors(reach, refused=ConnectError, unreachable=reach):
        if docker_host:
            client = docker.DockerClient(
                base_url=docker_host,
                timeout=timeout,
                use_ssh_client=docker_host.startswith("ssh://"),
                tls=_tls(cert_path) if tls_verify else False,
            )
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    return client


def _tls(cert_path: str | None) -> Any:
    """Client certificates and the CA to verify the engine with, as the docker CLI finds them."""
    import os

    from docker.tls import TLSConfig

    folder = cert_path or os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
    return TLSConfig(
        client_cert=(os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")),
        ca_cert=os.path.join(folder, "ca.pem"),
        verify=True,
    )

"""The Docker connection: a client that has answered a ping, or ConnectError."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.errors import ConnectError

_importing = threading.Lock()


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
    apply; without one on PATH, paramiko (see `_ssh_errors`). tls_verify: a tcp:// endpoint
    with client certificates from `cert_path` (default
    DOCKER_CERT_PATH or ~/.docker). `host`: the named host, for messages.
    """
    address = docker_host or os.environ.get("DOCKER_HOST") or ""
    ssh = address.startswith("ssh://")
    docker = docker_sdk(ssh=ssh)
    where = docker_host or "the local Docker socket (DOCKER_HOST unset)"
    reach = f"cannot reach Docker at {where}" + (f" (host {host})" if host else "")
    with docker_errors(reach, refused=ConnectError, unreachable=reach), _ssh_errors(reach, ssh):
        if docker_host:
            client = docker.DockerClient(
                base_url=docker_host,
                timeout=timeout,
                use_ssh_client=ssh and shutil.which("ssh") is not None,
                tls=_tls(cert_path) if tls_verify else False,
            )
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    return client


@contextmanager
def _ssh_errors(reach: str, ssh: bool) -> Iterator[None]:
    """Without an `ssh` client (the action image has none) ssh:// goes through paramiko, which
    reads ~/.ssh/config (HostName, Port, User, IdentityFile; no Include) and accepts only host
    keys in ~/.ssh/known_hosts: its refusals are one line naming the target."""
    if not ssh:
        yield
        return
    import paramiko

    try:
        yield
    except (paramiko.SSHException, OSError) as e:
        raise ConnectError(f"{reach}: ssh: {e or type(e).__name__}") from e


def docker_sdk(*, ssh: bool) -> ModuleType:
    """The docker SDK; its ssh:// transport (paramiko) only when `ssh`.

    The SDK imports paramiko whenever it is installed, for ssh:// alone; that costs as much as the
    rest of the SDK (paramiko pulls in invoke and unittest), paid by every run on a local socket.
    """
    with _importing:
        if "docker" not in sys.modules and not ssh and "paramiko" not in sys.modules:
            sys.modules["paramiko"] = None  # type: ignore[assignment]  # import fails: no ssh
            try:
                import docker
            finally:
                del sys.modules["paramiko"]
        import docker
        import docker.api.client as api

        if ssh and not hasattr(api, "SSHHTTPAdapter"):
            from docker.transport.sshconn import SSHHTTPAdapter

            api.SSHHTTPAdapter = SSHHTTPAdapter  # type: ignore[attr-defined]
    return docker


def _tls(cert_path: str | None) -> Any:
    """Client certificates and the CA to verify the engine with, as the docker CLI finds them."""
    from docker.tls import TLSConfig

    folder = cert_path or os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
    return TLSConfig(
        client_cert=(os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")),
        ca_cert=os.path.join(folder, "ca.pem"),
        verify=True,
    )

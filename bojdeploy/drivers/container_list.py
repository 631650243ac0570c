"""The container list of a local engine, read straight off its unix socket (no docker SDK).

A run whose containers are all unchanged needs one call, the list; loading the docker SDK (and
requests, urllib3) and its two handshake calls cost more than the list itself. Anything
unexpected here (no socket, a refusal, an odd answer) returns None: the caller then connects
through the SDK, whose errors are the ones users see.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
from collections.abc import Mapping
from typing import Any

from bojdeploy.core.plan import Observed
from bojdeploy.drivers.observe import observed_containers

log = logging.getLogger("bojdeploy.docker")  # shown with -vv, as the SDK's calls are
DEFAULT_SOCKET = "/var/run/docker.sock"  # docker's default without DOCKER_HOST
LIST_PATH = "/containers/json?all=1"


def local_socket(docker_host: str | None, environ: Mapping[str, str]) -> str | None:
    """The unix socket path of the engine `docker_host` names (default: DOCKER_HOST or docker's
    own default), or None for any other kind of endpoint (tcp://, ssh://, ...)."""
    address = docker_host or environ.get("DOCKER_HOST") or ""
    if not address:
        return DEFAULT_SOCKET
    if address.startswith("unix://"):
        return address.removeprefix("unix://") or None
    return None


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def list_containers(path: str, timeout: float = 60) -> list[dict[str, Any]] | None:
    """Every container of the engine at the unix socket `path` (as GET /containers/json?all=1
    answers), or None when that did not work."""
    conn = _UnixConnection(path, timeout)
    try:
        conn.request("GET", LIST_PATH, headers={"Accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
        log.debug('unix://%s "GET %s HTTP/1.1" %s %s', path, LIST_PATH, response.status, len(body))
        if response.status != 200:
            return None
        items = json.loads(body)
    except (OSError, http.client.HTTPException, ValueError) as e:
        log.debug(
            "listing the containers at unix://%s failed (%s); the docker SDK takes over", path, e
        )
        return None
    finally:
        conn.close()
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return None
    return items


def listed_containers(path: str | None) -> list[Observed] | None:
    """The observations of the containers of the engine at the unix socket `path`, or None when
    they cannot be listed that way (no socket path, or the list did not work)."""
    items = list_containers(path) if path is not None else None
    return observed_containers(items) if items is not None else None

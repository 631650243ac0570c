"""Reachability of the systems the engine drives, for front ends' health checks."""

from __future__ import annotations

from bojdeploy.drivers.docker_client import connect
from bojdeploy.settings import Settings


def ping_docker(settings: Settings, timeout: int = 3) -> None:
    """Return when the Docker Engine of `settings` answers a ping; ConnectError otherwise."""
    connect(settings.docker_host, timeout=timeout).close()

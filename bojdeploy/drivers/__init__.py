"""Drivers: observe and apply resources on Docker, Swarm and Xen targets."""

from __future__ import annotations

import threading
from typing import Any

from bojdeploy.core.config import RepoConfig
from bojdeploy.core.plan import Observed
from bojdeploy.drivers.base import Driver
from bojdeploy.errors import ConnectError, DriverError
from bojdeploy.settings import Settings


class Targets:
    """The targets of one environment: connections made once, on first use."""

    def __init__(self, environment: str, settings: Settings, config: RepoConfig):
        self.environment = environment
        self.settings = settings
        target = config.targets.get(environment)
        self.docker_host = settings.docker_host or (target.docker_host if target else None)
        self._docker: Any = None
        self._lock = threading.Lock()

    def docker(self) -> Any:
        """The Docker client (connects and pings once)."""
        with self._lock:
            if self._docker is None:
                from bojdeploy.drivers.docker_client import connect

                self._docker = connect(self.docker_host)
            return self._docker

    def observe(self, kinds: set[str]) -> list[Observed]:
        """Observe every kind in `kinds` with one list call per kind."""
        from bojdeploy.drivers.observe import observe_containers, observe_services

        observed: list[Observed] = []
        if "container" in kinds:
            observed += observe_containers(self.docker())
        if "service" in kinds:
            observed += observe_services(self.docker())
        if "vm" in kinds:
            raise ConnectError(
                "VM manifests need a Xen pool (BOJDEPLOY_XEN_URL), which this version cannot "
                "drive yet; use --offline to plan against the records"
            )
        return observed

    def driver(self, kind: str) -> Driver:
        """The driver that applies steps of `kind`."""
        if kind == "container":
            from bojdeploy.drivers.container import ContainerDriver

            return ContainerDriver(self.docker())
        raise DriverError(f"applying {kind} manifests is not supported by this version yet")

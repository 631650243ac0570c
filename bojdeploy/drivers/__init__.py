"""Drivers: observe and apply resources on Docker, Swarm and Xen targets."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

from bojdeploy.core.config import RepoConfig
from bojdeploy.core.plan import Observed
from bojdeploy.drivers.base import Driver
from bojdeploy.errors import ConnectError, DriverError
from bojdeploy.settings import Settings

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"  # docker's default without DOCKER_HOST
CONNECTION_KEYS: dict[str, tuple[str, ...]] = {
    "container": ("docker_host",),
    "service": ("docker_host",),
    "vm": ("xen_url", "xen_username"),
}


class Targets:
    """The targets of one environment: connections made once, on first use, closed at the end.

    Where each connection goes: an explicit setting (DOCKER_HOST, BOJDEPLOY_XEN_URL, the action's
    inputs) wins, then `recorded` (the target a deployment recorded, for its rollback), then
    `targets.<env>` of bojdeploy.yaml, then docker's default socket.
    """

    def __init__(
        self,
        environment: str,
        settings: Settings,
        config: RepoConfig,
        recorded: Mapping[str, Any] | None = None,
    ):
        self.environment = environment
        self.settings = settings
        target = config.targets.get(environment)
        configured = target.model_dump() if target else {}
        chosen = {}
        for key in ("docker_host", "xen_url", "xen_username"):
            explicit = getattr(settings, key)
            from_record = (recorded or {}).get(key)
            chosen[key] = (
                explicit or _usable(from_record, configured.get(key)) or configured.get(key)
            )
        self.docker_host: str | None = chosen["docker_host"]
        self.xen_url: str | None = chosen["xen_url"]
        self.xen_username: str | None = chosen["xen_username"]
        self._docker: Any = None
        self._xen: Any = None
        self._lock = threading.Lock()

    def record(self, kind: str) -> dict[str, str | None]:
        """Where a `kind` resource goes, without credentials: kept with its deployment."""
        values = {
            "docker_host": self.docker_host or DEFAULT_DOCKER_HOST,
            "xen_url": self.xen_url,
            "xen_username": self.xen_username or ("root" if self.xen_url else None),
        }
        return {k: redact_credentials(values[k]) for k in CONNECTION_KEYS.get(kind, ())}

    def docker(self) -> Any:
        """The Docker client (connects and pings once)."""
        with self._lock:
            if self._docker is None:
                from bojdeploy.drivers.docker_client import connect

                self._docker = connect(self.docker_host)
            return self._docker

    def xen(self) -> Any:
        """The XenAPI session (one login per run; logged out by close())."""
        with self._lock:
            if self._xen is None:
                if not self.xen_url:
                    raise ConnectError(
                        f"VM manifests need a Xen pool: set BOJDEPLOY_XEN_URL or "
                        f"targets.{self.environment}.xen_url in bojdeploy.yaml"
                    )
                from bojdeploy.drivers.vm import connect_xen

                self._xen = connect_xen(
                    self.xen_url,
                    self.xen_username or "root",
                    self.settings.xen_password or "",
                    verify=self.settings.xen_verify,
                )
            return self._xen

    def observe(self, kinds: set[str]) -> list[Observed]:
        """Observe every kind in `kinds` with one list call per kind."""
        from bojdeploy.drivers.observe import observe_containers, observe_services

        observed: list[Observed] = []
        if "container" in kinds:
            with boundary("container", "cannot list containers", observing=True):
                observed += observe_containers(self.docker())
        if "service" in kinds:
            with boundary("service", "cannot list services", observing=True):
                observed += observe_services(self.docker())
        if "vm" in kinds:
            from bojdeploy.drivers.vm import observe_vms

            with boundary("vm", "cannot list the VMs on Xen", observing=True):
                observed += observe_vms(self.xen())
        return observed

    def observe_one(self, kind: str, resource_name: str, *, aside: bool = True) -> list[Observed]:
        """The resource of `kind` named `resource_name`, if it exists (re-checks under a lock).

        aside=False skips looking for a container's `.previous` beside a container that exists.
        """
        if kind == "container":
            from bojdeploy.drivers.observe import observe_container

            with boundary(kind, f"cannot inspect container {resource_name}", observing=True):
                return observe_container(self.docker(), resource_name, aside=aside)
        return [o for o in self.observe({kind}) if o.resource_name == resource_name]

    def driver(self, kind: str) -> Driver:
        """The driver that applies steps of `kind` (inside its system's error boundary)."""
        if kind == "container":
            from bojdeploy.drivers.container import ContainerDriver

            return _Bounded(ContainerDriver(self.docker()))
        if kind == "service":
            from bojdeploy.drivers.service import ServiceDriver

            return _Bounded(ServiceDriver(self.docker()))
        if kind == "vm":
            from bojdeploy.drivers.vm import VMDriver

            return _Bounded(VMDriver(self.xen()))
        raise DriverError(f"no driver for {kind} manifests")

    def close(self) -> None:
        """Log out of Xen and close the Docker client."""
        with self._lock:
            if self._xen is not None:
                from bojdeploy.drivers.vm import disconnect_xen

                disconnect_xen(self._xen)
                self._xen = None
            if self._docker is not None:
                self._docker.close()
                self._docker = None


def boundary(kind: str, what: str, *, observing: bool = False) -> AbstractContextManager[None]:
    """The error boundary of the system behind `kind` (Docker or Xen).

    observing: nothing was changed yet, so even a refusal means the target is unusable
    (ConnectError, exit 3) rather than a failed step.
    """
    refused = ConnectError if observing else DriverError
    if kind == "vm":
        from bojdeploy.drivers.xen_errors import xen_errors

        return xen_errors(what, refused=refused)
    from bojdeploy.drivers.docker_errors import docker_errors

    return docker_errors(what, refused=refused)


class _Bounded:
    """A driver whose every exception leaves as a typed error: the calls inside it translate
    their own (naming the call); this catches any that a call left untranslated."""

    def __init__(self, driver: Driver):
        self.driver = driver

    def apply(self, work: Any, log: Any) -> Any:
        """The driver's apply, inside its kind's boundary."""
        step = work.step
        with boundary(step.kind, f"{step.action} {step.kind} {step.name}"):
            return self.driver.apply(work, log)


def redact_credentials(url: str | None) -> str | None:
    """`url` with any password replaced by *** (a user name is kept: it is not a secret)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _usable(recorded: str | None, configured: str | None) -> str | None:
    """A recorded connection, with the password of the configured one if only that was redacted."""
    if not recorded or ":***@" not in recorded:
        return recorded
    if configured and redact_credentials(configured) == recorded:
        return configured
    raise ConnectError(
        f"the recorded target {recorded} needs its password: set it in the environment "
        "(DOCKER_HOST / BOJDEPLOY_XEN_URL) or in bojdeploy.yaml's targets"
    )

"""Drivers: observe and apply resources on Docker, Swarm and Xen targets."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

from bojdeploy.core.config import HostConfig, RepoConfig
from bojdeploy.core.fleet import xen_password_variable
from bojdeploy.core.plan import Observed
from bojdeploy.drivers.base import Applied, Driver, StepLog, Work
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

    `host` names one of `targets.<env>.hosts`: its settings alone say where it is (DOCKER_HOST
    and BOJDEPLOY_XEN_URL are the default target's), its Xen password comes from
    BOJDEPLOY_XEN_PASSWORD_<HOST> (else BOJDEPLOY_XEN_PASSWORD), and what it makes is labelled
    io.bojdeploy.host.
    """

    def __init__(
        self,
        environment: str,
        settings: Settings,
        config: RepoConfig,
        recorded: Mapping[str, Any] | None = None,
        host: str = "",
    ):
        self.environment = environment
        self.settings = settings
        self.host = host
        self.named: HostConfig | None = None
        self.xen_password = settings.xen_password
        if host:
            self.named = _named_host(config, environment, host)
            chosen = self.named.model_dump()
            self.xen_password = settings.environ.get(xen_password_variable(host)) or (
                settings.xen_password
            )
        else:
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
        self._drivers: dict[str, Driver] = {}
        self._lock = threading.RLock()  # driver() holds it while a factory connects

    def record(self, kind: str) -> dict[str, str | None]:
        """Where a `kind` resource goes, without credentials: kept with its deployment."""
        values = {
            "docker_host": self.docker_host or DEFAULT_DOCKER_HOST,
            "xen_url": self.xen_url,
            "xen_username": self.xen_username or ("root" if self.xen_url else None),
        }
        where = {k: redact_credentials(values[k]) for k in CONNECTION_KEYS.get(kind, ())}
        return where | ({"host": self.host} if self.host else {})

    @property
    def where(self) -> str:
        """How messages name this target: 'host edge-1', or '' for the default target."""
        return f"host {self.host}" if self.host else ""

    def docker(self) -> Any:
        """The Docker client (connects and pings once)."""
        with self._lock:
            if self._docker is None:
                from bojdeploy.drivers.docker_client import connect

                if self.named is not None and not self.docker_host:
                    raise ConnectError(
                        f"host {self.host} has no docker_host (targets.{self.environment}"
                        f".hosts.{self.host} in bojdeploy.yaml)"
                    )
                tls = self.named.tls_verify if self.named else False
                cert_path = self.named.cert_path if self.named else None
                self._docker = connect(
                    self.docker_host, tls_verify=tls, cert_path=cert_path, host=self.host
                )
            return self._docker

    def docker_socket(self) -> str | None:
        """The unix socket of this target's Docker engine, or None (another kind of endpoint)."""
        from bojdeploy.drivers.container_list import local_socket

        if self.named is not None and not self.docker_host:
            return None
        return local_socket(self.docker_host, self.settings.environ)

    def xen(self) -> Any:
        """The XenAPI session (one login per run; logged out by close())."""
        with self._lock:
            if self._xen is None:
                if not self.xen_url and self.host:
                    raise ConnectError(
                        f"host {self.host} has no xen_url (targets.{self.environment}"
                        f".hosts.{self.host} in bojdeploy.yaml)"
                    )
                if not self.xen_url:
                    raise ConnectError(
                        f"VM manifests need a Xen pool: set BOJDEPLOY_XEN_URL or "
                        f"targets.{self.environment}.xen_url in bojdeploy.yaml"
                    )
                from bojdeploy.drivers.vm import connect_xen

                self._xen = connect_xen(
                    self.xen_url,
                    self.xen_username or "root",
                    self.xen_password or "",
                    verify=self.settings.xen_verify,
                )
            return self._xen

    def observe(self, kinds: set[str]) -> list[Observed]:
        """Every resource of each kind in `kinds` (one list call per kind, or nearly)."""
        observed: list[Observed] = []
        for kind in sorted(kinds, key=_kind_order):
            quick = LISTERS.get(kind)
            listed = quick(self) if quick is not None and kind not in self._drivers else None
            if listed is not None:
                observed += listed
                continue
            driver = self.driver(kind)
            with boundary(kind, f"cannot list the {_PLURAL.get(kind, kind)}", observing=True):
                observed += driver.observe()
        return observed

    def observe_one(self, kind: str, resource_name: str, *, aside: bool = True) -> list[Observed]:
        """The resource of `kind` named `resource_name`, if it exists (re-checks under a lock).

        aside=False skips looking for a container's `.previous` beside a container that exists.
        """
        driver = self.driver(kind)
        with boundary(kind, f"cannot look up {kind} {resource_name}", observing=True):
            return driver.observe_one(resource_name, aside=aside)

    def driver(self, kind: str) -> Driver:
        """The driver of `kind` (inside its system's error boundary), made on first use."""
        make = DRIVERS.get(kind)
        if make is None:
            raise DriverError(
                f"no driver for {kind!r} resources (known kinds: {', '.join(DRIVERS)})"
            )
        with self._lock:
            if kind not in self._drivers:
                self._drivers[kind] = _Bounded(kind, make(self), self.host)
            return self._drivers[kind]

    def close(self) -> None:
        """Log out of Xen and close the Docker client."""
        with self._lock:
            self._drivers.clear()
            if self._xen is not None:
                from bojdeploy.drivers.vm import disconnect_xen

                disconnect_xen(self._xen)
                self._xen = None
            if self._docker is not None:
                self._docker.close()
                self._docker = None


def _container_driver(targets: Targets) -> Driver:
    client = targets.docker()  # first: it chooses how the docker SDK is imported
    from bojdeploy.drivers.container import ContainerDriver

    return ContainerDriver(client)


def _listed_containers(targets: Targets) -> list[Observed] | None:
    from bojdeploy.drivers.container_list import listed_containers

    return listed_containers(targets.docker_socket())


def _service_driver(targets: Targets) -> Driver:
    client = targets.docker()  # first: it chooses how the docker SDK is imported
    from bojdeploy.drivers.service import ServiceDriver

    return ServiceDriver(client)


def _vm_driver(targets: Targets) -> Driver:
    from bojdeploy.drivers.vm import VMDriver

    return VMDriver(targets.xen())


# kind -> how to make its driver. The modules load on first use (docker and XenAPI are slow to
# import), and a driver connects to its target when made: a kind not in the run needs neither.
DRIVERS: dict[str, Callable[[Targets], Driver]] = {
    "container": _container_driver,
    "service": _service_driver,
    "vm": _vm_driver,
}


# kind -> how to list its resources without making its driver (no SDK, no handshake), or None
# when that is not possible: the driver then observes, and reports what went wrong.
LISTERS: dict[str, Callable[[Targets], list[Observed] | None]] = {
    "container": _listed_containers,
}


def _kind_order(kind: str) -> int:
    """The order kinds are observed in: as DRIVERS lists them, unknown kinds last."""
    return list(DRIVERS).index(kind) if kind in DRIVERS else len(DRIVERS)


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


_PLURAL = {"container": "containers", "service": "services", "vm": "VMs on Xen"}


class _Bounded:
    """A driver whose every exception leaves as a typed error: the calls inside it translate
    their own (naming the call); this catches any that a call left untranslated."""

    def __init__(self, kind: str, driver: Driver, host: str = ""):
        self.kind = kind
        self.driver = driver
        self.host = host

    def observe(self) -> list[Observed]:
        """The driver's observe (the caller puts it inside the boundary)."""
        return self.driver.observe()

    def observe_one(self, name: str, *, aside: bool = True) -> list[Observed]:
        """The driver's observe_one (the caller puts it inside the boundary)."""
        return self.driver.observe_one(name, aside=aside)

    def apply(self, work: Work, log: StepLog) -> Applied:
        """The driver's apply, inside its kind's boundary."""
        step = work.step
        if self.host and work.ownership is not None:
            work = dataclasses.replace(
                work, ownership=dataclasses.replace(work.ownership, host=self.host)
            )
        with boundary(self.kind, f"{step.action} {step.kind} {step.name}"):
            return self.driver.apply(work, log)


def _named_host(config: RepoConfig, environment: str, host: str) -> HostConfig:
    hosts = config.hosts_for(environment)
    if host not in hosts:
        known = ", ".join(sorted(hosts)) or "none"
        raise ConnectError(
            f"host {host} is not defined for environment {environment} (targets.{environment}"
            f".hosts in bojdeploy.yaml; defined: {known})"
        )
    return hosts[host]


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

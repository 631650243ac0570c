"""Drivers: observe and apply resources on Docker, Swarm and Xen targets."""

from __future__ import annotations

from bojdeploy.core.config import RepoConfig
from bojdeploy.core.plan import Observed
from bojdeploy.errors import ConnectError
from bojdeploy.settings import Settings


def observe_targets(
    kinds: set[str], environment: str, settings: Settings, config: RepoConfig
) -> list[Observed]:
    """Observe every kind in `kinds` with one list call per kind."""
    observed: list[Observed] = []
    target = config.targets.get(environment)
    if kinds & {"container", "service"}:
        from bojdeploy.drivers.docker_client import connect
        from bojdeploy.drivers.observe import observe_containers, observe_services

        docker_host = settings.docker_host or (target.docker_host if target else None)
        client = connect(docker_host)
        if "container" in kinds:
            observed += observe_containers(client)
        if "service" in kinds:
            observed += observe_services(client)
    if "vm" in kinds:
        raise ConnectError(
            "VM manifests need a Xen pool to observe (BOJDEPLOY_XEN_URL); "
            "VM support arrives with the Xen driver. Use --offline to plan against the records."
        )
    return observed
